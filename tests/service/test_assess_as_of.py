"""POST /assess?as_of=: a FHIR record is read as of the given date, as the population screen reads it."""

from __future__ import annotations

from conftest import login


def _record(stop: str) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1980-05-05"}},
        {"resource": {"resourceType": "MedicationStatement", "id": "m", "status": "completed",
                      "subject": {"reference": "Patient/p"},
                      "medicationCodeableConcept": {"text": "phenelzine 15 MG Oral Tablet"},
                      "effectivePeriod": {"start": "2025-01-01", "end": stop}}},
    ]}


def test_as_of_moves_the_washout_window(client) -> None:
    h = login(client, "clinician")
    body = _record("2025-06-20")
    near = client.post("/assess", params={"as_of": "2025-06-30"}, json=body, headers=h)  # stopped 10 days ago
    far = client.post("/assess", params={"as_of": "2025-08-30"}, json=body, headers=h)  # 71 days ago
    assert near.status_code == 200 and far.status_code == 200
    assert near.json()["tramadol"]["verdict"] == "contraindicated"
    assert "maoi" not in [f["code"] for f in far.json()["tramadol"]["findings"]]
    bad = client.post("/assess", params={"as_of": "June"}, json=body, headers=h)
    assert bad.status_code == 422 and "as_of" in bad.text
