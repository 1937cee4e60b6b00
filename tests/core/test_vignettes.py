"""The shared patient vignettes, each as a test through the real CLI.

Source of the expectations: ../shared/vignettes (what a careful clinician, reading the
tramadol label and current guidelines, requires of the answer).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from withdrawal.cli import app
from withdrawal.knowledge.models import LEVELS

runner = CliRunner()


def _vignettes() -> list[Path]:
    from tests_support import shared_path

    return sorted((shared_path() / "vignettes").glob("*.json"))


@pytest.mark.parametrize("path", _vignettes(), ids=lambda p: p.stem)
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
    out = json.loads(result.stdout)
    verdict = out["tramadol"]["verdict"]
    codes = {f["code"] for f in out["tramadol"]["findings"]}
    if "verdict" in expect:
        assert verdict == expect["verdict"]
    if "verdict_at_least" in expect:
        assert LEVELS.index(verdict) >= LEVELS.index(expect["verdict_at_least"])
    if "verdict_at_most" in expect:
        assert LEVELS.index(verdict) <= LEVELS.index(expect["verdict_at_most"])
    assert set(expect.get("flags", [])) <= codes
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
