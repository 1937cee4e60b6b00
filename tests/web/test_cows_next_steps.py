"""The next step the COWS form shows for a total is care.yaml data: the buprenorphine start threshold
and the two statements for below and from it, with their sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests_support import kb_with
from withdrawal.knowledge.loader import default_kb, load_kb
from withdrawal.web.scales import next_steps


def test_the_next_steps_are_the_care_statements_around_the_threshold() -> None:
    kb = default_kb()
    start = kb.treatment("buprenorphine").start_cows_min
    below, at = kb.statement("cows_below_start"), kb.statement("cows_at_start")
    assert next_steps(kb) == [
        {"min": 0, "max": start - 1, "text": f"Below {start}: {below.text}", "sources": list(below.sources)},
        {"min": start, "max": kb.scales["cows"].total_max, "text": f"{start} or more: {at.text}",
         "sources": list(at.sources)},
    ]
    assert "too early for buprenorphine" in below.text


def test_a_changed_statement_changes_the_form(tmp_path: Path) -> None:
    def change(raw: dict[str, Any]) -> None:
        next(s for s in raw["statements"] if s["id"] == "cows_below_start").update(text="changed for the test.")

    steps = next_steps(load_kb(kb_with(tmp_path, "care.yaml", change)))
    assert steps[0]["text"].endswith(": changed for the test.")
