"""The start pathway's notes of another agonist come from the plan's evaluation and are cited by the pathway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests_support import kb_with
from withdrawal.assess import assess
from withdrawal.knowledge.loader import KnowledgeBase, load_kb
from withdrawal.pathway import build_pathway

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTE = "already_on_methadone"


def _methadone(allergic_to_buprenorphine: bool) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((EXAMPLES / "patient_methadone.json").read_text())
    if allergic_to_buprenorphine:
        raw["allergies"] = ["buprenorphine"]
    return raw


@pytest.mark.parametrize("allergic", [False, True], ids=["available", "excluded"])
def test_a_note_of_another_agonist_is_cited_by_the_pathway(kb: KnowledgeBase, tmp_path: Path, allergic: bool) -> None:
    raw = _methadone(allergic)
    before = build_pathway(assess(raw, kb))
    assert before.status == ("excluded" if allergic else "available")
    # a registered source that nothing in this pathway cites today, given to the note alone
    lone = next(s for s in sorted(kb.sources) if s not in before.sources)

    def change(care: dict[str, Any]) -> None:
        next(n for n in care["option_notes"] if n["id"] == NOTE)["sources"] = [lone]

    variant = load_kb(kb_with(tmp_path, "care.yaml", change))
    a = assess(raw, variant)
    p = build_pathway(a)
    note = next(n for n in variant.care.option_notes if n.id == NOTE)
    assert note.text in p.notes
    assert lone in p.sources
    # the note is the plan's own evaluation, shown once
    assert note in dict(a.plan.option_notes)["methadone"]
    assert p.notes.count(note.text) == 1


def test_no_other_agonist_no_note(kb: KnowledgeBase) -> None:
    raw = _methadone(False)
    raw["medications"] = []
    raw["opioid"] = {"substance": "heroin", "hours_since_last_use": 20}
    p = build_pathway(assess(raw, kb))
    note = next(n for n in kb.care.option_notes if n.id == NOTE)
    assert note.text not in p.notes
