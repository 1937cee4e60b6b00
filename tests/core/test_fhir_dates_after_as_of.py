"""Every 'after the as-of date' check reads a date by one rule, per patient and in bulk alike.

The as-of date is a UTC date; an EHR ahead of UTC (Sydney) writes today's local date, tomorrow in UTC. Only a
medication's start date was read so (commit f49c868): a pregnancy result, a seizure diagnosis or a tonsillectomy
recorded today in Sydney was ignored and the screen came out clean. Now a Condition's onset, a Procedure's
performed date and an Observation's date are read by the one rule (the table's ``(every date) | after as-of``
rows): a date at most one day after the as-of date counts, a dateTime with an offset by its UTC date. One dated
in 5 days is still ignored. An abatement is never read earlier than as written (a condition is not dropped by a
shift). A Procedure whose unknown code's text names a condition recorded by a procedure ('Tonsillectomy') is
named as not screened; 'Appendectomy' stays out of scope.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests_support import bulk_rows
from withdrawal.assess import assess_patient
from withdrawal.fhir import reading
from withdrawal.fhir.mapping import to_patient
from withdrawal.knowledge.loader import default_kb
from withdrawal.population.per_patient import PatientEvaluator

AS_OF = date(2025, 6, 1)
SCT = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"


def _record(pid: str, birth: str, sex: str, *resources: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": sex}]
    out += [{**r, "id": f"{pid}-{i}", "subject": {"reference": f"Patient/{pid}"}} for i, r in enumerate(resources)]
    return out


def _pregnancy(day: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "effectiveDateTime": day,
            "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
            "valueCodeableConcept": {"coding": [{"system": SCT, "code": "77386006"}]}}


def _seizure(**dates: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "code": {"coding": [{"system": SCT, "code": "84757009"}]}, **dates}


def _procedure(system: str, code: str, display: str, **dates: Any) -> dict[str, Any]:
    return {"resourceType": "Procedure", "status": "completed",
            "code": {"coding": [{"system": system, "code": code, "display": display}]}, **dates}


def _woman(pid: str, *res: dict[str, Any]) -> list[dict[str, Any]]:
    return _record(pid, "1990-03-03", "female", *res)


def _child(pid: str, *res: dict[str, Any]) -> list[dict[str, Any]]:
    return _record(pid, "2011-01-10", "male", *res)  # 14 on the as-of date


# pid: (record, the finding code expected (None: none of these), incomplete)
CASES: dict[str, tuple[list[dict[str, Any]], str | None, bool]] = {
    "preg_today": (_woman("preg_today", _pregnancy("2025-06-01")), "pregnancy", False),
    "preg_tomorrow": (_woman("preg_tomorrow", _pregnancy("2025-06-02")), "pregnancy", False),  # Sydney's today
    "preg_sydney": (_woman("preg_sydney", _pregnancy("2025-06-02T08:00:00+10:00")), "pregnancy", False),
    "preg_sydney_noon": (_woman("preg_sydney_noon", _pregnancy("2025-06-02T12:00:00+10:00")), None, False),
    "preg_ny_evening": (_woman("preg_ny_evening", _pregnancy("2025-06-01T23:15:00-05:00")), None, False),
    "preg_five_days": (_woman("preg_five_days", _pregnancy("2025-06-06")), None, False),
    "seizure_tomorrow": (_woman("seizure_tomorrow", _seizure(onsetDateTime="2025-06-02")), "seizure_disorder", False),
    "seizure_period": (_woman("seizure_period", _seizure(onsetPeriod={"start": "2025-06-02T07:00:00+10:00"})),
                       "seizure_disorder", False),
    "seizure_five_days": (_woman("seizure_five_days", _seizure(onsetDateTime="2025-06-06")), None, False),
    # abated today in Sydney (2025-06-01 in UTC) is read as written, tomorrow: still counted
    "seizure_abated_sydney": (_woman("seizure_abated_sydney",
                                     _seizure(abatementDateTime="2025-06-02T08:00:00+10:00")), "seizure_disorder", False),
    # abated this evening in New York (2025-06-02 in UTC): not yet abated in UTC, counted
    "seizure_abated_ny": (_woman("seizure_abated_ny", _seizure(abatementDateTime="2025-06-01T23:15:00-05:00")),
                          "seizure_disorder", False),
    "seizure_abated_today": (_woman("seizure_abated_today", _seizure(abatementDateTime="2025-06-01")), None, False),
    "tonsils_tomorrow": (_child("tonsils_tomorrow", _procedure(SCT, "173422009", "Tonsillectomy",
                                                               performedDateTime="2025-06-02")),
                         "tonsillectomy_recent", False),
    "tonsils_five_days": (_child("tonsils_five_days", _procedure(SCT, "173422009", "Tonsillectomy",
                                                                 performedDateTime="2025-06-06")), None, False),
    # a Procedure of a code the knowledge base does not know whose display names a tonsillectomy: not screened
    "cpt_tonsils": (_child("cpt_tonsils", _procedure(CPT, "42826", "Tonsillectomy")), None, True),
    # the display names sleep apnoea too (the longer phrase): still a tonsillectomy, named as not screened
    "cpt_tonsils_osa": (_child("cpt_tonsils_osa", _procedure(CPT, "42826", "Tonsillectomy for obstructive sleep apnea")),
                        None, True),
    "sct_tonsils": (_child("sct_tonsils", _procedure(SCT, "80146002", "Tonsillectomy, primary")), None, True),
    "text_tonsils": (_child("text_tonsils", {"resourceType": "Procedure", "status": "completed",
                                             "code": {"text": "Adenotonsillectomy"}}), None, True),
    "cpt_appendix": (_child("cpt_appendix", _procedure(CPT, "44950", "Appendectomy")), None, False),
    "sct_appendix": (_child("sct_appendix", _procedure(SCT, "80146002", "Appendectomy")), None, False),
    # a seizure named by a Procedure's display is not a condition recorded by a procedure: not read
    "cpt_seizure_words": (_child("cpt_seizure_words", _procedure(CPT, "95812", "EEG for epilepsy")), None, False),
}


def test_the_one_rule_is_a_row_each_date_check_names() -> None:
    assert reading.number(reading.DATES, "after as-of", "date") == 1
    assert reading.number(reading.DATES, "after as-of", "dateTime with offset") == 0
    for resource, element in (("MedicationRequest", "start date"), ("MedicationStatement", "start date"),
                              ("Condition", "onset"), ("Procedure", "performed"), ("Observation", "date")):
        assert reading.reading_of(resource, "after as-of", element) == reading.AFTER_AS_OF
    assert reading.reading_of("Condition", "after as-of", "abatement") == "never earlier"
    assert reading.reading_of("Procedure", "unknown code", "text naming a screened condition") == "unresolved"


def _read(p: Any) -> set[str]:
    """Which of the facts these records carry the patient model holds."""
    return {k for k in ("seizure_disorder", "tonsillectomy_recent") if k in p.conditions} | (
        {"pregnancy"} if p.pregnant else set())


@pytest.mark.parametrize("pid", sorted(CASES))
def test_per_patient(pid: str) -> None:
    kb = default_kb()
    record, key, incomplete = CASES[pid]
    p = to_patient(record, kb, as_of=AS_OF).patient
    assert _read(p) == ({key} if key else set()), p.conditions
    screen = assess_patient(p, kb, simulate=False).screen
    assert ("incomplete_screen" in screen.codes) == incomplete, (screen.codes, p.conditions)
    if key or incomplete:
        assert screen.verdict != "acceptable", screen.codes
    if key == "pregnancy":
        assert screen.verdict in {"avoid", "contraindicated"}, screen.codes
    if pid.startswith("preg_") and not key:
        assert screen.verdict == "acceptable", screen.codes


def test_in_bulk(tmp_path: Path) -> None:
    kb = default_kb()
    rows = bulk_rows(tmp_path, (record for record, _, _ in CASES.values()), as_of=AS_OF, kb=kb)
    evaluate = PatientEvaluator(kb)
    for pid, (record, code, incomplete) in CASES.items():
        want = evaluate(to_patient(record, kb, as_of=AS_OF).patient)
        assert (pid, rows[pid]["verdict"], sorted(rows[pid]["codes"])) == (pid, want.verdict, sorted(want.codes))
        if code:
            assert rows[pid]["verdict"] != "acceptable", pid
        assert ("incomplete_screen" in rows[pid]["codes"]) == incomplete, pid
