"""The generated knowledge-base page stays in step with the data."""

from __future__ import annotations

from pathlib import Path

from withdrawal.knowledge.docs import render
from withdrawal.knowledge.loader import KnowledgeBase

PAGE = Path(__file__).resolve().parents[2] / "docs" / "knowledge.md"


def test_knowledge_page_is_current(kb: KnowledgeBase) -> None:
    assert PAGE.read_text() == render(kb), "regenerate: python -m withdrawal.knowledge.docs > docs/knowledge.md"
