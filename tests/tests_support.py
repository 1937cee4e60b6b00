"""Helpers shared by tests (importable because tests/ is on sys.path via conftest)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


def data_path() -> Path:
    """The test data kept in the repository (vignettes, reference outputs; see data/PROVENANCE.md)."""
    assert DATA.is_dir(), f"test data folder not found at {DATA}"
    return DATA
