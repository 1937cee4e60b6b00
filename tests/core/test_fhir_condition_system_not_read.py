"""A Condition (or Procedure) coded only in a system the reader does not know (ICD-9-CM
``http://hl7.org/fhir/sid/icd-9-cm``, a local system), with no text and no display, is named as not screened
(``code not read: system|code``): an incomplete screen (caution or above), never a clean one. It was dropped
silently and the screen came out acceptable though ICD-9-CM 345.90 is epilepsy. With a text or display the
text rows apply, as before. Per patient (``fhir.to_patient``) and in bulk (``facts.condition_map``: the
mapper's ``concept_conditions``). Reading table row 'Condition | unknown code | system not read, no text or
display'."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from withdrawal.assess import assess_patient
from withdrawal.fhir import codes, reading
from withdrawal.fhir.mapping import to_patient
from withdrawal.knowledge.loader import default_kb
from withdrawal.population.facts import condition_map

AS_OF = date(2025, 6, 1)
ICD9 = "http://hl7.org/fhir/sid/icd-9-cm"
LOCAL = "http://example.org/local"
CPT = "http://www.ama-assn.org/go/cpt"


def _coding(system: str | None, code: str, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code}
    if system:
        out["system"] = system
    if display:
        out["display"] = display
    return out


def _record(concept: dict[str, Any], *, procedure: bool = False) -> list[dict[str, Any]]:
    res: dict[str, Any] = ({"resourceType": "Procedure", "status": "completed"} if procedure else
                           {"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "active"}]}})
    res.update({"id": "c1", "subject": {"reference": "Patient/p"}, "code": concept})
    return [{"resourceType": "Patient", "id": "p", "birthDate": "1980-03-04", "gender": "male"}, res]


NOT_READ = [
    ({"coding": [_coding(ICD9, "345.90")]}, False, f"code not read: {ICD9}|345.90"),
    ({"coding": [_coding(LOCAL, "x1")]}, False, f"code not read: {LOCAL}|x1"),
    ({"coding": [_coding(None, "345.90")]}, False, "code not read: (no system)|345.90"),
    ({"coding": [_coding(ICD9, "345.90"), _coding(LOCAL, "x1")]}, False, f"code not read: {ICD9}|345.90"),
    ({"coding": [_coding(CPT, "42826")]}, True, f"code not read: {CPT}|42826"),  # a tonsillectomy in CPT
    ({"coding": [_coding(ICD9, "28.2")]}, True, f"code not read: {ICD9}|28.2"),
]


@pytest.mark.parametrize(("concept", "procedure", "named"), NOT_READ)
def test_a_code_of_a_system_not_read_without_words_is_not_screened(concept: dict[str, Any], procedure: bool,
                                                                   named: str) -> None:
    kb = default_kb()
    a = assess_patient(to_patient(_record(concept, procedure=procedure), kb, as_of=AS_OF).patient, kb,
                       simulate=False)
    assert a.patient.unresolved == (f"condition: {named}",)
    assert a.screen.verdict in {"caution", "avoid", "contraindicated"} and "incomplete_screen" in a.screen.codes
    [(_, _, keys, unresolved)] = condition_map([(json.dumps(concept), int(procedure))], kb)
    assert keys == frozenset() and unresolved


CLEAN = [
    # a code of a system read, out of scope, beside one not read: listed, not screened, as before
    ({"coding": [_coding(ICD9, "401.9"), _coding(codes.SNOMED, "38341003")]}, False),
    ({"coding": [_coding(ICD9, "401.9"), _coding("http://hl7.org/fhir/sid/icd-10-cm", "L98.9")]}, False),
    # a Procedure of a system not read with a display: not read, as before (codes only)
    ({"coding": [_coding(CPT, "44950", "Appendectomy")]}, True),
    ({"coding": [_coding(CPT, "44950")], "text": "Appendectomy"}, True),
]


@pytest.mark.parametrize(("concept", "procedure"), CLEAN)
def test_clean_cases_stay_clean(concept: dict[str, Any], procedure: bool) -> None:
    kb = default_kb()
    a = assess_patient(to_patient(_record(concept, procedure=procedure), kb, as_of=AS_OF).patient, kb,
                       simulate=False)
    assert a.screen.verdict == "acceptable" and a.patient.unresolved == ()
    assert not any(unresolved for _, _, _, unresolved in condition_map([(json.dumps(concept), int(procedure))], kb))


def test_with_a_display_the_text_rows_apply() -> None:
    """ICD-9-CM with a display naming epilepsy: read by its words (the text row), as before."""
    kb = default_kb()
    concept = {"coding": [_coding(ICD9, "345.90", "Epilepsy")]}
    p = to_patient(_record(concept), kb, as_of=AS_OF).patient
    assert p.conditions == ("seizure_disorder",)
    assert "seizure_risk" in assess_patient(p, kb, simulate=False).screen.codes


def test_the_row_is_in_the_table() -> None:
    assert reading.reading_of("Condition", "unknown code", "system not read, no text or display") == "unresolved"
