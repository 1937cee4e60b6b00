"""Spark reads a start date the day after the as-of date, with and without an offset, and the renal value as
the more recent of a clearance and an eGFR, as the per-patient mapper does (tests/core/test_fhir_start_and_renal.py
checks DuckDB; the generator draws no offset ahead of UTC, so the differential test never shifts a date back)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from tests_support import bulk_rows
from withdrawal.fhir import to_patient
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.population.per_patient import PatientEvaluator

AS_OF = date(2025, 6, 1)
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"


def _record(pid: str, *resources: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"resourceType": "Patient", "id": pid, "birthDate": "1980-05-05", "gender": "male"}]
    out += [{**r, "id": f"{pid}-{i}", "subject": {"reference": f"Patient/{pid}"}} for i, r in enumerate(resources)]
    return out


def _maoi(rtype: str, **dates: Any) -> dict[str, Any]:
    return {"resourceType": rtype, "status": "active", "medicationCodeableConcept": {"text": "phenelzine"}, **dates}


def _obs(code: str, day: str | None, value: float) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Observation", "status": "final", "valueQuantity": {"value": value},
                           "code": {"coding": [{"system": LOINC, "code": code}]}}
    return {**res, "effectiveDateTime": day} if day else res


# pid: (record, verdict)
RECORDS = {
    "tomorrow": (_record("tomorrow", _maoi("MedicationRequest", authoredOn="2025-06-02")), "contraindicated"),
    "sydney": (_record("sydney", _maoi("MedicationRequest", authoredOn="2025-06-02T08:00:00+10:00")),
               "contraindicated"),
    "sydney_noon": (_record("sydney_noon", _maoi("MedicationStatement",
                                                 effectivePeriod={"start": "2025-06-02T12:00:00+10:00"})),
                    "acceptable"),
    "ny_evening": (_record("ny_evening", _maoi("MedicationStatement", effectiveDateTime="2025-06-01T23:15:00-05:00")),
                   "acceptable"),
    "five_days": (_record("five_days", _maoi("MedicationRequest", authoredOn="2025-06-06")), "acceptable"),
    "recent_egfr": (_record("recent_egfr", _obs("2164-2", "2020-03-01", 90), _obs("33914-3", "2025-05-28", 10)),
                    "caution"),
    "recent_crcl": (_record("recent_crcl", _obs("2164-2", "2025-05-28", 80), _obs("33914-3", "2024-01-01", 10)),
                    "acceptable"),
    "undated_crcl": (_record("undated_crcl", _obs("2164-2", None, 90), _obs("33914-3", "2019-01-01", 15)), "caution"),
    # the one 'after as-of' rule read for every date: an eGFR, a seizure's onset, an abatement
    "egfr_sydney": (_record("egfr_sydney", _obs("33914-3", "2025-06-02T08:00:00+10:00", 10)), "caution"),
    "egfr_five_days": (_record("egfr_five_days", _obs("33914-3", "2025-06-06", 10)), "acceptable"),
    "seizure_tomorrow": (_record("seizure_tomorrow", {"resourceType": "Condition", "onsetDateTime": "2025-06-02",
                                                      "code": {"coding": [{"system": SCT, "code": "84757009"}]}}),
                         "avoid"),
    "seizure_abated_ny": (_record("seizure_abated_ny", {
        "resourceType": "Condition", "abatementDateTime": "2025-06-01T23:15:00-05:00",
        "code": {"coding": [{"system": SCT, "code": "84757009"}]}}), "avoid"),
    "cpt_tonsils": (_record("cpt_tonsils", {"resourceType": "Procedure", "status": "completed", "code": {
        "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "42826", "display": "Tonsillectomy"}]}}),
                    "caution"),
}


def test_spark_reads_them_as_the_mapper(kb: KnowledgeBase, spark: Any, tmp_path: Path) -> None:
    rows = bulk_rows(tmp_path, (record for record, _ in RECORDS.values()), as_of=AS_OF, kb=kb, engine="spark",
                     spark=spark)
    evaluate = PatientEvaluator(kb)
    for pid, (record, verdict) in RECORDS.items():
        want = evaluate(to_patient(record, kb, as_of=AS_OF).patient)
        assert (pid, rows[pid]["verdict"], sorted(rows[pid]["codes"])) == (pid, want.verdict, sorted(want.codes))
        assert want.verdict == verdict, (pid, want.codes)
