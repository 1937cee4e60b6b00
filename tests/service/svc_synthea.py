"""A Synthea-style FHIR R4 transaction Bundle generated in code (no data files).

Shaped like Synthea's exports: urn:uuid references, hundreds of encounters, claims,
immunisations and observations unrelated to withdrawal, resolved conditions, stopped
and completed medication orders, combination products by RxNorm SCD name, and a few
malformed resources real exports also contain.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def _u(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _entry(res: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{res['id']}",
        "resource": res,
        "request": {"method": "POST", "url": res["resourceType"]},
    }


def medication_request(
    rng: random.Random,
    pid: str,
    code: str,
    display: str,
    status: str,
    *,
    authored: str = "2019-03-04T10:00:00-05:00",
    dosage: list[dict[str, Any]] | None = None,
    validity_end: str | None = None,
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": _u(rng),
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": _cc(RX, code, display),
        "subject": {"reference": f"urn:uuid:{pid}"},
        "encounter": {"reference": f"urn:uuid:{_u(rng)}"},
        "authoredOn": authored,
        "requester": {"display": "Dr. Synthea"},
    }
    if dosage is not None:
        res["dosageInstruction"] = dosage
    if validity_end:
        res["dispenseRequest"] = {"validityPeriod": {"start": authored[:10], "end": validity_end}}
    return res


def condition(
    rng: random.Random,
    pid: str,
    code: str,
    display: str,
    clinical: str = "active",
    verification: str = "confirmed",
    system: str = SCT,
) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": _u(rng),
        "clinicalStatus": {"coding": [{"system": CLIN, "code": clinical}]},
        "verificationStatus": {"coding": [{"system": VER, "code": verification}]},
        "category": [{"coding": [{"code": "encounter-diagnosis"}]}],
        "code": _cc(system, code, display),
        "subject": {"reference": f"urn:uuid:{pid}"},
        "onsetDateTime": "2015-06-01T00:00:00-04:00",
    }


def q6h(tablets: float) -> list[dict[str, Any]]:
    return [
        {
            "sequence": 1,
            "timing": {"repeat": {"frequency": 1, "period": 6, "periodUnit": "h"}},
            "asNeededBoolean": False,
            "doseAndRate": [{"type": {"text": "ordered"}, "doseQuantity": {"value": tablets}}],
        }
    ]


def bundle(
    seed: int = 7, *, extra: list[dict[str, Any]] | None = None, noise: int = 400, birth: str = "1971-08-14"
) -> tuple[dict[str, Any], str]:
    """A transaction Bundle for one patient; returns (bundle, patient id)."""
    rng = random.Random(seed)
    pid = _u(rng)
    patient = {
        "resourceType": "Patient",
        "id": pid,
        "gender": "female",
        "birthDate": birth,
        "name": [{"use": "official", "family": "Doe123", "given": ["Jane456"], "prefix": ["Mrs."]}],
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                "extension": [{"url": "text", "valueString": "White"}],
            }
        ],
        "address": [{"city": "Springfield", "state": "MA"}],
        "maritalStatus": {"text": "M"},
    }
    res: list[dict[str, Any]] = [patient]
    kinds = [
        "Encounter",
        "Claim",
        "ExplanationOfBenefit",
        "Immunization",
        "Procedure",
        "DiagnosticReport",
        "CareTeam",
        "CarePlan",
        "Provenance",
        "DocumentReference",
        "Device",
        "SupplyDelivery",
        "ImagingStudy",
    ]
    for _ in range(noise):
        kind = rng.choice(kinds)
        res.append(
            {
                "resourceType": kind,
                "id": _u(rng),
                "status": "finished",
                "subject": {"reference": f"urn:uuid:{pid}"},
                "patient": {"reference": f"urn:uuid:{pid}"},
            }
        )
    for _ in range(60):  # vital signs, labs
        code, disp, unit, val = rng.choice(
            [
                ("8302-2", "Body Height", "cm", 165.0),
                ("29463-7", "Body Weight", "kg", 70.0),
                ("8867-4", "Heart rate", "/min", 72.0),
                ("2339-0", "Glucose", "mg/dL", 90.0),
            ]
        )
        res.append(
            {
                "resourceType": "Observation",
                "id": _u(rng),
                "status": "final",
                "category": [{"coding": [{"code": "vital-signs"}]}],
                "code": _cc(LOINC, code, disp),
                "subject": {"reference": f"urn:uuid:{pid}"},
                "effectiveDateTime": f"20{rng.randint(10, 23)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                "valueQuantity": {
                    "value": val + rng.random(),
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
        )
    # Resolved and unrelated conditions (Synthea's favourites)
    res.append(condition(rng, pid, "444814009", "Viral sinusitis (disorder)", clinical="resolved"))
    res.append(condition(rng, pid, "195662009", "Acute viral pharyngitis (disorder)", clinical="resolved"))
    res.append(condition(rng, pid, "162864005", "Body mass index 30+ - obesity (finding)"))
    res.append(condition(rng, pid, "84757009", "Epilepsy (disorder)", verification="refuted"))
    # Stopped, completed and old orders, combination products
    res.append(
        medication_request(
            rng,
            pid,
            "1049621",
            "Acetaminophen 325 MG / oxyCODONE Hydrochloride 5 MG Oral Tablet",
            "stopped",
            validity_end="2019-04-01",
        )
    )
    res.append(medication_request(rng, pid, "313782", "Acetaminophen 325 MG Oral Tablet", "completed"))
    res.append(medication_request(rng, pid, "308182", "Amoxicillin 250 MG Oral Capsule", "stopped"))
    res.append(medication_request(rng, pid, "310965", "Ibuprofen 200 MG Oral Tablet", "entered-in-error"))
    # Messy things real exports carry
    res.append({"resourceType": "Observation", "id": _u(rng), "code": "not-a-concept", "valueQuantity": "x"})
    res.append({"resourceType": "MedicationRequest", "id": _u(rng), "status": "active"})
    res.append({"resourceType": "Condition", "id": _u(rng), "clinicalStatus": 5, "code": {"coding": "nope"}})
    res.append(
        {
            "resourceType": "AllergyIntolerance",
            "id": _u(rng),
            "category": ["food"],
            "code": _cc(SCT, "91935009", "Allergy to peanuts"),
            "patient": {"reference": f"urn:uuid:{pid}"},
        }
    )
    for r in extra or []:
        r.setdefault("id", _u(rng))
        r.setdefault("subject", {"reference": f"urn:uuid:{pid}"})
        res.append(r)
    rng.shuffle(res)
    entries: list[Any] = [_entry(r) for r in res]
    entries.insert(3, {"fullUrl": "urn:uuid:broken"})  # an entry without a resource
    entries.insert(5, "garbage")
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}, pid


def full_prefetch(patient: dict[str, Any], **given: Any) -> dict[str, Any]:
    """A CDS prefetch with every key the services ask for: ``given`` ones as given, the rest null (the
    client has no such data). A key left out is a record not had, never a clean screen, so a test of a
    clean answer sends them all."""
    from withdrawal.service.cds.prefetch import PREFETCH

    return {**dict.fromkeys(PREFETCH), "patient": patient, **given}
