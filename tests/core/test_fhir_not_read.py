"""What the reading cannot read is named as not screened, never dropped: a resource that cannot be read
(per patient), and a pregnancy, breastfeeding, clearance, eGFR or CYP2D6 result whose value cannot be read
(per patient and in bulk alike). An AllergyIntolerance category written as a CodeableConcept is read."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests_support import bulk_rows
from withdrawal.assess import assess_patient
from withdrawal.fhir import mapping
from withdrawal.intake import read_patient
from withdrawal.knowledge.loader import default_kb

AS_OF = date(2025, 6, 1)
LOINC = "http://loinc.org"


def _record(pid: str, *resources: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"resourceType": "Patient", "id": pid, "birthDate": "1980-05-05", "gender": "female"}]
    for i, r in enumerate(resources):
        r = {**r, "id": f"{pid}-{i}"}
        r["patient" if r["resourceType"] == "AllergyIntolerance" else "subject"] = {"reference": f"Patient/{pid}"}
        out.append(r)
    return out


def _obs(code: str, day: str = "2025-05-01", **value: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "effectiveDateTime": day,
            "code": {"coding": [{"system": LOINC, "code": code}]}, **value}


RECORDS: dict[str, tuple[list[dict[str, Any]], str, bool]] = {
    # pid: (record, verdict, named as not screened)
    "allergy_concept": (_record("allergy_concept", {"resourceType": "AllergyIntolerance", "code": {"text": "tramadol"},
                                                    "category": [{"coding": [{"code": "medication"}]}]}),
                        "contraindicated", False),
    "allergy_food": (_record("allergy_food", {"resourceType": "AllergyIntolerance", "code": {"text": "tramadol"},
                                              "category": [{"coding": [{"code": "food"}]}]}), "acceptable", False),
    "contained_number": (_record("contained_number", {"resourceType": "MedicationRequest", "status": "active",
                                                      "contained": 5,
                                                      "medicationCodeableConcept": {"text": "phenelzine"}}),
                         "contraindicated", False),
    "pregnancy_string": (_record("pregnancy_string", _obs("82810-3", valueString="positive")), "caution", True),
    "pregnancy_text": (_record("pregnancy_text", _obs("11449-6", valueCodeableConcept={"text": "pregnant"})),
                       "caution", True),
    "crcl_string": (_record("crcl_string", _obs("2164-2", valueString="<15")), "caution", True),
    "cyp_string": (_record("cyp_string", _obs("79714-9", valueString="indeterminate")), "caution", True),
    "breastfeeding_string": (_record("breastfeeding_string", _obs("63895-7", valueString="yes")), "caution", True),
    # a later result read supersedes it; an eGFR not read, more recent than the clearance read, is named (the
    # renal value is the more recent of the two: it was hidden by any clearance), an older one is not
    "crcl_superseded": (_record("crcl_superseded", _obs("2164-2", valueString="<15"),
                                _obs("2164-2", "2025-05-10", valueQuantity={"value": 80})), "acceptable", False),
    "egfr_beside_crcl": (_record("egfr_beside_crcl", _obs("33914-3", valueString="<15"),
                                 _obs("2164-2", "2025-01-01", valueQuantity={"value": 80})), "caution", True),
    "egfr_before_crcl": (_record("egfr_before_crcl", _obs("33914-3", valueString="<15"),
                                 _obs("2164-2", "2025-05-10", valueQuantity={"value": 80})), "acceptable", False),
    "pregnancy_old": (_record("pregnancy_old", _obs("82810-3", "2020-01-01", valueString="x")), "acceptable", False),
    "clean": (_record("clean"), "acceptable", False),
}


@pytest.mark.parametrize("pid", sorted(RECORDS))
def test_per_patient(pid: str) -> None:
    kb = default_kb()
    record, verdict, named = RECORDS[pid]
    answer = assess_patient(read_patient(record, kb, AS_OF), kb).to_dict()
    assert answer["tramadol"]["verdict"] == verdict
    assert any("record not read: Observation/" in n for n in answer["not_screened"]) == named, answer["not_screened"]


def test_bulk_agrees(tmp_path: Path) -> None:
    kb = default_kb()
    rows = bulk_rows(tmp_path, (record for record, _, _ in RECORDS.values()), as_of=AS_OF, kb=kb)
    assert {pid: rows[pid]["verdict"] for pid in RECORDS} == {pid: v for pid, (_, v, _) in RECORDS.items()}
    assert {pid for pid in RECORDS if "incomplete_screen" in rows[pid]["codes"]} == {
        pid for pid, (_, _, named) in RECORDS.items() if named}


@pytest.mark.parametrize("rtype", ["Condition", "Procedure", "MedicationRequest", "MedicationStatement",
                                   "AllergyIntolerance", "Observation"])
def test_a_resource_that_cannot_be_read_is_named(rtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever makes a reader fail on a resource of a type the screen reads, it is named, never dropped."""
    def fail(*_: Any, **__: Any) -> Any:
        raise TypeError("unexpected shape")

    reader = {"Condition": "_condition_entry", "Procedure": "_procedure_entry", "MedicationRequest": "read_medication",
              "MedicationStatement": "read_medication", "AllergyIntolerance": "_allergy_entry",
              "Observation": "_observation"}[rtype]
    monkeypatch.setattr(mapping, reader, fail)
    kb = default_kb()
    record = _record("p", {"resourceType": rtype, "status": "active"})
    answer = assess_patient(read_patient(record, kb, AS_OF), kb).to_dict()
    assert answer["tramadol"]["verdict"] == "caution"
    assert any(f"record not read: {rtype}/p-0 (unreadable (TypeError))" in n for n in answer["not_screened"])
