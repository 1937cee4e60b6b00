"""Shared fixtures: the real knowledge base and the test data in tests/data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests_support import data_path  # noqa: E402
from withdrawal.knowledge.loader import KnowledgeBase, default_kb  # noqa: E402


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The test data kept in the repository (vignettes, reference outputs), see data/PROVENANCE.md."""
    return data_path()


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    """The real, packaged knowledge base."""
    return default_kb()
