"""Issue 17, clinic scale: the stored summary per patient behind the clinician's list (written in the
same transaction as the record change, recomputed for another knowledge-base version) and the list's pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from test_form_fuzz import Browser

from conftest import login
from withdrawal.service import records, summaries
from withdrawal.service.models import Patient, PatientSummary, Plan

COWS_HIGH = {"resting_pulse_rate": 2, "sweating": 2, "restlessness": 3, "pupil_size": 2, "bone_or_joint_aches": 2,
             "runny_nose_or_tearing": 2, "gi_upset": 2, "tremor": 2, "yawning": 1, "anxiety_or_irritability": 2,
             "gooseflesh_skin": 3}


def _summary(app: Any, pid: int) -> PatientSummary | None:
    with app.state.sessions() as s:
        row: PatientSummary | None = s.get(PatientSummary, pid)
        return row


def test_summary_follows_each_change_to_the_record(client: TestClient) -> None:
    h = login(client, "clinician")
    app: Any = client.app
    pid = client.post("/patients", headers=h, json={"display_name": "S", "data": {
        "age_years": 40, "medications": [{"name": "phenelzine"}]}}).json()["id"]
    first = _summary(app, pid)
    assert first is not None and first.cows_total is None
    with app.state.sessions() as s:
        full = records.assess_record(s, s.get(Patient, pid), app.state.kb)
    assert first.verdict == full.screen.verdict == "contraindicated"
    r = client.post(f"/patients/{pid}/assessments", headers=h, json={"scale": "cows", "items": COWS_HIGH})
    assert r.status_code == 201, r.text
    after = _summary(app, pid)
    assert after is not None and after.cows_total == r.json()["total"] and after.cows_band == r.json()["band"]
    r = client.put(f"/patients/{pid}", headers=h, json={"data": {"age_years": 40}})
    assert r.status_code == 200, r.text
    edited = _summary(app, pid)
    assert edited is not None and edited.verdict != "contraindicated"
    assert edited.kb_version == app.state.kb.version


def test_a_failed_summary_leaves_nothing_half_written(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    app: Any = client.app
    with app.state.sessions() as s:
        before = s.scalar(select(func.count()).select_from(Patient))

    def broken(*_a: Any, **_k: Any) -> dict[str, Any]:
        raise RuntimeError("summary failed")

    monkeypatch.setattr(summaries, "compute", broken)
    with app.state.sessions() as s:
        s.add(Patient(display_name="Half", data={"age_years": 30}))
        with pytest.raises(RuntimeError):
            s.commit()
    with app.state.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Patient)) == before
        assert s.scalar(select(Patient).where(Patient.display_name == "Half")) is None


def test_a_summary_of_another_kb_version_is_recomputed_when_listed(client: TestClient) -> None:
    app: Any = client.app
    with app.state.sessions() as s:
        s.execute(update(PatientSummary).values(kb_version="old", verdict="acceptable", alerts=[]))
        s.commit()
    web = Browser(client, "clinician")
    assert web.get("/app/patients").status_code == 200
    with app.state.sessions() as s:
        rows = s.scalars(select(PatientSummary)).all()
        assert rows and all(r.kb_version == app.state.kb.version for r in rows)
        for row in rows:
            full = records.assess_record(s, s.get(Patient, row.patient_id), app.state.kb)
            assert row.verdict == full.screen.verdict


def test_a_plan_saved_through_the_api_updates_the_summary_too(client: TestClient) -> None:
    h = login(client, "clinician")
    app: Any = client.app
    pid = client.post("/patients", headers=h, json={"display_name": "P", "data": {"age_years": 50}}).json()["id"]
    with app.state.sessions() as s:
        s.execute(update(PatientSummary).where(PatientSummary.patient_id == pid).values(verdict="x"))
        s.commit()
    assert client.post(f"/patients/{pid}/plans", headers=h, json={"note": "n"}).status_code == 201
    got = _summary(app, pid)
    assert got is not None and got.verdict in {"acceptable", "caution", "avoid", "contraindicated"}
    with app.state.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Plan).where(Plan.patient_id == pid)) == 1


def test_the_list_is_paged_and_a_bad_page_number_is_the_first_page(client: TestClient) -> None:
    app: Any = client.app
    with app.state.sessions() as s:
        for i in range(120):
            s.add(Patient(display_name=f"Zz {i:03d}", data={"age_years": 20 + i % 60}))
        s.commit()
        total = s.scalar(select(func.count()).select_from(Patient))
    web = Browser(client, "clinician")
    first = web.get("/app/patients")
    assert first.status_code == 200
    listed = re.findall(r'<th scope="row"><a href="/app/patients/(\d+)"', first.text)
    assert len(listed) == 50
    assert f"of {total} (page 1 of 3)" in first.text and 'rel="next"' in first.text
    last = web.get("/app/patients", page="3")
    names = re.findall(r'<th scope="row"><a href="/app/patients/\d+">([^<]+)</a>', last.text)
    assert names[-1] == "Zz 119" and len(names) == total - 100
    for bad in ("0", "-1", "x", "9" * 30, "99"):
        r = web.get("/app/patients", page=bad)
        assert r.status_code == 200
    assert "(page 1 of 3)" in web.get("/app/patients", page="x").text
    assert "(page 3 of 3)" in web.get("/app/patients", page="99").text


def test_a_plan_is_saved_from_the_assessment_page(client: TestClient) -> None:
    app: Any = client.app
    h = login(client, "clinician")
    ok = client.post("/patients", headers=h, json={"display_name": "Plan ok", "data": {"age_years": 35}}).json()["id"]
    bad = client.post("/patients", headers=h, json={"display_name": "Plan maoi", "data": {
        "age_years": 35, "medications": [{"name": "phenelzine"}]}}).json()["id"]
    web = Browser(client, "clinician")
    page = web.get(f"/app/patients/{ok}")
    assert f'action="/app/patients/{ok}/plans"' in page.text and "No plan saved yet." in page.text
    r = web.post(f"/app/patients/{ok}/plans", {"note": "start on Monday", "taper": "1"})
    assert r.status_code == 303 and r.headers["location"].endswith("?recorded=plan#h-plan")
    shown = web.get(f"/app/patients/{ok}", recorded="plan").text
    assert "Plan saved as this patient's active plan (tramadol taper)" in shown and "start on Monday" in shown
    assert web.post(f"/app/patients/{ok}/plans", {"note": ""}).status_code == 303
    with app.state.sessions() as s:
        plans = s.scalars(select(Plan).where(Plan.patient_id == ok).order_by(Plan.id)).all()
        assert [p.status for p in plans] == ["superseded", "active"]
        assert plans[0].taper and plans[0].note == "start on Monday" and not plans[1].taper
    refused = web.post(f"/app/patients/{bad}/plans", {"taper": "1"})
    assert refused.status_code == 422 and "there is no tramadol taper for this patient" in refused.text
    assert web.post(f"/app/patients/{ok}/plans", {"note": "x"}, csrf=False).status_code == 403
    with app.state.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Plan).where(Plan.patient_id == bad)) == 0
        assert s.scalar(select(func.count()).select_from(Plan).where(Plan.patient_id == ok)) == 2


def test_old_summaries_catch_up_a_few_per_load(client: TestClient) -> None:
    from datetime import timedelta

    from withdrawal.service.models import utcnow
    from withdrawal.web import patients as views

    app: Any = client.app
    old = utcnow() - timedelta(hours=2)
    with app.state.sessions() as s:
        for i in range(8):
            s.add(Patient(display_name=f"Aged {i}", data={"age_years": 30 + i}))
        s.commit()  # their summaries are written with them
        s.execute(update(PatientSummary).values(computed_at=old))
        s.commit()
        n = s.scalar(select(func.count()).select_from(PatientSummary)) or 0
    assert n > views.SUMMARY_AGED_PER_LOAD
    web = Browser(client, "clinician")
    assert web.get("/app/patients").status_code == 200
    with app.state.sessions() as s:
        times = [r.computed_at for r in s.scalars(select(PatientSummary))]
    fresh = [t for t in times if t > old + timedelta(hours=1)]
    assert len(fresh) == views.SUMMARY_AGED_PER_LOAD
