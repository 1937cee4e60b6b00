"""An AllergyIntolerance whose code the knowledge base does not know, with no name beside it (a tramadol
product's RxNorm code, a SNOMED CT substance code, without a display), is named as not screened: the
screen is incomplete, never clean. Per patient (the mapper) and in the bulk screen (``allergy_map``, the
same reader), as an unknown medication code is named."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from withdrawal.assess import assess_patient
from withdrawal.fhir import codes
from withdrawal.fhir.mapping import to_patient
from withdrawal.knowledge.loader import default_kb
from withdrawal.population.facts import allergy_map

AS_OF = date(2025, 6, 1)
TRAMADOL_50_MG_TABLET = "835603"  # RxNorm SCD "tramadol hydrochloride 50 MG Oral Tablet": not an ingredient code
TRAMADOL_SUBSTANCE = "386858008"  # SNOMED CT substance "Tramadol"


def _record(code: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"resourceType": "Patient", "id": "p", "birthDate": "1985-03-02", "gender": "male"},
        {"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "Patient/p"}, "code": code},
    ]


@pytest.mark.parametrize(("system", "code"), [(codes.RXNORM, TRAMADOL_50_MG_TABLET), (codes.SNOMED, TRAMADOL_SUBSTANCE),
                                              (None, "T-50")])
def test_an_unknown_allergy_code_without_a_name_keeps_the_screen_incomplete(system: str | None, code: str) -> None:
    kb = default_kb()
    coding = {"code": code} if system is None else {"system": system, "code": code}
    concept = {"coding": [coding]}
    p = to_patient(_record(concept), kb, as_of=AS_OF).patient
    assert len(p.allergies) == 1 and code in p.allergies[0]
    answer = assess_patient(p, kb).to_dict()
    assert answer["tramadol"]["verdict"] != "acceptable"
    assert answer["tramadol"]["findings"][0]["code"] == "incomplete_screen"
    assert any(code in n for n in answer["not_screened"])
    # the bulk screen reads the code with the same reader: an unresolved allergy row
    [(_, drugs, unresolved)] = allergy_map([(__import__("json").dumps(concept),)], kb)
    assert drugs == frozenset() and unresolved


def test_a_known_code_or_a_name_still_reads_as_before() -> None:
    kb = default_kb()
    known = to_patient(_record({"coding": [{"system": codes.RXNORM, "code": "10689"}]}), kb, as_of=AS_OF).patient
    assert known.allergies == ("tramadol",)
    named = {"coding": [{"system": codes.RXNORM, "code": TRAMADOL_50_MG_TABLET,
                         "display": "tramadol hydrochloride 50 MG Oral Tablet"}]}
    assert assess_patient(to_patient(_record(named), kb, as_of=AS_OF).patient, kb).screen.verdict == "contraindicated"
    # an AllergyIntolerance with no code at all names nothing (as before)
    assert to_patient(_record({}), kb, as_of=AS_OF).patient.allergies == ()
