"""The low-dose note of a buprenorphine option's timing is knowledge-base data (pathway.yaml
``low_dose_first.timing_note``) and brings its own sources into the option: the plan takes them
from the data, not by finding the sentence in the text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests_support import kb_with
from withdrawal.assess import Assessment, assess
from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.loader import KnowledgeBase, default_kb, load_kb

FENTANYL = {"age_years": 35, "opioid": {"substance": "fentanyl", "hours_since_last_use": 20}}
HEROIN = {"age_years": 35, "opioid": {"substance": "heroin", "hours_since_last_use": 20}}


def _bup(raw: dict[str, Any], kb: KnowledgeBase) -> Any:
    a: Assessment = assess(raw, kb)
    return next(o for o in a.plan.options if o.treatment == "buprenorphine")


def test_the_low_dose_note_and_its_sources_come_from_the_pathway_data() -> None:
    kb = default_kb()
    first = kb.pathway.low_dose_first
    bup = _bup(FENTANYL, kb)
    assert bup.timing.endswith(" " + first.timing_note)
    assert set(first.sources) <= set(bup.sources)
    plain = _bup(HEROIN, kb)
    assert first.timing_note not in plain.timing
    only_low_dose = set(first.sources) - set(kb.treatment("buprenorphine").sources)
    assert only_low_dose and not only_low_dose & set(plain.sources)


def test_a_changed_note_is_said_and_still_cited(tmp_path: Path) -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["low_dose_first"].update(timing_note="A different sentence for the test.", sources=["dailymed_suboxone"])

    kb = load_kb(kb_with(tmp_path, "pathway.yaml", change))
    bup = _bup(FENTANYL, kb)
    assert bup.timing.endswith(". A different sentence for the test.")
    assert "dailymed_suboxone" in bup.sources
    assert "dailymed_suboxone" not in _bup(FENTANYL, default_kb()).sources


def test_below_the_threshold_the_timing_says_and_cites_the_recheck(tmp_path: Path) -> None:
    """Below the COWS threshold the option's timing ends with the pathway recheck's timing note (pathway.yaml
    ``recheck_before``), cited by that recheck's sources; the sentence was written in the timing code."""
    kb0 = default_kb()
    early = {**HEROIN, "cows": {**{i.id: 0 for i in kb0.scales["cows"].items}, "sweating": 1}}  # COWS 1

    def change(raw: dict[str, Any]) -> None:
        before = next(r for r in raw["rechecks"] if r["id"] == "recheck_before")
        before.update(timing_note="score again later (test).", sources=["dailymed_suboxone"])

    kb = load_kb(kb_with(tmp_path, "pathway.yaml", change))
    bup = _bup(early, kb)
    assert bup.timing.endswith("is below 8: score again later (test).") and "dailymed_suboxone" in bup.sources
    default = _bup(early, default_kb())
    assert default.timing.endswith(default_kb().pathway.below_threshold.timing_note or "?")
    assert "dailymed_suboxone" not in default.sources

    def none(raw: dict[str, Any]) -> None:
        next(r for r in raw["rechecks"] if r["id"] == "recheck_before").pop("timing_note")

    with pytest.raises(KnowledgeBaseError, match="timing_note"):
        load_kb(kb_with(tmp_path / "none", "pathway.yaml", none))
