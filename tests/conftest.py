"""Shared fixtures: the real knowledge base and the read-only research folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests_support import shared_path  # noqa: E402
from withdrawal.knowledge.loader import KnowledgeBase, default_kb  # noqa: E402


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared research folder (vignettes, reference outputs); must exist."""
    return shared_path()


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    """The real, packaged knowledge base."""
    return default_kb()
