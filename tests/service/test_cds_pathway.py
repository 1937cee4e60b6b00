"""The buprenorphine start pathway as a CDS Hooks card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from withdrawal.assess import assess
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.pathway import build_pathway
from withdrawal.service.cds.cards import pathway_card

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def _card(raw: dict[str, Any], kb: KnowledgeBase) -> dict[str, Any] | None:
    a = assess(raw, kb)
    return pathway_card(a, build_pathway(a))


def test_fentanyl_card_gives_the_low_dose_days_and_the_boxed_warning(kb: KnowledgeBase) -> None:
    card = _card(_example("patient_fentanyl"), kb)
    assert card is not None
    assert card["summary"] == "Buprenorphine start: Low-dose start overlapping the full agonist"
    assert card["indicator"] == "info" and len(card["summary"]) <= 140
    assert "Day 1: 0.5 mg once daily" in card["detail"] and "boxed warning" in card["detail"]
    assert card["source"]["url"].startswith("https://")
    assert "(unverified)" in card["detail"]  # hand-off steps marked from_memory


def test_naltrexone_card_proposes_no_start(kb: KnowledgeBase) -> None:
    raw = _example("patient")
    raw["medications"] = [{"name": "naltrexone"}]
    card = _card(raw, kb)
    assert card is not None
    assert card["summary"] == "Buprenorphine start: not for this patient now"
    assert card["indicator"] == "warning" and "Day 1" not in card["detail"]
    assert "suggestions" not in card and "Lofexidine" in card["detail"]


def test_no_card_for_a_patient_already_on_buprenorphine(kb: KnowledgeBase) -> None:
    raw = _example("patient")
    raw["medications"] = [{"name": "buprenorphine"}]
    assert _card(raw, kb) is None


BASE = "http://testserver/cds-services"
SCALES = "urn:withdrawal:fhir:CodeSystem:withdrawal-scales"


def _bundle(*res: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in res]}


def _patient_view(observations: list[dict[str, Any]], meds: list[dict[str, Any]]) -> dict[str, Any]:
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.23"}]},
    }
    return {
        "hook": "patient-view",
        "hookInstance": "5b0e6c0c-4d8e-4f65-9a43-0d6a1f0f7e11",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1990-05-01", "gender": "male"},
            "conditions": _bundle(condition),
            "medications": _bundle(*meds),
            "statements": None,
            "allergies": _bundle(),
            "observations": _bundle(*observations),
        },
    }


def test_patient_view_reads_cows_from_the_record_and_adds_the_pathway_card(app_factory: Any, keys: Any) -> None:
    from fastapi.testclient import TestClient

    cows = _example("patient")["cows"]
    score = {
        "resourceType": "Observation", "id": "cows1", "status": "final", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SCALES, "code": "cows-total"}]}, "valueInteger": 17,
        "component": [{"code": {"coding": [{"system": SCALES, "code": f"cows.{k}"}]}, "valueInteger": v}
                      for k, v in cows.items()],
    }  # fmt: skip
    hours = {
        "resourceType": "Observation", "id": "h1", "status": "final", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SCALES, "code": "hours-since-last-opioid-use"}]},
        "valueQuantity": {"value": 14, "unit": "h"},
    }  # fmt: skip
    with TestClient(app_factory()) as c:
        service = "withdrawal-patient-view"
        tok = keys.token(f"{BASE}/{service}")
        r = c.post(f"/cds-services/{service}", json=_patient_view([score, hours], []),
                   headers={"Authorization": f"Bearer {tok}"})  # fmt: skip
        assert r.status_code == 200, r.text
        cards = r.json()["cards"]
        assert "COWS 17" in cards[0]["detail"]  # the record's COWS was read
        pathway = [x for x in cards if x["summary"].startswith("Buprenorphine start")]
        assert len(pathway) == 1 and pathway[0]["summary"].endswith("Standard start (in withdrawal)")
        naltrexone = {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
                      "subject": {"reference": "Patient/p1"},
                      "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                                "code": "7243", "display": "naltrexone"}]}}  # fmt: skip
        tok = keys.token(f"{BASE}/{service}")
        r = c.post(f"/cds-services/{service}", json=_patient_view([score, hours], [naltrexone]),
                   headers={"Authorization": f"Bearer {tok}"})  # fmt: skip
        card = next(x for x in r.json()["cards"] if x["summary"].startswith("Buprenorphine start"))
        assert card["summary"] == "Buprenorphine start: not for this patient now" and "Day 1" not in card["detail"]


def test_pathway_service_offers_the_results_as_system_actions(app_factory: Any, keys: Any) -> None:
    from fastapi.testclient import TestClient

    from withdrawal.fhir.writeback import validate_r4

    cows = _example("patient")["cows"]
    score = {
        "resourceType": "Observation", "id": "cows1", "status": "final", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SCALES, "code": "cows-total"}]}, "valueInteger": 17,
        "component": [{"code": {"coding": [{"system": SCALES, "code": f"cows.{k}"}]}, "valueInteger": v}
                      for k, v in cows.items()],
    }  # fmt: skip
    service = "withdrawal-buprenorphine-pathway"
    with TestClient(app_factory()) as c:
        found = c.get("/cds-services", headers={"Authorization": f"Bearer {keys.token(BASE)}"}).json()["services"]
        assert any(s["id"] == service and s["hook"] == "patient-view" for s in found)
        r = c.post(f"/cds-services/{service}", json=_patient_view([score], []),
                   headers={"Authorization": f"Bearer {keys.token(f'{BASE}/{service}')}"})  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert [x["summary"][:20] for x in body["cards"]] == ["Buprenorphine start:"]
        actions = body["systemActions"]
        kinds = [x["resource"]["resourceType"] for x in actions]
        assert kinds[0] == "Observation" and kinds[-1] == "CarePlan" and "DetectedIssue" in kinds
        assert {x["type"] for x in actions} == {"create"}
        for x in actions:
            validate_r4(x["resource"])
        obs = actions[0]["resource"]
        assert obs["valueInteger"] == 17 and obs["subject"] == {"reference": "Patient/p1"}
        assert obs["derivedFrom"] == [{"reference": "Observation/cows1"}]
        # nothing to say or to record for a patient with no opioid, no COWS and no opioid diagnosis
        quiet = _patient_view([], [])
        quiet["prefetch"]["conditions"] = _bundle()
        r = c.post(f"/cds-services/{service}", json=quiet,
                   headers={"Authorization": f"Bearer {keys.token(f'{BASE}/{service}')}"})  # fmt: skip
        assert r.json() == {"cards": [], "systemActions": []}


def test_the_written_back_score_cites_the_response_it_was_read_from(app_factory: Any, keys: Any) -> None:
    """A COWS dated after the request (beyond clock skew) is not read as of now; the written-back score
    and its derivedFrom both come from the one reading (derivedFrom cited the later one before)."""
    from fastapi.testclient import TestClient

    cows = _example("patient")["cows"]

    def scored(rid: str, values: dict[str, int], when: str) -> dict[str, Any]:
        return {
            "resourceType": "Observation", "id": rid, "status": "final", "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": when, "code": {"coding": [{"system": SCALES, "code": "cows-total"}]},
            "valueInteger": sum(values.values()),
            "component": [{"code": {"coding": [{"system": SCALES, "code": f"cows.{k}"}]}, "valueInteger": v}
                          for k, v in values.items()],
        }  # fmt: skip

    now_score = scored("cows-now", cows, "2020-01-01T10:00:00Z")
    later = scored("cows-later", dict.fromkeys(cows, 0), "2999-01-01T10:00:00Z")
    service = "withdrawal-buprenorphine-pathway"
    with TestClient(app_factory()) as c:
        r = c.post(f"/cds-services/{service}", json=_patient_view([now_score, later], []),
                   headers={"Authorization": f"Bearer {keys.token(f'{BASE}/{service}')}"})  # fmt: skip
        assert r.status_code == 200, r.text
        obs = r.json()["systemActions"][0]["resource"]
        assert obs["valueInteger"] == 17 and obs["derivedFrom"] == [{"reference": "Observation/cows-now"}]
