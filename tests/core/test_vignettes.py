"""The patient vignettes, each as a test through the real CLI.

Source of the expectations: tests/data/vignettes (copied from the project's shared research
folder by scripts/refresh-test-data): what a careful clinician, reading the tramadol label and
current guidelines, requires of the answer. The keys are described in the README there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests_support import data_path
from withdrawal.cli import app
from withdrawal.knowledge.models import LEVELS

runner = CliRunner()

# Vignettes the answer does not meet yet, each with the point of the clinical-safety issue it
# waits for (strict: a vignette that starts passing fails here until its mark is removed).
PENDING: dict[str, str] = {}


def _vignettes() -> list[Any]:
    out = []
    for path in sorted((data_path() / "vignettes").glob("*.json")):
        marks = [pytest.mark.xfail(reason=PENDING[path.stem], strict=True)] if path.stem in PENDING else []
        out.append(pytest.param(path, id=path.stem, marks=marks))
    return out


def _option_text(option: dict[str, Any]) -> str:
    """Everything an option says to the clinician (reasons, timing, cautions, findings)."""
    parts = [*option.get("reasons", ()), option.get("timing") or "", *option.get("cautions", ())]
    for f in option.get("findings", ()):
        parts += [f["message"], f["action"], *f["triggers"]]
    return " ".join(parts)


def check_expectations(out: dict[str, Any], expect: dict[str, Any]) -> None:
    """Assert every expectation key of the vignette format against one JSON answer."""
    verdict = out["tramadol"]["verdict"]
    findings = out["tramadol"]["findings"]
    codes = {f["code"] for f in findings}
    if "verdict" in expect:
        assert verdict == expect["verdict"]
    if "verdict_at_least" in expect:
        assert LEVELS.index(verdict) >= LEVELS.index(expect["verdict_at_least"]), verdict
    if "verdict_at_most" in expect:
        assert LEVELS.index(verdict) <= LEVELS.index(expect["verdict_at_most"]), verdict
    assert set(expect.get("flags", [])) <= codes, codes
    if "flags_any" in expect:
        assert codes & set(expect["flags_any"])
    assert not codes & set(expect.get("no_flags", []))
    if "max_daily_dose_mg" in expect:
        assert out["tramadol"]["max_daily_dose_mg"] == expect["max_daily_dose_mg"]
    if "cows_total" in expect:
        assert out["cows"]["total"] == expect["cows_total"]
    if "cows_band" in expect:
        assert out["cows"]["band"] == expect["cows_band"]
    if "first_option_in" in expect:
        first = next(o for o in out["options"] if o["rank"] == 1)
        assert first["treatment"] in expect["first_option_in"]
    if "resources_include" in expect:
        text = json.dumps(out["resources"])
        for word in expect["resources_include"]:
            assert word in text
    if "unrecognised_reported" in expect:
        assert expect["unrecognised_reported"] in out["unrecognised"]
    options = {o["treatment"]: o for o in out["options"]}
    for treatment in expect.get("not_recommended", []):
        assert options.get(treatment, {}).get("status") != "recommended", treatment
    for treatment in expect.get("timing_not_now", []):
        if treatment not in options:
            continue  # excluded: nothing tells the clinician to start it
        timing = (options[treatment].get("timing") or "").lower()
        assert timing, f"{treatment} carries no timing"
        assert "start now" not in timing or "low-dose" in timing, timing
    if expect.get("no_regimen"):
        assert not out["tramadol"]["regimen"]
    for word in expect.get("adjuncts_exclude", []):
        for adj in out["adjuncts"]:
            if word.lower() in adj["drug"].lower():
                assert adj.get("status", "offered") != "offered", adj
                assert adj.get("reason"), adj
    for word in expect.get("finding_mentions", []):
        assert any(word in json.dumps(f) for f in findings), (word, findings)
    for treatment, word in expect.get("option_cautions_mention", {}).items():
        assert treatment in options, treatment
        assert word.lower() in _option_text(options[treatment]).lower(), options[treatment]


@pytest.mark.parametrize("path", _vignettes())
def test_vignette(path: Path, tmp_path: Path) -> None:
    case = json.loads(path.read_text())
    expect = case["expect"]
    patient_file = tmp_path / "patient.json"
    patient_file.write_text(json.dumps(case["patient"]))
    result = runner.invoke(app, ["assess", str(patient_file), "--format", "json", "--no-simulate"])
    if expect.get("error"):
        assert result.exit_code != 0
        for word in expect.get("error_mentions", []):
            assert word in result.output
        return
    assert result.exit_code == 0, result.output
    check_expectations(json.loads(result.stdout), expect)


def test_every_expectation_key_is_checked() -> None:
    """A key the vignettes use but this test ignores would pass silently."""
    known = {"verdict", "verdict_at_least", "verdict_at_most", "flags", "flags_any", "no_flags",
             "max_daily_dose_mg", "cows_total", "cows_band", "first_option_in", "resources_include",
             "error", "error_mentions", "unrecognised_reported", "not_recommended", "timing_not_now",
             "no_regimen", "adjuncts_exclude", "finding_mentions", "option_cautions_mention"}
    for path in sorted((data_path() / "vignettes").glob("*.json")):
        assert set(json.loads(path.read_text())["expect"]) <= known, path.stem
