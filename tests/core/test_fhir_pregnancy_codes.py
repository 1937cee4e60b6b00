"""A pregnancy status recorded under LOINC 11449-6 ("Pregnancy status - Reported", the older code of the
IPS 82810-3 question, with the same answers) is read as pregnancy: per patient (the mapper) and in the bulk
screen (``observation_map``, the same reader). It was not read, and a pregnant patient came out clean."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from withdrawal.assess import assess_patient
from withdrawal.fhir import codes, reading
from withdrawal.fhir.mapping import to_patient
from withdrawal.knowledge.loader import default_kb
from withdrawal.population.facts import observation_map

AS_OF = date(2025, 6, 1)
REPORTED = "11449-6"


def _status(answer_system: str, answer: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p"},
            "effectiveDateTime": "2025-05-30", "code": {"coding": [{"system": codes.LOINC, "code": REPORTED}]},
            "valueCodeableConcept": {"coding": [{"system": answer_system, "code": answer}]}}


@pytest.mark.parametrize(("system", "answer", "pregnant"), [(codes.SNOMED, "77386006", True),
                                                            (codes.LOINC, "LA15173-0", True),
                                                            (codes.SNOMED, "60001007", False)])
def test_the_reported_pregnancy_status_is_read(system: str, answer: str, pregnant: bool) -> None:
    kb = default_kb()
    obs = _status(system, answer)
    patient = {"resourceType": "Patient", "id": "p", "birthDate": "1995-01-01", "gender": "female"}
    p = to_patient([patient, obs], kb, as_of=AS_OF).patient
    assert p.pregnant is pregnant
    verdict = assess_patient(p, kb).screen.verdict
    assert (verdict == "avoid") if pregnant else (verdict == "acceptable")
    [row] = observation_map([(json.dumps(obs["code"]), json.dumps(obs["valueCodeableConcept"]), "", None, "")])
    assert row[5] == "pregnancy" and row[6] == int(pregnant)


def test_both_codes_are_rows_of_the_table() -> None:
    assert reading.values("Observation", "code", "pregnancy") == (REPORTED, codes.PREGNANCY_STATUS_IPS)
