"""Helpers shared by tests (importable because tests/ is on sys.path via conftest)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_path() -> Path:
    """The read-only shared research folder beside the checkout (or WITHDRAWAL_SHARED)."""
    path = Path(os.environ.get("WITHDRAWAL_SHARED", REPO.parent / "shared"))
    assert path.is_dir(), f"shared folder not found at {path}; set WITHDRAWAL_SHARED"
    return path
