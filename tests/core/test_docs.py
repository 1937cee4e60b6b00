"""The generated knowledge-base page stays in step with the data."""

from __future__ import annotations

from pathlib import Path

from withdrawal.knowledge.docs import render
from withdrawal.knowledge.loader import KnowledgeBase

PAGE = Path(__file__).resolve().parents[2] / "docs" / "knowledge.md"


def test_knowledge_page_is_current(kb: KnowledgeBase) -> None:
    assert PAGE.read_text() == render(kb), "regenerate: python -m withdrawal.knowledge.docs > docs/knowledge.md"


def test_readme_counts_what_the_knowledge_base_holds(kb: KnowledgeBase) -> None:
    """The README's table of how well each kind of entry was checked is the knowledge base's own count
    (it was written by hand and had drifted: dose limits 4 for 7, drugs from memory 46 for 15)."""
    from collections import Counter

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"In knowledge-base version {kb.version}:" in readme

    def row(items: object) -> str:
        got = list(items)  # type: ignore[call-overload]
        n = Counter(getattr(i, "verification", None) for i in got)
        return f"| {len(got)} | {n['verified']} | {n['verified_secondary']} | {n['from_memory']} |"

    voc, care = kb.vocabulary, kb.care
    for label, items in [
        ("tramadol rules", kb.tramadol.rules), ("dose limits", kb.tramadol.dose_limits),
        ("option rules (every option screened)", care.option_rules), ("adjunct rules", care.adjunct_rules),
        ("pair interactions (checker)", kb.tramadol.pair_interactions), ("drug classes", voc.classes),
        ("drugs (names, RxCUI, ATC, classes)", voc.drugs), ("conditions (ICD-10-CM, SNOMED CT, words)", voc.conditions),
        ("condition scope entries", voc.condition_scope), ("withdrawal timelines", care.timelines),
    ]:
        assert f"| {label} {row(items)}" in readme, (label, row(items))
