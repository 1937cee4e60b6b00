"""The ``withdrawal`` command line: thin wrappers over the domain modules."""

from __future__ import annotations

from withdrawal.cli import (  # noqa: F401  (importing registers the commands)
    bedside_cmd,
    evidence_cmd,
    pk_cmd,
    population_cmd,
    serve_cmd,
)
from withdrawal.cli.app import app, main

__all__ = ["app", "main"]
