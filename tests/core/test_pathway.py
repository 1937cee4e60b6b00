"""The buprenorphine start pathway: three patients (heroin, fentanyl, methadone-maintained), the
exclusions it must honour, its data checks and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from withdrawal.assess import assess
from withdrawal.cli import app
from withdrawal.errors import InputError, KnowledgeBaseError
from withdrawal.knowledge.base import data_dir
from withdrawal.knowledge.loader import KnowledgeBase, load_kb
from withdrawal.pathway import Pathway, build_pathway

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
runner = CliRunner()


def _example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def _pathway(raw: dict[str, Any], kb: KnowledgeBase) -> Pathway:
    return build_pathway(assess(raw, kb))


def test_heroin_in_withdrawal_gets_the_standard_start_now(kb: KnowledgeBase) -> None:
    p = _pathway(_example("patient"), kb)  # heroin 14 h ago, COWS 17
    assert p.status == "available"
    assert [s.id for s in p.starts] == ["standard", "low_dose", "high_dose_ed"]
    assert p.starts[0].role == "first" and p.starts[0].cows_min == 8
    assert p.starts[0].now is not None and p.starts[0].now.startswith("Can start now: 14 h")
    assert "Plan: Standard start (in withdrawal)." in p.chart_note
    assert "COWS: 17/48 (Moderate)" in p.chart_note
    assert "Day 1: buprenorphine" not in p.chart_note  # no low-dose schedule for a standard start
    assert p.rechecks and p.precipitated_withdrawal
    assert any("Bridge prescription" in s.text for s in p.handoff)


def test_fentanyl_gets_the_published_low_dose_schedule_and_the_benzodiazepine_warning(kb: KnowledgeBase) -> None:
    p = _pathway(_example("patient_fentanyl"), kb)  # fentanyl 6 h ago, COWS 3, alprazolam, outpatient
    assert p.status == "available"
    assert [s.id for s in p.starts] == ["low_dose", "standard", "high_dose_ed"]
    low = p.starts[0]
    assert low.why.startswith("On board: fentanyl.")
    assert p.headline == "Suggested: Low-dose start overlapping the full agonist, fentanyl on board."
    # the outpatient schedule first (the patient's setting), copied day by day from the data
    data = next(s for s in kb.pathway.starts if s.id == "low_dose").schedules  # type: ignore[union-attr]
    table = next(s for s in data if s.id == "jabfm_outpatient_7_day")
    assert low.schedules[0].id == "jabfm_outpatient_7_day"
    assert [(d.day, d.buprenorphine) for d in low.schedules[0].days] == [(d.day, d.buprenorphine) for d in table.days]
    assert low.schedules[0].days[0].buprenorphine.startswith("0.5 mg once daily")
    assert "jabfm_microinduction_table" in low.schedules[0].sources
    # the standard start is the alternative, and it is not yet: fentanyl 6 h ago
    standard = p.starts[1]
    assert standard.now is not None and "not yet" in standard.now and "fentanyl" in standard.now
    # the option's findings go with the pathway: the benzodiazepine boxed warning
    assert [f.code for f in p.findings] == ["cns_depressant"]
    assert "boxed warning" in p.findings[0].message
    assert "Caution (caution, cns_depressant)" in p.chart_note
    assert "Day 1: buprenorphine 0.5 mg once daily" in p.chart_note
    assert any("precipitated withdrawal" in n for n in p.notes)  # the fentanyl option note


def test_methadone_maintained_inpatient_gets_the_inpatient_low_dose_schedule(kb: KnowledgeBase) -> None:
    raw = _example("patient_methadone")  # methadone 80 mg/day, last dose 20 h ago, inpatient
    p = _pathway(raw, kb)
    assert p.status == "available"
    assert p.starts[0].id == "low_dose"
    assert p.starts[0].why.startswith("On board: methadone.")
    assert p.starts[0].schedules[0].id == "wong_inpatient_rapid"
    assert p.starts[0].schedules[0].days[0].buprenorphine.startswith("0.5 mg sublingually every 3 h")
    standard = p.starts[1]
    assert standard.now is not None and "24 h after the last methadone" in standard.now
    assert [(o.name, o.hours_since_last_dose) for o in p.on_board] == [("methadone", 20.0)]
    assert any("opioid treatment programme" in n for n in p.notes)  # the switch is agreed with the OTP
    assert "Day 1: buprenorphine 0.5 mg sublingually every 3 h" in p.chart_note


def test_still_taking_a_full_agonist_puts_the_low_dose_start_first(kb: KnowledgeBase) -> None:
    raw = {"age_years": 50, "medications": [{"name": "oxycodone"}], "opioid": {"substance": "heroin",
           "hours_since_last_use": 30}}  # fmt: skip
    p = _pathway(raw, kb)
    assert p.starts[0].id == "low_dose"
    assert any(o.name == "oxycodone" and o.still_taking for o in p.on_board)


def test_unknown_hours_of_a_short_acting_opioid_is_not_still_taking(kb: KnowledgeBase) -> None:
    raw = _example("patient")
    raw["opioid"] = {"substance": "heroin"}
    p = _pathway(raw, kb)
    assert p.starts[0].id == "standard"
    assert p.on_board[0].still_taking is False
    assert "heroin (time of last use not recorded)" in p.chart_note


def test_naltrexone_excludes_every_start_and_says_why(kb: KnowledgeBase) -> None:
    raw = _example("patient")
    raw["medications"] = [{"name": "naltrexone"}]
    p = _pathway(raw, kb)
    assert p.status == "excluded"
    assert p.starts == () and p.rechecks == () and p.precipitated_withdrawal == ()
    assert "Naltrexone" in p.headline and p.excluded_reasons
    assert "Day 1" not in p.chart_note and "Plan:" not in p.chart_note
    assert not any("Bridge prescription" in s.text for s in p.handoff)
    assert any("Naloxone" in s.text for s in p.handoff)
    assert "Lofexidine (Lucemyra)" in p.alternatives and "Methadone" not in p.alternatives


def test_already_on_buprenorphine_and_under_16_get_no_start(kb: KnowledgeBase) -> None:
    on = _example("patient")
    on["medications"] = [{"name": "Suboxone"}]
    assert _pathway(on, kb).status == "already_on"
    young = _example("patient")
    young["age_years"] = 15
    p = _pathway(young, kb)
    assert p.status == "specialist" and p.starts == ()


def test_incomplete_screen_is_named_first_in_the_chart_note(kb: KnowledgeBase) -> None:
    raw = _example("patient")
    raw["medications"] = [{"name": "zzqx-unknown-pill"}]
    p = _pathway(raw, kb)
    assert p.not_screened == ("medication: zzqx-unknown-pill",)
    assert p.chart_note.splitlines()[1].startswith("NOT SCREENED")


def test_unverified_steps_are_marked(kb: KnowledgeBase) -> None:
    p = _pathway(_example("patient"), kb)
    unverified = [s for s in (*p.precipitated_withdrawal, *p.handoff) if not s.verified]
    assert unverified, "the data marks some hand-off and rescue steps from_memory"
    assert "(unverified)" in p.chart_note
    for s in unverified:
        if s in p.handoff:
            assert f"{s.text} (unverified)" in p.chart_note


def test_every_schedule_is_a_cited_published_table(kb: KnowledgeBase) -> None:
    assert kb.pathway is not None
    for start in kb.pathway.starts:
        for sc in start.schedules:
            assert sc.verification == "verified", (
                f"{sc.id}: a schedule not read in its source must not be shown as fact"
            )
            assert all(kb.sources[s].kind in ("paper", "guideline") and kb.sources[s].url for s in sc.sources)


def test_unknown_pathway_is_refused(kb: KnowledgeBase) -> None:
    with pytest.raises(InputError, match="allowed: buprenorphine"):
        build_pathway(assess(_example("patient"), kb), "naltrexone")


def _copy_kb(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(data_dir(), target)
    return target


def _edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_threshold_must_match_the_option(tmp_path: Path) -> None:
    d = _copy_kb(tmp_path)
    _edit(d / "pathway.yaml", lambda y: y["starts"][0].update(cows_min=12))
    with pytest.raises(KnowledgeBaseError, match="start_cows_min"):
        load_kb(d)


def test_schedule_with_a_gap_or_an_unknown_source_is_refused(tmp_path: Path) -> None:
    d = _copy_kb(tmp_path)
    _edit(d / "pathway.yaml", lambda y: y["starts"][1]["schedules"][0]["days"].pop(2))
    with pytest.raises(KnowledgeBaseError, match="without gaps"):
        load_kb(d)
    d2 = _copy_kb(tmp_path / "b")
    _edit(d2 / "pathway.yaml", lambda y: y["starts"][1]["schedules"][0].update(sources=["made_up_protocol"]))
    with pytest.raises(KnowledgeBaseError, match="made_up_protocol"):
        load_kb(d2)


def test_cli_pathway_text_and_json() -> None:
    text = runner.invoke(app, ["assess", str(EXAMPLES / "patient_fentanyl.json"), "--pathway", "buprenorphine"])
    assert text.exit_code == 0, text.output
    for part in ("Buprenorphine start pathway", "SUGGESTED: Low-dose start", "0.5 mg once daily",
                 "cns_depressant", "Chart note", "unverified", "Sources"):  # fmt: skip
        assert part in text.output, part
    out = runner.invoke(
        app, ["assess", str(EXAMPLES / "patient.json"), "--pathway", "buprenorphine", "-f", "json", "--no-simulate"]
    )
    data = json.loads(out.stdout)
    assert data["pathway"]["status"] == "available"
    assert data["pathway"]["starts"][0]["id"] == "standard"
    assert set(data["pathway"]["sources"]) <= set(data["sources"])
    assert data["tramadol"]["verdict"] == "caution"  # the whole answer is still there


def test_cli_unknown_pathway_exits_2_naming_the_option() -> None:
    result = runner.invoke(app, ["assess", str(EXAMPLES / "patient.json"), "--pathway", "methadone"])
    assert result.exit_code == 2
    assert "--pathway" in result.output and "buprenorphine" in result.output


def test_docs_show_the_three_patients_as_the_software_does(kb: KnowledgeBase) -> None:
    """docs/pathway.md quotes each example's chart note: its plan, timing and schedule lines are current."""
    doc = (REPO / "docs" / "pathway.md").read_text()
    for name in ("patient", "patient_fentanyl", "patient_methadone"):
        note = _pathway(_example(name), kb).chart_note.splitlines()
        wanted = [ln for ln in note if ln.startswith(("Plan:", "Timing:", "Schedule:", "  Day ", "Opioids on board:", "Note:"))]
        assert wanted, name
        for line in wanted:
            assert line in doc, f"docs/pathway.md is out of date ({name}): {line}"
