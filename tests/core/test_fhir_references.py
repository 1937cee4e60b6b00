"""A reference names its resource's id whatever its form: relative, absolute, versioned
(``Patient/p/_history/4``), ``urn:uuid:``, contained (``#p``). The per-patient mapper
(``fhir.mapping.reference_id``) and the bulk SQL (``population.staging.ref_id``) read it alike: a
versioned subject was read as its version ('4'), the patient's MAOI order was skipped as another
patient's, and the screen came out clean."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from tests_support import bulk_rows
from withdrawal.assess import assess_patient
from withdrawal.fhir.mapping import reference_id, to_patient
from withdrawal.knowledge.loader import default_kb
from withdrawal.population.sql import Dialect
from withdrawal.population.staging import ref_id

AS_OF = date(2025, 6, 1)
_CON = duckdb.connect(":memory:")
_SQL = f"SELECT {ref_id(Dialect(), 'r')} FROM (SELECT CAST(? AS VARCHAR) AS r) AS t"


def _sql_reading(reference: str | None) -> str | None:
    row = _CON.execute(_SQL, [reference]).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


def test_versioned_and_absolute_references_name_the_id() -> None:
    for ref in ("Patient/123", "Patient/123/_history/4", "https://ehr.example/fhir/Patient/123",
                "https://ehr.example/fhir/Patient/123/_history/4", " Patient/123/_history/ ", "urn:uuid:123",
                "#123", "123"):
        assert reference_id(ref) == "123", ref
        assert _sql_reading(ref) == "123", ref
    assert reference_id("Patient/123/_history/4", "Patient") == "123"
    assert reference_id("Medication/123/_history/4", "Patient") is None


_ID = st.text(alphabet="abcXYZ019-._ ", min_size=0, max_size=8)
_PART = st.text(alphabet="abc09-._/: #", min_size=0, max_size=6)


@st.composite
def _references(draw: st.DrawFn) -> str:
    rid = draw(_ID)
    form = draw(st.sampled_from(("relative", "absolute", "versioned", "absolute versioned", "urn", "contained",
                                 "bare", "free")))
    if form == "relative":
        ref = f"{draw(st.sampled_from(('Patient', 'Medication', '')))}/{rid}"
    elif form == "absolute":
        ref = f"https://host/fhir/Patient/{rid}"
    elif form == "versioned":
        ref = f"Patient/{rid}/_history/{draw(_ID)}"
    elif form == "absolute versioned":
        ref = f"http://host/Patient/{rid}/_history/{draw(_ID)}"
    elif form == "urn":
        ref = f"urn:uuid:{draw(st.sampled_from(('', '#')))}{rid}"
    elif form == "contained":
        ref = f"#{rid}"
    elif form == "bare":
        ref = rid
    else:
        ref = draw(_PART) + draw(st.sampled_from(("", "/_history/", "_history/", "/"))) + draw(_PART)
    pad = draw(st.sampled_from(("", " ", "  ")))
    return pad + ref + draw(st.sampled_from(("", " ")))


@settings(max_examples=300, deadline=None)
@given(_references())
def test_the_mapper_and_the_bulk_sql_read_a_reference_alike(ref: str) -> None:
    assert _sql_reading(ref) == reference_id(ref), ref


def _records(pid: str, subject: str) -> list[dict[str, Any]]:
    return [
        {"resourceType": "Patient", "id": pid, "birthDate": "1980-05-05", "gender": "male"},
        {"resourceType": "MedicationRequest", "id": f"{pid}-m1", "status": "active", "intent": "order",
         "subject": {"reference": subject}, "medicationCodeableConcept": {"text": "phenelzine 15 MG Oral Tablet"}},
    ]


def test_a_versioned_subject_is_the_patients_own_per_patient_and_in_bulk(tmp_path: Path) -> None:
    kb = default_kb()
    records = {"pv": _records("pv", "Patient/pv/_history/4"),
               "pa": _records("pa", "https://ehr.example/fhir/Patient/pa/_history/2")}
    for pid, resources in records.items():
        mapped = to_patient(resources, kb, as_of=AS_OF, patient_id=pid)
        assert mapped.skipped == (), mapped.skipped
        assert assess_patient(mapped.patient, kb).to_dict()["tramadol"]["verdict"] == "contraindicated"
    rows = bulk_rows(tmp_path, records.values(), as_of=AS_OF, kb=kb)
    assert {pid: rows[pid]["verdict"] for pid in records} == {"pv": "contraindicated", "pa": "contraindicated"}
    assert all("maoi" in rows[pid]["codes"] for pid in records)
