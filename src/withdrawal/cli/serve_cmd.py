"""Commands of this module are registered on the shared app at import."""

from __future__ import annotations

from withdrawal.cli.app import app  # noqa: F401
