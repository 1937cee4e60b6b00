"""The ``withdrawal`` command line: thin wrappers over the domain modules."""

from __future__ import annotations

from withdrawal.cli.app import app, main
from withdrawal.cli import core_cmd, evidence_cmd, pk_cmd  # noqa: F401  (registers commands)

__all__ = ["app", "main"]
