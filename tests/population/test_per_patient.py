"""Hand-written FHIR patients: the engine's findings equal ``screen_tramadol`` on the same facts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from population_support import rows_by_id

from tests_support import write_export
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.patient import MedicationIn, PatientIn, resolve
from withdrawal.population.flags import flag_columns
from withdrawal.population.per_patient import PatientEvaluator
from withdrawal.population.screen import run_screen
from withdrawal.safety import screen_tramadol

FLAG_COLUMNS = flag_columns(default_kb())

AS_OF = date(2025, 6, 30)
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _day(days_ago: int) -> str:
    return (AS_OF - timedelta(days=days_ago)).isoformat()


def _med(pid: str, i: int, *, code: str | None = None, text: str, status: str = "active",
         ended_days_ago: int | None = None, mg: float | None = None, per_day: int = 1) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    if code:
        concept["coding"] = [{"system": RX, "code": code}]
    res: dict[str, Any] = {"resourceType": "MedicationRequest", "id": f"{pid}-m{i}", "status": status,
                           "intent": "order", "subject": {"reference": f"Patient/{pid}"}, "authoredOn": _day(200),
                           "medicationCodeableConcept": concept}
    if ended_days_ago is not None:
        res["dispenseRequest"] = {"validityPeriod": {"start": _day(200), "end": _day(ended_days_ago)}}
    if mg is not None:
        res["dosageInstruction"] = [{"timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                                     "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg"}}]}]
    return res


def _cond(pid: str, i: int, code: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": f"{pid}-c{i}", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]}}


def _crcl(pid: str, i: int, value: float, days_ago: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"{pid}-o{i}", "status": "final",
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": _day(days_ago),
            "code": {"coding": [{"system": "http://loinc.org", "code": "2164-2"}]},
            "valueQuantity": {"value": value, "unit": "mL/min"}}


CASES: dict[str, tuple[list[dict[str, Any]], PatientIn]] = {
    "maoi14": (
        [_med("maoi14", 0, code="10689", text="tramadol 50 MG", mg=50, per_day=4),
         _med("maoi14", 1, code="8123", text="phenelzine", status="stopped", ended_days_ago=14)],
        PatientIn(age_years=40, medications=(
            MedicationIn(rxnorm="10689", name="tramadol 50 MG", dose_mg_per_day=200),
            MedicationIn(rxnorm="8123", name="phenelzine", status="stopped", days_since_stopped=14))),
    ),
    "maoi15": (
        [_med("maoi15", 0, code="10689", text="tramadol 50 MG", mg=50, per_day=4),
         _med("maoi15", 1, code="8123", text="phenelzine", status="active", ended_days_ago=15)],
        PatientIn(age_years=40, medications=(
            MedicationIn(rxnorm="10689", name="tramadol 50 MG", dose_mg_per_day=200),
            MedicationIn(rxnorm="8123", name="phenelzine", status="stopped", days_since_stopped=15))),
    ),
    "renal29": (
        [_crcl("renal29", 0, 80, 300), _crcl("renal29", 1, 29, 10)],
        PatientIn(age_years=40, creatinine_clearance_ml_min=29),
    ),
    "renal30": (
        [_crcl("renal30", 0, 20, 300), _crcl("renal30", 1, 30, 10)],
        PatientIn(age_years=40, creatinine_clearance_ml_min=30),
    ),
    "oud_suboxone": (
        [_cond("oud_suboxone", 0, "F11.20"), _med("oud_suboxone", 1, text="Suboxone 8 MG / 2 MG film")],
        PatientIn(age_years=40, conditions=("F11.20",),
                  medications=(MedicationIn(name="Suboxone 8 MG / 2 MG film"),)),
    ),
    "oxy_benzo": (
        [_med("oxy_benzo", 0, code="7804", text="oxycodone 20 MG", mg=20, per_day=3),
         _med("oxy_benzo", 1, text="Xanax 1 MG Oral Tablet"), _cond("oxy_benzo", 2, "G40.909")],
        PatientIn(age_years=40, conditions=("G40.909",), medications=(
            MedicationIn(rxnorm="7804", name="oxycodone 20 MG", dose_mg_per_day=60),
            MedicationIn(name="Xanax 1 MG Oral Tablet"))),
    ),
}


@pytest.fixture(scope="module")
def engine_rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("cases")
    records = [[{"resourceType": "Patient", "id": pid, "birthDate": date(AS_OF.year - data.age_years, 1, 1).isoformat()},
                *resources] for pid, (resources, data) in CASES.items()]
    return rows_by_id(run_screen(write_export(root, records), root / "out", as_of=AS_OF).patients_path)


@pytest.mark.parametrize("pid", sorted(CASES))
def test_engine_equals_screen_tramadol(pid: str, engine_rows: dict[str, dict[str, Any]], kb: KnowledgeBase) -> None:
    data = CASES[pid][1]
    result = screen_tramadol(resolve(data, kb), kb)
    row = engine_rows[pid]
    assert row["codes"] == sorted(result.codes)
    assert row["verdict"] == result.verdict
    expected = PatientEvaluator(kb)(data)
    assert {c: row[c] for c in FLAG_COLUMNS} == {f"flag_{k}": v for k, v in expected.flags.items()}
    assert row["mme"] == expected.mme


def test_the_cases_say_what_they_mean(engine_rows: dict[str, dict[str, Any]]) -> None:
    assert engine_rows["maoi14"]["flag_tramadol_maoi_14d"] and "maoi" in engine_rows["maoi14"]["codes"]
    assert not engine_rows["maoi15"]["flag_tramadol_maoi_14d"]
    assert "renal_impairment" in engine_rows["renal29"]["codes"]
    assert "renal_impairment" not in engine_rows["renal30"]["codes"]
    assert not engine_rows["oud_suboxone"]["flag_oud_untreated"]
    assert engine_rows["oxy_benzo"]["mme"] == 90.0  # 60 mg/day x 1.5
    assert engine_rows["oxy_benzo"]["flag_naloxone_missing"] and engine_rows["oxy_benzo"]["flag_opioid_benzodiazepine"]
    assert engine_rows["maoi14"]["mme"] == 40.0  # tramadol 200 mg/day x 0.2 (CDC 2022)
