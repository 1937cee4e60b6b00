"""The ``withdrawal`` command line: thin wrappers over the domain modules."""

from __future__ import annotations

from withdrawal.cli import core_cmd, evidence_cmd, pk_cmd  # noqa: F401  (registers commands)
from withdrawal.cli.app import app, main

__all__ = ["app", "main"]
