"""Shared fixtures: the real knowledge base and the read-only research folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WITHDRAWAL_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared research folder (vignettes, reference outputs); must exist."""
    assert SHARED.is_dir(), f"shared folder not found at {SHARED}; set WITHDRAWAL_SHARED"
    return SHARED
