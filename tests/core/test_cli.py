"""The core CLI commands, through Typer's runner on the real application."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from withdrawal.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "patient.json"


def test_assess_text_report_has_the_sections() -> None:
    result = runner.invoke(app, ["assess", str(EXAMPLE), "--no-simulate"])
    assert result.exit_code == 0, result.output
    for text in ("COWS 17/48", "Tramadol verdict", "CAUTION", "Options, ranked", "Buprenorphine",
                 "SAMHSA National Helpline", "988", "What the evidence shows", "Sources", "off-label"):  # fmt: skip
        assert text in result.output, text
    assert "866" not in result.output


def test_assess_json_has_the_contract_fields() -> None:
    result = runner.invoke(app, ["assess", str(EXAMPLE), "--format", "json", "--no-simulate"])
    out = json.loads(result.stdout)
    # withdrawing from heroin with nothing else against tramadol: the standing caution only
    assert out["tramadol"]["verdict"] == "caution"
    assert [f["code"] for f in out["tramadol"]["findings"]] == ["opioid_withdrawal"]
    assert out["tramadol"]["max_daily_dose_mg"] == 400
    assert isinstance(out["tramadol"]["findings"], list)
    assert (out["cows"]["total"], out["cows"]["band"]) == (17, "moderate")
    assert [o["rank"] for o in out["options"]] == list(range(1, len(out["options"]) + 1))
    assert {"treatment", "rank"} <= set(out["options"][0])
    assert out["resources"] and out["unrecognised"] == []


def test_bad_input_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"age_years": 30, "sex": "M"}))
    result = runner.invoke(app, ["assess", str(bad)])
    assert result.exit_code == 2
    assert "sex" in result.output and "female" in result.output


def test_unreadable_json_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert runner.invoke(app, ["assess", str(broken)]).exit_code == 2
    assert runner.invoke(app, ["assess", str(tmp_path / "none.json")]).exit_code == 2


def test_unknown_format_is_refused() -> None:
    result = runner.invoke(app, ["assess", str(EXAMPLE), "--format", "xml"])
    assert result.exit_code == 2 and "text, json" in result.output


def test_cows_from_flags() -> None:
    args = ["cows", "--format", "json"]
    for item, value in [("resting_pulse_rate", 4), ("sweating", 4), ("restlessness", 5), ("pupil_size", 5),
                        ("bone_or_joint_aches", 4), ("runny_nose_or_tearing", 4), ("gi_upset", 5),
                        ("tremor", 4), ("yawning", 4), ("anxiety_or_irritability", 4), ("gooseflesh_skin", 5)]:  # fmt: skip
        args += ["--item", f"{item}={value}"]
    out = json.loads(runner.invoke(app, args).stdout)
    assert (out["total"], out["band"]) == (48, "severe")


def test_cows_invalid_item_names_allowed_values() -> None:
    result = runner.invoke(app, ["cows", "--item", "resting_pulse_rate=3"])
    assert result.exit_code == 2 and "0, 1, 2, 4" in result.output


def test_cows_interactive() -> None:
    answers = "\n".join(["2", "1", "1", "1", "1", "2", "2", "1", "1", "2", "3"]) + "\n"
    result = runner.invoke(app, ["cows"], input=answers)
    assert result.exit_code == 0, result.output
    assert "COWS total 17" in result.output and "Moderate" in result.output


def test_interactions_against_tramadol_and_each_other() -> None:
    result = runner.invoke(app, ["interactions", "Zoloft", "Xanax", "methadone", "blorp", "--format", "json"])
    out = json.loads(result.stdout)
    assert set(out["drugs"]) == {"sertraline", "alprazolam", "methadone"}
    assert {h["drug"] for h in out["with_tramadol"]} >= {"sertraline", "alprazolam", "methadone"}
    pairs = {(h["drug_a"], h["drug_b"]) for h in out["between"]}
    assert ("alprazolam", "methadone") in pairs or ("methadone", "alprazolam") in pairs
    assert out["unrecognised"] == ["blorp"]


def test_interactions_text() -> None:
    result = runner.invoke(app, ["interactions", "Nardil"])
    assert result.exit_code == 0 and "contraindicated" in result.output


def test_serve_refuses_workers_on_in_memory_sqlite() -> None:
    import os

    before = {k: v for k, v in os.environ.items() if k.startswith("WITHDRAWAL_")}
    result = runner.invoke(app, ["serve", "--workers", "2", "--database-url", "sqlite:///:memory:"])
    assert result.exit_code == 2
    assert "in-memory SQLite" in result.output
    # refused before anything changes: the process environment (which workers would read) is untouched
    assert {k: v for k, v in os.environ.items() if k.startswith("WITHDRAWAL_")} == before


def test_assess_unknown_drug_shows_the_incomplete_screen_first(tmp_path: Path) -> None:
    """An incomplete screen is never a clean one: it is named at the top of the report."""
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"age_years": 40, "medications": [{"name": "zorblaxamine"}]}))
    text = runner.invoke(app, ["assess", str(f), "--no-simulate"]).output
    assert text.index("INCOMPLETE SCREEN") < text.index("Tramadol verdict")
    assert "zorblaxamine" in text[: text.index("Tramadol verdict")]
    out = json.loads(runner.invoke(app, ["assess", str(f), "--format", "json", "--no-simulate"]).stdout)
    assert out["tramadol"]["verdict"] == "caution"
    assert out["tramadol"]["findings"][0]["code"] == "incomplete_screen"
    assert out["not_screened"] == ["medication: zorblaxamine"]


def test_assess_override_reason_unlocks_an_avoid_schedule_only(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"age_years": 40, "conditions": ["seizure_disorder"]}))
    plain = json.loads(runner.invoke(app, ["assess", str(f), "--format", "json", "--no-simulate"]).stdout)
    assert plain["tramadol"]["regimen"] is None and "override" in plain["tramadol"]["regimen_withheld"]
    chosen = json.loads(runner.invoke(app, ["assess", str(f), "--format", "json", "--no-simulate",
                                            "--override-reason", "declined all other options"]).stdout)
    assert chosen["tramadol"]["regimen"] and chosen["tramadol"]["override"] == "declined all other options"
