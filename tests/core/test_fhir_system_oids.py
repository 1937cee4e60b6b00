"""A coding whose system is the HL7 OID of a system read (SNOMED CT ``urn:oid:2.16.840.1.113883.6.96``,
RxNorm ``...6.88``, LOINC ``...6.1``, ICD-10-CM ``...6.90``: HL7 Terminology's CodeSystem identifiers, as
records converted from C-CDA or HL7 v2 write them) is read as the system it names, on every path: Conditions,
medications, allergies, Observations (their codes and coded values). Only ICD-10-CM's was read: an epilepsy
coded in SNOMED CT by its OID, an MAOI or a tramadol allergy in RxNorm, a pregnancy status in LOINC were not,
and the screen came out clean. One place reads them (``reading.system_of``, the table's 'Coding | system'
rows); per patient (``fhir.to_patient``) and in bulk (``facts``' maps run the mapper's own functions)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from withdrawal.assess import assess_patient
from withdrawal.fhir import codes, reading
from withdrawal.fhir.mapping import to_patient
from withdrawal.knowledge.loader import default_kb
from withdrawal.population.facts import (
    allergy_map,
    condition_map,
    medication_identities,
    medication_map,
    observation_map,
)

AS_OF = date(2025, 6, 1)
SCT_OID, RX_OID, LOINC_OID, ICD_OID = ("urn:oid:2.16.840.1.113883.6.96", "urn:oid:2.16.840.1.113883.6.88",
                                       "urn:oid:2.16.840.1.113883.6.1", "urn:oid:2.16.840.1.113883.6.90")
SUBJECT = {"reference": "Patient/p"}


def _concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _patient(*resources: dict[str, Any], gender: str = "male") -> list[dict[str, Any]]:
    return [{"resourceType": "Patient", "id": "p", "birthDate": "1990-03-04", "gender": gender}, *resources]


def _condition(concept: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": "c1", "subject": SUBJECT,
            "clinicalStatus": {"coding": [{"code": "active"}]}, "code": concept}


def _order(concept: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
            "subject": SUBJECT, "medicationCodeableConcept": concept}


def _allergy(concept: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "id": "a1", "patient": SUBJECT, "code": concept}


def _pregnancy(code_system: str, answer_system: str, answer: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "o1", "status": "final", "subject": SUBJECT,
            "effectiveDateTime": "2025-05-30", "code": _concept(code_system, codes.PREGNANCY_STATUS_IPS),
            "valueCodeableConcept": _concept(answer_system, answer)}


def _screen(resources: list[dict[str, Any]]) -> Any:
    kb = default_kb()
    return assess_patient(to_patient(resources, kb, as_of=AS_OF).patient, kb, simulate=False)


@pytest.mark.parametrize("concept", [_concept(SCT_OID, "84757009"), _concept(ICD_OID, "G40.909")])
def test_a_condition_coded_by_its_system_oid_is_read(concept: dict[str, Any]) -> None:
    """Epilepsy (SNOMED CT 84757009; ICD-10-CM G40.909) coded under the system's OID."""
    a = _screen(_patient(_condition(concept)))
    assert "seizure_disorder" in a.patient.conditions and a.patient.unresolved == ()
    assert "seizure_risk" in a.screen.codes and a.screen.verdict in {"avoid", "contraindicated"}
    [(_, _, keys, unresolved)] = condition_map([(json.dumps(concept), 0)], default_kb())
    assert keys == frozenset({"seizure_disorder"}) and not unresolved


def test_a_procedure_coded_in_snomed_by_its_oid_is_read() -> None:
    """A tonsillectomy (SNOMED CT 173422009) under the OID reads as it does under the URI."""
    kb = default_kb()
    [(_, _, by_oid, _)] = condition_map([(json.dumps(_concept(SCT_OID, "173422009")), 1)], kb)
    [(_, _, by_uri, _)] = condition_map([(json.dumps(_concept(codes.SNOMED, "173422009")), 1)], kb)
    assert by_oid == by_uri != frozenset()


def test_a_medication_coded_in_rxnorm_by_its_oid_is_read() -> None:
    """Phenelzine (RxNorm 8123), an MAOI: contraindicated with tramadol."""
    concept = _concept(RX_OID, "8123")
    a = _screen(_patient(_order(concept)))
    assert "phenelzine" in a.patient.active_drugs and a.patient.unresolved == ()
    assert a.screen.verdict == "contraindicated"
    kb = default_kb()
    rows = medication_map(medication_identities([(json.dumps(concept), None)], kb), kb)
    assert [r[2] for r in rows] == ["phenelzine"]


def test_an_allergy_coded_in_rxnorm_by_its_oid_is_read() -> None:
    """An allergy to tramadol (RxNorm 10689): contraindicated."""
    concept = _concept(RX_OID, "10689")
    a = _screen(_patient(_allergy(concept)))
    assert "tramadol" in a.patient.allergy_drugs
    assert a.screen.verdict == "contraindicated"
    [(_, drugs, unresolved)] = allergy_map([(json.dumps(concept),)], default_kb())
    assert drugs == frozenset({"tramadol"}) and not unresolved


@pytest.mark.parametrize(("code_system", "answer_system", "answer"), [
    (LOINC_OID, codes.LOINC, "LA15173-0"),  # the question's code under LOINC's OID
    (codes.LOINC, LOINC_OID, "LA15173-0"),  # the answer's
    (codes.LOINC, SCT_OID, "77386006"),  # a SNOMED CT answer under its OID
])
def test_an_observation_coded_by_its_system_oid_is_read(code_system: str, answer_system: str, answer: str) -> None:
    obs = _pregnancy(code_system, answer_system, answer)
    a = _screen(_patient(obs, gender="female"))
    assert a.patient.pregnant is True and a.screen.verdict == "avoid"
    [row] = observation_map([(json.dumps(obs["code"]), json.dumps(obs["valueCodeableConcept"]), "", None, "")])
    assert row[5] == "pregnancy" and row[6] == 1


CLEAN = {
    "condition out of scope": _patient(_condition(_concept(SCT_OID, "38341003"))),  # hypertension
    "not pregnant": _patient(_pregnancy(LOINC_OID, SCT_OID, "60001007"), gender="female"),
}


@pytest.mark.parametrize("name", CLEAN)
def test_clean_cases_coded_by_oid_stay_clean(name: str) -> None:
    a = _screen(CLEAN[name])
    assert a.screen.verdict == "acceptable" and a.patient.unresolved == ()


def test_the_oids_are_rows_of_the_table_read_in_one_place() -> None:
    for oid, system in codes.SYSTEM_OIDS.items():
        assert reading.reading_of("Coding", "system", oid) == system
        assert reading.system_of(oid) == system
    assert reading.system_of("urn:oid:2.16.840.1.113883.6.103") == "urn:oid:2.16.840.1.113883.6.103"  # ICD-9-CM
    assert reading.system_of(None) is None
    page = reading.markdown()
    assert all(f"`{oid}`" in page for oid in codes.SYSTEM_OIDS)
