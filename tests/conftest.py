"""Shared fixtures: the real knowledge base and the test data in tests/data."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hypothesis import settings  # noqa: E402

# CI draws the same examples on every run (a red CI then means a change, not a new random draw);
# developers' runs keep drawing new ones, which is where new counterexamples are found.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")

from tests_support import data_path  # noqa: E402
from withdrawal.knowledge.loader import KnowledgeBase, default_kb  # noqa: E402


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The test data kept in the repository (vignettes, reference outputs), see data/PROVENANCE.md."""
    return data_path()


@pytest.fixture(scope="session")
def playwright_sync() -> Iterator[Any]:
    """The one Playwright (sync API) of the test process.

    Playwright's sync API runs its own event loop: a second ``sync_playwright()`` in the same
    process fails ("Sync API inside the asyncio loop"), so every browser fixture launches from this one.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    """The real, packaged knowledge base."""
    return default_kb()
