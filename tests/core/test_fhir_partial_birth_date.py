"""A partial birthDate ('2013', '2013-05') is read as the last day it allows: the youngest the patient can be.
It was read as the first day, so a patient who may be 11 was read as 12 (the under-12 contraindication missed)
and one who may be 17 as 18. Where the ages it allows on the as-of date differ, the age is named as not
screened, so the screen is incomplete (caution or above), never clean. Per patient (``fhir.to_patient``) and
in the bulk screen (``population.staging.birth_sql`` and the facts' age): both read the table's
``Patient | birthDate`` rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests_support import bulk_rows
from withdrawal.assess import assess_patient
from withdrawal.fhir import reading
from withdrawal.fhir.mapping import ages_on, birth_dates, to_patient
from withdrawal.knowledge.loader import default_kb
from withdrawal.population.per_patient import PatientEvaluator

AS_OF = date(2025, 6, 1)


def _record(pid: str, birth: str) -> list[dict[str, Any]]:
    return [{"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": "male"}]


def _bulk(tmp_path: Path, records: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return bulk_rows(tmp_path, records.values(), as_of=AS_OF, kb=default_kb())


# (birthDate, age read, what is named as not screened, verdict at least, finding code)
CASES = [
    ("2013", 11, "Patient.birthDate 2013: age 11 or 12", "contraindicated", "age_under_12"),
    ("2013-06", 11, "Patient.birthDate 2013-06: age 11 or 12", "contraindicated", "age_under_12"),
    ("2013-07", 11, None, "contraindicated", "age_under_12"),  # born in July 2013: 11 whatever the day
    ("2007", 17, "Patient.birthDate 2007: age 17 or 18", "caution", "adolescent"),
    ("2013-05", 12, None, "caution", "adolescent"),  # born in May 2013: 12 whatever the day
]


@pytest.mark.parametrize(("birth", "age", "named", "verdict", "code"), CASES)
def test_a_partial_birth_date_reads_as_the_youngest_age(birth: str, age: int, named: str | None, verdict: str,
                                                       code: str, tmp_path: Path) -> None:
    kb = default_kb()
    p = to_patient(_record("p", birth), kb, as_of=AS_OF).patient
    assert p.age_years == age
    a = assess_patient(p, kb, simulate=False)
    assert list(a.patient.unresolved) == ([f"condition: {named}"] if named else [])
    screen = a.screen
    order = ["acceptable", "caution", "avoid", "contraindicated"]
    assert order.index(screen.verdict) >= order.index(verdict)
    assert code in screen.codes and (("incomplete_screen" in screen.codes) is (named is not None))
    row, want = _bulk(tmp_path, {"p": _record("p", birth)})["p"], PatientEvaluator(kb)(p)
    assert (row["verdict"], list(row["codes"])) == (want.verdict, list(want.codes))
    assert want.verdict == screen.verdict and sorted(want.codes) == sorted(screen.codes)


@pytest.mark.parametrize("birth", ["1980-03-04", "1980-03-04T10:00:00Z", "2014-12-31"])
def test_a_full_date_is_unchanged_and_clean(birth: str, tmp_path: Path) -> None:
    kb = default_kb()
    p = to_patient(_record("p", birth), kb, as_of=AS_OF).patient
    a = assess_patient(p, kb, simulate=False)
    assert a.patient.unresolved == ()
    screen = a.screen
    row, want = _bulk(tmp_path, {"p": _record("p", birth)})["p"], PatientEvaluator(kb)(p)
    assert (row["verdict"], list(row["codes"])) == (want.verdict, list(want.codes))
    assert want.verdict == screen.verdict and sorted(want.codes) == sorted(screen.codes)
    if birth.startswith("1980"):
        assert p.age_years == 45 and screen.verdict == "acceptable" and screen.codes == ()
    else:
        assert p.age_years == 10 and "age_under_12" in screen.codes


def test_the_dates_and_ages_a_birth_date_allows() -> None:
    assert birth_dates("2012-02") == (date(2012, 2, 1), date(2012, 2, 29))
    assert birth_dates("2013") == (date(2013, 1, 1), date(2013, 12, 31))
    assert birth_dates("2013-5") is None and birth_dates("20xx") is None
    assert ages_on("2025", AS_OF) == (0, 0)  # the last day is after the as-of date: born by then at the latest
    assert ages_on("2025-07", AS_OF) is None  # not born yet
    assert reading.values("Patient", "birthDate", "last day") == ("year", "year-month")
