"""The buprenorphine start pathway as a CDS Hooks card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from withdrawal.assess import assess
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.plan.pathway import build_pathway
from withdrawal.service.cds.cards import pathway_card

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def _card(raw: dict[str, Any], kb: KnowledgeBase) -> dict[str, Any] | None:
    a = assess(raw, kb)
    return pathway_card(a, build_pathway(a))


def test_fentanyl_card_gives_the_low_dose_days_and_the_boxed_warning(kb: KnowledgeBase) -> None:
    card = _card(_example("patient_fentanyl"), kb)
    assert card is not None
    assert card["summary"] == "Buprenorphine start: Low-dose start overlapping the full agonist"
    assert card["indicator"] == "info" and len(card["summary"]) <= 140
    assert "Day 1: 0.5 mg once daily" in card["detail"] and "boxed warning" in card["detail"]
    assert card["source"]["url"].startswith("https://")
    assert "(unverified)" in card["detail"]  # hand-off steps marked from_memory


def test_naltrexone_card_proposes_no_start(kb: KnowledgeBase) -> None:
    raw = _example("patient")
    raw["medications"] = [{"name": "naltrexone"}]
    card = _card(raw, kb)
    assert card is not None
    assert card["summary"] == "Buprenorphine start: not for this patient now"
    assert card["indicator"] == "warning" and "Day 1" not in card["detail"]
    assert "suggestions" not in card and "Lofexidine" in card["detail"]


def test_no_card_for_a_patient_already_on_buprenorphine(kb: KnowledgeBase) -> None:
    raw = _example("patient")
    raw["medications"] = [{"name": "buprenorphine"}]
    assert _card(raw, kb) is None
