"""Two readings of a FHIR record, per patient and in bulk alike.

A medication's start date: the as-of date is a UTC date, and an EHR ahead of UTC writes today's local date,
tomorrow in UTC. An MAOI ordered this morning in Sydney was read as not yet started and the screen came out
clean. A start date (a date) at most one day after the as-of date now counts as started; a dateTime with an
offset is compared exactly, by its UTC date (the table's ``after as-of`` rows). One starting in 5 days
is still not yet part of the record.

The renal value: the mapper read the latest clearance whenever there was one, so a 2020 clearance of 90 beat
this week's eGFR of 10 and the renal dose limit was missed. It is now the more recent of the two (the same day:
the lower; an undated one is older than any dated one), and an unreadable one not older than it is named.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests_support import bulk_rows
from withdrawal.assess import assess_patient
from withdrawal.fhir import reading
from withdrawal.fhir.mapping import late_days, to_patient, utc_shift
from withdrawal.knowledge.loader import default_kb
from withdrawal.population.per_patient import PatientEvaluator

AS_OF = date(2025, 6, 1)
LOINC = "http://loinc.org"
MAOI = {"text": "phenelzine"}


def _record(pid: str, *resources: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"resourceType": "Patient", "id": pid, "birthDate": "1980-05-05", "gender": "male"}]
    for i, r in enumerate(resources):
        out.append({**r, "id": f"{pid}-{i}", "subject": {"reference": f"Patient/{pid}"}})
    return out


def _order(authored: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "status": "active", "intent": "order", "authoredOn": authored,
            "medicationCodeableConcept": MAOI}


def _statement(**dates: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationStatement", "status": "active", "medicationCodeableConcept": MAOI, **dates}


def _obs(code: str, day: str | None, value: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                           "code": {"coding": [{"system": LOINC, "code": code}]}}
    if day is not None:
        res["effectiveDateTime"] = day
    res["valueQuantity" if isinstance(value, float | int) else "valueString"] = (
        {"value": value, "unit": "mL/min"} if isinstance(value, float | int) else value)
    return res


CRCL, EGFR = "2164-2", "33914-3"

# pid: (record, MAOI read as started)
STARTS: dict[str, tuple[list[dict[str, Any]], bool]] = {
    "today": (_record("today", _order("2025-06-01")), True),
    "tomorrow": (_record("tomorrow", _order("2025-06-02")), True),  # Sydney's today
    "tomorrow_statement": (_record("tomorrow_statement", _statement(effectivePeriod={"start": "2025-06-02"})), True),
    "tomorrow_effective": (_record("tomorrow_effective", _statement(effectiveDateTime="2025-06-02")), True),
    "sydney_morning": (_record("sydney_morning", _order("2025-06-02T08:00:00+10:00")), True),  # 2025-06-01 UTC
    "sydney_noon": (_record("sydney_noon", _order("2025-06-02T12:00:00.123+10:00")), False),  # 2025-06-02 UTC
    "utc_tomorrow": (_record("utc_tomorrow", _order("2025-06-02T00:30:00Z")), False),
    "ny_evening": (_record("ny_evening", _order("2025-06-01T23:15:00-05:00")), False),  # 2025-06-02 UTC
    "ny_morning": (_record("ny_morning", _order("2025-06-01T09:00:00-05:00")), True),
    "no_offset": (_record("no_offset", _order("2025-06-02T09:00:00")), True),  # cannot say its zone: a date
    "two_days": (_record("two_days", _order("2025-06-03")), False),
    "five_days": (_record("five_days", _order("2025-06-06")), False),
    "year": (_record("year", _order("2025")), True),
}


def _bulk(tmp_path: Path, records: list[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return bulk_rows(tmp_path, records, as_of=AS_OF, kb=default_kb())


def test_the_table_reads_a_start_date_one_day_late() -> None:
    assert reading.number(reading.DATES, "after as-of", "date") == 1
    assert reading.number(reading.DATES, "after as-of", "dateTime with offset") == 0
    for rtype in ("MedicationRequest", "MedicationStatement"):
        assert reading.reading_of(rtype, "after as-of", "start date") == reading.AFTER_AS_OF
    assert [utc_shift(v) for v in ("2025-06-02", "2025-06-02T08:00:00+10:00", "2025-06-02T12:00:00+10:00",
                                   "2025-06-01T23:15:00-05:00", "2025-06-01T10:00:00Z", "2025-06-01T10:00:00",
                                   "2025", None)] == [None, -1, 0, 1, 0, None, None, None]
    assert late_days("2025-06-02T08:00:00+10:00") == 1
    assert late_days("2025-06-01T23:15:00-05:00") == -1
    assert late_days("2025-06-02") == 1


@pytest.mark.parametrize("pid", sorted(STARTS))
def test_a_start_date_tomorrow_counts_per_patient(pid: str) -> None:
    kb = default_kb()
    record, started = STARTS[pid]
    p = to_patient(record, kb, as_of=AS_OF).patient
    assert [m.name for m in p.medications] == (["phenelzine"] if started else [])
    screen = assess_patient(p, kb, simulate=False).screen
    assert screen.verdict == ("contraindicated" if started else "acceptable"), screen.codes


def test_a_start_date_tomorrow_counts_in_bulk(tmp_path: Path) -> None:
    kb = default_kb()
    rows = _bulk(tmp_path, [record for record, _ in STARTS.values()])
    evaluate = PatientEvaluator(kb)
    for pid, (record, started) in STARTS.items():
        want = evaluate(to_patient(record, kb, as_of=AS_OF).patient)
        assert (pid, rows[pid]["verdict"], list(rows[pid]["codes"])) == (pid, want.verdict, list(want.codes))
        assert rows[pid]["verdict"] == ("contraindicated" if started else "acceptable"), pid


MEASURE = {"old_crcl_recent_egfr": "egfr", "recent_crcl_old_egfr": "creatinine_clearance",
           "same_day_lower_egfr": "egfr", "same_day_lower_crcl": "creatinine_clearance", "undated_crcl": "egfr",
           "undated_both": "egfr", "egfr_only": "egfr", "unread_crcl_before_egfr": "egfr",
           "unread_crcl_same_day": "egfr"}
"""The measure the renal value was read from, where it is not a clearance's (the answer names it)."""

