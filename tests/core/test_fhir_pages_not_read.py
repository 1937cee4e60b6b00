"""A Bundle given as it is (the CLI's file, the REST API's body) whose ``link`` names a ``next`` page holds
only part of the record: the page not read is named as not screened and the screen is incomplete, never
clean, as the CDS service names a prefetch cut short. A Bundle without one reads as before."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from withdrawal.assess import assess_patient
from withdrawal.cli import app
from withdrawal.fhir.mapping import pages_not_read
from withdrawal.intake import read_fhir_record
from withdrawal.knowledge.loader import default_kb

AS_OF = date(2025, 6, 1)
NEXT = "https://ehr.example/fhir/MedicationRequest?patient=p&_page=2"


def _bundle(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                         "entry": [{"resource": r} for r in resources]}
    if next_url:
        b["link"] = [{"relation": "self", "url": "https://ehr.example/fhir/x"}, {"relation": "next", "url": next_url}]
    return b


PATIENT = {"resourceType": "Patient", "id": "p", "birthDate": "1985-03-02", "gender": "male"}


def test_a_bundle_with_a_next_page_is_an_incomplete_screen() -> None:
    kb = default_kb()
    for raw in (_bundle(PATIENT, next_url=NEXT), _bundle(PATIENT, _bundle(next_url=NEXT))):
        assert pages_not_read(raw) == [NEXT]
        p = read_fhir_record(raw, kb, AS_OF).patient
        answer = assess_patient(p, kb).to_dict()
        assert answer["tramadol"]["verdict"] == "caution"
        assert answer["tramadol"]["findings"][0]["code"] == "incomplete_screen"
        assert any(NEXT in n and "not read" in n for n in answer["not_screened"])


def test_a_whole_bundle_stays_clean() -> None:
    kb = default_kb()
    raw = _bundle(PATIENT)
    raw["link"] = [{"relation": "self", "url": "https://ehr.example/fhir/x"}]
    assert pages_not_read(raw) == [] and pages_not_read([PATIENT]) == []
    answer = assess_patient(read_fhir_record(raw, kb, AS_OF).patient, kb).to_dict()
    assert answer["tramadol"]["verdict"] == "acceptable" and answer["not_screened"] == []


def test_the_cli_names_the_page_not_read(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(_bundle(PATIENT, next_url=NEXT)), encoding="utf-8")
    got = CliRunner().invoke(app, ["assess", str(path), "--format", "json", "--as-of", AS_OF.isoformat()])
    assert got.exit_code == 0, got.output
    out = json.loads(got.output)
    assert out["tramadol"]["verdict"] == "caution"
    assert any(NEXT in n for n in out["not_screened"])
