"""FHIR out on the real application: the COWS/SOWS Questionnaires and the write-back Bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import login
from withdrawal.fhir.questionnaire import QUESTIONNAIRE_URL
from withdrawal.fhir.writeback import validate_r4

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def _bundle_with_response(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    """A Bundle the way an EHR would send it: the COWS form answered with the served Questionnaire."""
    q = client.get("/fhir/Questionnaire/cows", headers=headers).json()
    scores = _example("patient")["cows"]
    items = []
    for item in q["item"]:
        if item["linkId"] in scores:
            code = f"{item['linkId']}-{scores[item['linkId']]}"
            coding = next(o["valueCoding"] for o in item["answerOption"] if o["valueCoding"]["code"] == code)
            items.append({"linkId": item["linkId"], "answer": [{"valueCoding": coding}]})
    items.append({"linkId": "last_opioid_substance", "answer": [{"valueCoding": {"code": "heroin"}}]})
    items.append({"linkId": "hours_since_last_opioid_use", "answer": [{"valueDecimal": 14}]})
    response = {
        "resourceType": "QuestionnaireResponse",
        "id": "cows-1",
        "questionnaire": q["url"],
        "status": "completed",
        "subject": {"reference": "Patient/p9"},
        "item": items,
    }
    patient = {"resourceType": "Patient", "id": "p9", "birthDate": "1990-01-01", "gender": "male"}
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}, {"resource": response}]}


def test_questionnaire_and_writeback_round_trip(client: Any) -> None:
    h = login(client, "clinician")
    q = client.get("/fhir/Questionnaire/sows", headers=h)
    assert q.status_code == 200 and q.headers["content-type"].startswith("application/fhir+json")
    assert q.json()["url"] == QUESTIONNAIRE_URL.format(scale="sows")
    assert client.get("/fhir/Questionnaire/oows", headers=h).status_code == 422
    assert client.get("/fhir/Questionnaire/cows").status_code == 401
    bundle = _bundle_with_response(client, h)
    r = client.post("/fhir/writeback?pathway=buprenorphine", json=bundle, headers=h)
    assert r.status_code == 200, r.text
    out = r.json()
    validate_r4(out)
    assert out["type"] == "transaction"
    obs = out["entry"][0]["resource"]
    assert (obs["resourceType"], obs["valueInteger"]) == ("Observation", 17)
    assert obs["subject"] == {"reference": "Patient/p9"}
    assert obs["derivedFrom"] == [{"reference": "QuestionnaireResponse/cows-1"}]
    plan = out["entry"][-1]["resource"]
    assert plan["resourceType"] == "CarePlan" and "Buprenorphine start pathway" in plan["description"]
    assert any(e["resource"]["resourceType"] == "DetectedIssue" for e in out["entry"])
    assert client.post("/fhir/writeback?pathway=methadone", json=bundle, headers=h).status_code == 422
    assert client.post("/fhir/writeback", json=bundle, headers=login(client, "patient")).status_code == 403


def test_routes_are_documented(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/fhir/Questionnaire/{scale}", "/fhir/writeback"):
        assert path in spec["paths"]


def test_assess_and_patient_records_read_the_cows_response(client: Any) -> None:
    h = login(client, "clinician")
    bundle = _bundle_with_response(client, h)
    r = client.post("/assess", json=bundle, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["cows"]["total"] == 17
    assert r.json()["course"]["hours_since_last_use"] == 14
    bad = _bundle_with_response(client, h)
    bad["entry"][1]["resource"]["item"][0]["answer"] = [{"valueInteger": 3}]
    r = client.post("/assess", json=bad, headers=h)
    assert r.status_code == 422 and "resting_pulse_rate" in r.text

