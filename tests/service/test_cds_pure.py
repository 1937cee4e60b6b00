"""The CDS services as plain functions (``cds/hooks.py``): context and resources in, cards out, with no
app, database or network; the route answers exactly what they answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from svc_synthea import bundle, condition, medication_request, q6h

from tests_support import without_uuids
from withdrawal.knowledge.loader import default_kb
from withdrawal.service.cds import hooks
from withdrawal.service.cds.prefetch import assemble

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
SIGN = "withdrawal-order-sign"


def _request() -> dict[str, Any]:
    """A draft tramadol order for a Synthea-shaped patient on sertraline with opioid use disorder."""
    import random

    rng = random.Random(3)
    record, pid = bundle(3, noise=50)
    extra = [medication_request(rng, pid, "312941", "sertraline 100 MG Oral Tablet", "active", dosage=q6h(1)),
             condition(rng, pid, "5602001", "Opioid abuse (disorder)")]
    record["entry"] += [{"resource": r} for r in extra]
    resources = [e["resource"] for e in record["entry"] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)

    def searchset(rtype: str) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in by_type.get(rtype, [])]}

    draft = {"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft", "intent": "order",
             "subject": {"reference": f"Patient/{pid}"}, "dosageInstruction": q6h(1),
             "medicationCodeableConcept": {"coding": [{"system": RX, "code": "835603",
                                                       "display": "tramadol hydrochloride 50 MG Oral Tablet"}]}}
    return {
        "hook": "order-sign", "hookInstance": "h-1",
        "context": {"userId": "Practitioner/1", "patientId": pid,
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}},
        "prefetch": {"patient": by_type["Patient"][0], "conditions": searchset("Condition"),
                     "medications": searchset("MedicationRequest"), "statements": None,
                     "allergies": searchset("AllergyIntolerance"), "observations": searchset("Observation"),
                     "procedures": searchset("Procedure")},
    }




def test_hooks_answer_without_the_app_as_the_route_does(app_factory: Any, keys: Any) -> None:
    body = _request()
    kb, now = default_kb(), datetime.now(UTC)
    orders = hooks.orders("order-sign", body["context"], kb, now.date(),
                          hooks.draft_medications(body["context"], body["prefetch"]))
    answer = hooks.answer(SIGN, body["context"], kb, orders, assemble(body["prefetch"], {}), now=now)
    assert answer.cards and any(c["indicator"] in ("warning", "critical") for c in answer.cards)
    with TestClient(app_factory()) as c:
        tok = keys.token(f"http://testserver/cds-services/{SIGN}")
        r = c.post(f"/cds-services/{SIGN}", json=body, headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    assert without_uuids(r.json()) == without_uuids(answer.body())


def test_an_order_hook_with_nothing_to_screen_reads_no_record() -> None:
    context = {"patientId": "p1", "draftOrders": {"resourceType": "Bundle", "entry": []}}
    orders = hooks.orders("order-sign", context, default_kb(), datetime.now(UTC).date(), {})
    assert not hooks.needs_record("order-sign", orders)
    assert hooks.answer(SIGN, context, default_kb(), orders, None, now=datetime.now(UTC)).body() == {"cards": []}
