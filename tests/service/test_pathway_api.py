"""The pathway and FHIR-out routes on the real application (TestClient, real SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from conftest import login
from withdrawal.service.models import AuditEntry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def test_pathway_route_for_the_three_patients(client: Any) -> None:
    h = login(client, "clinician")
    got = {}
    for name in ("patient", "patient_fentanyl", "patient_methadone"):
        r = client.post("/pathway/buprenorphine", json=_example(name), headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        got[name] = [s["id"] for s in body["pathway"]["starts"]]
        assert set(body["pathway"]["sources"]) == set(body["sources"])
        assert all(s["link"].startswith("http") for s in body["sources"].values())
    assert got == {
        "patient": ["standard", "low_dose", "high_dose_ed"],
        "patient_fentanyl": ["low_dose", "standard", "high_dose_ed"],
        "patient_methadone": ["low_dose", "standard", "high_dose_ed"],
    }
    rows = client.app.state.sessions().scalars(select(AuditEntry).where(AuditEntry.action == "pathway")).all()
    assert len(rows) == 3


def test_pathway_route_excludes_and_refuses(client: Any) -> None:
    h = login(client, "clinician")
    raw = _example("patient")
    raw["medications"] = [{"name": "naltrexone"}]
    body = client.post("/pathway/buprenorphine", json=raw, headers=h).json()
    assert body["pathway"]["status"] == "excluded" and body["pathway"]["starts"] == []
    bad = client.post("/pathway/buprenorphine", json={"age_years": 30, "sex": "robot"}, headers=h)
    assert bad.status_code == 422 and "sex" in bad.text
    assert client.post("/pathway/buprenorphine", json=raw).status_code == 401
    assert client.post("/pathway/buprenorphine", json=raw, headers=login(client, "patient")).status_code == 403


def test_routes_are_documented(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    assert "/pathway/buprenorphine" in spec["paths"]