# pid: (observations, renal value read, named as not screened)
RENAL: dict[str, tuple[list[dict[str, Any]], float | None, bool]] = {
    "old_crcl_recent_egfr": ([_obs(CRCL, "2020-03-01", 90), _obs(EGFR, "2025-05-28", 10)], 10, False),
    "recent_crcl_old_egfr": ([_obs(CRCL, "2025-05-28", 25), _obs(EGFR, "2024-01-01", 80)], 25, False),
    "same_day_lower_egfr": ([_obs(CRCL, "2025-05-28", 45), _obs(EGFR, "2025-05-28T10:00:00Z", 20)], 20, False),
    "same_day_lower_crcl": ([_obs(CRCL, "2025-05-28", 20), _obs(EGFR, "2025-05-28", 45)], 20, False),
    "undated_crcl": ([_obs(CRCL, None, 90), _obs(EGFR, "2019-01-01", 15)], 15, False),
    "undated_both": ([_obs(CRCL, None, 90), _obs(EGFR, None, 15)], 15, False),
    "egfr_only": ([_obs(EGFR, "2025-05-01", 12)], 12, False),
    "crcl_only": ([_obs(CRCL, "2025-05-01", 70)], 70, False),
    # an eGFR that cannot be read, more recent than the clearance read: named (it was hidden by any clearance)
    "unread_egfr_after_crcl": ([_obs(CRCL, "2025-01-01", 80), _obs(EGFR, "2025-05-01", "<15")], 80, True),
    "unread_egfr_before_crcl": ([_obs(CRCL, "2025-05-10", 80), _obs(EGFR, "2025-05-01", "<15")], 80, False),
    "unread_crcl_before_egfr": ([_obs(CRCL, "2025-05-01", "<15"), _obs(EGFR, "2025-05-10", 60)], 60, False),
    "unread_crcl_same_day": ([_obs(CRCL, "2025-05-10", "<15"), _obs(EGFR, "2025-05-10", 60)], 60, True),
}


@pytest.mark.parametrize("pid", sorted(RENAL))
def test_the_renal_value_is_the_more_recent(pid: str) -> None:
    kb = default_kb()
    obs, renal, named = RENAL[pid]
    p = to_patient(_record(pid, *obs), kb, as_of=AS_OF).patient
    assert p.creatinine_clearance_ml_min == renal
    assert p.renal_measure == MEASURE.get(pid, "creatinine_clearance")
    assert any("record not read: Observation/" in c for c in p.conditions) == named, p.conditions
    answer = assess_patient(p, kb, simulate=False)
    screen = answer.screen
    assert ("renal_impairment" in screen.codes) == (renal is not None and renal < 30), screen.codes
    if renal is not None and renal < 30:
        said = json.dumps(answer.to_dict())
        measure = f"eGFR {renal:g} mL/min/1.73 m2" if p.renal_measure == "egfr" else f"CrCl {renal:g} mL/min"
        assert measure in said and ("CrCl" in said) is (p.renal_measure != "egfr")


def test_a_clearance_given_beside_the_record_is_not_named_as_its_measure() -> None:
    record = _record("p", _obs(EGFR, "2025-05-28", 10))
    p = to_patient(record, default_kb(), as_of=AS_OF, extra={"creatinine_clearance_ml_min": 20}).patient
    assert (p.creatinine_clearance_ml_min, p.renal_measure) == (20, None)


def test_the_renal_value_in_bulk_agrees(tmp_path: Path) -> None:
    kb = default_kb()
    records = {pid: _record(pid, *obs) for pid, (obs, _, _) in RENAL.items()}
    rows = _bulk(tmp_path, list(records.values()))
    evaluate = PatientEvaluator(kb)
    for pid, record in records.items():
        want = evaluate(to_patient(record, kb, as_of=AS_OF).patient)
        assert (pid, rows[pid]["verdict"], sorted(rows[pid]["codes"])) == (pid, want.verdict, sorted(want.codes))
        renal, named = RENAL[pid][1], RENAL[pid][2]
        assert ("renal_impairment" in rows[pid]["codes"]) == (renal is not None and renal < 30), pid
        assert ("incomplete_screen" in rows[pid]["codes"]) == named, pid
