"""CDS cards carry a ``smart`` link (with ``appContext``) that launches the app on the same patient."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from ehr import App, Ehr


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def patient_view(ehr: Ehr, pid: str) -> dict[str, Any]:
    record = ehr.records[pid]

    def of(rtype: str) -> dict[str, Any]:
        return searchset([r for r in record if r["resourceType"] == rtype])

    return {
        "hook": "patient-view",
        "hookInstance": "5d4e3b1a-3c2e-4d4f-9a55-1f0f2b7c9e11",
        "context": {"userId": "Practitioner/1", "patientId": pid},
        "prefetch": {
            "patient": next(r for r in record if r["resourceType"] == "Patient"),
            "conditions": of("Condition"),
            "medications": of("MedicationRequest"),
            "statements": None,
            "allergies": of("AllergyIntolerance"),
            "observations": of("Observation"),
        },
    }


def smart_link(app: App, ehr: Ehr, pid: str) -> dict[str, Any]:
    r = httpx.post(f"{app.base_url}/cds-services/withdrawal-patient-view", json=patient_view(ehr, pid), timeout=30)
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    assert cards
    links = [link for card in cards for link in card.get("links", []) if link.get("type") == "smart"]
    assert len(links) == len(cards)  # every card offers it
    return links[0]


def test_a_cds_card_smart_link_opens_the_app_on_the_same_patient(page: Any, ehr: Ehr, app: App) -> None:
    pid = ehr.patient_ids()[0]
    link = smart_link(app, ehr, pid)
    assert link["url"] == f"{app.base_url}/smart/launch"
    assert link["appContext"] == f"patient={pid}"
    # the EHR launches the link (launch and iss appended) and returns appContext with the token
    page.goto(f"{ehr.base}/?patient={pid}&app_url={quote(link['url'])}&app_context={quote(link['appContext'])}")
    frame = page.frame_locator("#app")
    frame.locator("h1").wait_for()
    assert "Jane456 Doe123" in frame.locator("#smart-patient").inner_text()
    assert ehr.seen("token") == ["ok"]


def test_a_card_for_another_patient_than_the_ehr_context_is_refused(page: Any, ehr: Ehr, app: App) -> None:
    first, second = ehr.patient_ids()[:2]
    link = smart_link(app, ehr, first)
    page.goto(f"{ehr.base}/?patient={second}&app_url={quote(link['url'])}&app_context={quote(link['appContext'])}")
    frame = page.frame_locator("#app")
    frame.locator("h1").wait_for()
    assert frame.locator("#smart-error").get_attribute("data-code") == "context"
    assert ehr.seen("fhir") == []  # refused before reading the record
