"""CDS Hooks cards for the whole-plan screen: an incomplete screen is named first and never reads
clean; an antagonist on board blocks the buprenorphine suggestion; patient-view names what was
not screened. Requests as an EHR writes them, through the real app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
BASE = "http://testserver/cds-services"
SIGN = "withdrawal-order-sign"
VIEW = "withdrawal-patient-view"


def med(rid: str, code: str | None, text: str, status: str = "active") -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    if code:
        concept["coding"] = [{"system": RX, "code": code, "display": text}]
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
            "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": concept}


def bundle(*res: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in res]}


TRAMADOL = med("draft-1", "835603", "tramadol hydrochloride 50 MG Oral Tablet", status="draft")


OUD = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
       "clinicalStatus": {"coding": [{"code": "active"}]},
       "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20"}]}}


def request(hook: str, meds: list[dict[str, Any]], conditions: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    ctx: dict[str, Any] = {"userId": "Practitioner/1", "patientId": "p1"}
    if hook != "patient-view":
        ctx["draftOrders"] = bundle(TRAMADOL)
    return {
        "hook": hook,
        "hookInstance": "2b0a8d5e-6c6e-4d1b-9a64-0c6a3c1f7e21",
        "context": ctx,
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1985-04-02", "gender": "male"},
            "conditions": bundle(*conditions),
            "medications": bundle(*meds),
            "statements": None,
            "allergies": bundle(),
            "observations": bundle(),
            "procedures": bundle(),
        },
    }


@pytest.fixture
def call(app_factory: Any, keys: Any) -> Any:
    with TestClient(app_factory()) as c:

        def post(service: str, body: Any) -> httpx.Response:
            tok = keys.token(f"{BASE}/{service}")
            return c.post(f"/cds-services/{service}", json=body, headers={"Authorization": f"Bearer {tok}"})

        yield post


def test_unknown_medication_gives_a_warning_card_first(call: Any) -> None:
    r = call(SIGN, request("order-sign", [med("m1", None, "zorblaxamine 10 mg tablet")]))
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    assert "incomplete screen" in cards[0]["summary"] and "zorblaxamine" in cards[0]["summary"]
    assert cards[0]["indicator"] == "warning"
    assert not any("no patient-specific contraindication" in c["summary"] for c in cards)


def test_naltrexone_blocks_tramadol_and_buprenorphine_suggestion(call: Any) -> None:
    r = call(SIGN, request("order-sign", [med("m1", "7243", "naltrexone")]))
    cards = r.json()["cards"]
    critical = [c for c in cards if c["indicator"] == "critical"]
    assert critical and any("opioid antagonist" in c["summary"] for c in critical)
    labels = {s["label"] for c in cards for s in c.get("suggestions", [])}
    assert "Replace with buprenorphine/naloxone" not in labels
    assert "Remove the order" in labels


def test_patient_view_names_what_was_not_screened(call: Any) -> None:
    r = call(VIEW, request("patient-view", [med("m1", None, "zorblaxamine")], (OUD,)))
    card = r.json()["cards"][0]
    assert card["detail"].startswith("- **Not screened**: medication: zorblaxamine")
