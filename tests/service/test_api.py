"""REST API through TestClient on real SQLite: auth, roles, audit, records, monitoring, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from conftest import PASSWORDS, login
from withdrawal.service.models import AuditEntry

COWS_ITEMS = [
    "resting_pulse_rate",
    "sweating",
    "restlessness",
    "pupil_size",
    "bone_or_joint_aches",
    "runny_nose_or_tearing",
    "gi_upset",
    "tremor",
    "yawning",
    "anxiety_or_irritability",
    "gooseflesh_skin",
]


def cows(level: int) -> dict[str, int]:
    allowed = {"restlessness": (0, 1, 3, 5), "gooseflesh_skin": (0, 3, 5), "pupil_size": (0, 1, 2, 5)}
    return {k: allowed.get(k, (0, 1, 2, 4))[min(level, 2)] for k in COWS_ITEMS}


def test_health_and_openapi_document_the_routes(client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    for path in (
        "/assess",
        "/patients",
        "/patients/{patient_id}/alerts",
        "/patients/{patient_id}/trends",
        "/patients/{patient_id}/plans",
        "/cds-services",
        "/auth/token",
    ):
        assert path in spec["paths"]


def test_login_refuses_wrong_password_and_audits_it(client) -> None:
    assert client.post("/auth/token", json={"username": "clinician", "password": "nope"}).status_code == 401
    assert client.get("/patients").status_code == 401
    assert client.get("/patients", headers={"Authorization": "Bearer forged"}).status_code == 401
    with client.app.state.sessions() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "login", AuditEntry.outcome == "denied"))


def test_repeated_failed_logins_are_throttled_per_username_and_client(app_factory) -> None:
    """After ``login_max_failures`` denied tries from one address even the right password gets 429 there (and
    is not checked); the same username from another address, and another username, are unaffected; the web
    login shares the count; a successful login starts it again."""
    from fastapi.testclient import TestClient

    app = app_factory(login_max_failures=3, login_window_minutes=15)
    wrong = {"username": "clinician", "password": "nope"}
    right = {"username": "clinician", "password": PASSWORDS["clinician"]}
    with TestClient(app, client=("10.0.0.1", 5000)) as c, TestClient(app, client=("10.0.0.2", 5000)) as ward:
        assert c.post("/auth/token", json=wrong).status_code == 401
        assert c.post("/auth/token", json=right).status_code == 200  # success: the count starts again
        for _ in range(3):
            assert c.post("/auth/token", json=wrong).status_code == 401
        r = c.post("/auth/token", json=right)
        assert r.status_code == 429 and r.headers["retry-after"] == "900"
        assert "too many" in r.json()["detail"]
        assert login(c, "patient")  # a different username logs in
        page = c.get("/login")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        web = c.post("/login", data={**right, "csrf": csrf})
        assert web.status_code == 429 and "Too many failed logins" in web.text
        assert ward.post("/auth/token", json=right).status_code == 200  # the clinician at the ward PC is not locked out
        assert c.post("/auth/token", json=right).status_code == 200  # and that success starts the count again
        with app.state.sessions() as s:
            outcomes = s.scalars(select(AuditEntry.outcome).where(AuditEntry.actor == "login:clinician@10.0.0.1")).all()
        assert outcomes.count("denied") == 4 and outcomes.count("throttled") == 2


def test_logout_revokes_the_bearer_token(client) -> None:
    h = login(client, "clinician")
    assert client.get("/auth/me", headers=h).status_code == 200
    assert client.post("/auth/logout", headers=h).status_code == 204
    assert client.get("/auth/me", headers=h).status_code == 401
    assert client.post("/auth/logout", headers=h).status_code == 401
    with client.app.state.sessions() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "logout"))


def test_stateless_assess_returns_cited_answer(client) -> None:
    h = login(client, "clinician")
    body = {"age_years": 40, "medications": [{"name": "phenelzine", "status": "stopped", "days_since_stopped": 3}]}
    r = client.post("/assess", json=body, headers=h)
    assert r.status_code == 200
    out = r.json()
    assert out["tramadol"]["verdict"] == "contraindicated"
    assert all(s["link"].startswith("http") for s in out["sources"].values())


def test_assess_bad_input_is_422_with_field_names(client) -> None:
    h = login(client, "clinician")
    r = client.post("/assess", json={"age_years": 300}, headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "age_years"
    r = client.post("/assess", content=b"{not json", headers={**h, "content-type": "application/json"})
    assert r.status_code == 422
    r = client.post("/assess", json={"age_years": 30, "cows": {"sweating": 9}}, headers=h)
    assert r.status_code == 422 and "cows" in r.json()["detail"][0]["field"]


def test_request_body_over_the_limit_is_413(app_factory) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app_factory(max_body_bytes=2048)) as c:
        h = login(c, "clinician")
        r = c.post(
            "/assess",
            content=b'{"age_years": 30, "x": "' + b"a" * 5000 + b'"}',
            headers={**h, "content-type": "application/json"},
        )
        assert r.status_code == 413


def test_patient_sees_only_their_own_record(client) -> None:
    hc, hp = login(client, "clinician"), login(client, "patient")
    me = client.get("/auth/me", headers=hp).json()
    own = me["patient_id"]
    other = next(p["id"] for p in client.get("/patients", headers=hc).json() if p["id"] != own)
    assert [p["id"] for p in client.get("/patients", headers=hp).json()] == [own]
    assert client.get(f"/patients/{own}", headers=hp).status_code == 200
    for path in (
        f"/patients/{other}",
        f"/patients/{other}/assessments",
        f"/patients/{other}/plans",
        f"/patients/{other}/trends",
        f"/patients/{other}/alerts",
        f"/patients/{other}/administrations",
    ):
        assert client.get(path, headers=hp).status_code == 404, path
    assert client.get("/audit", headers=hp).status_code == 403
    assert client.post("/patients", json={"display_name": "x", "data": {"age_years": 3}}, headers=hp).status_code == 403
    # a patient may self-report a SOWS, but not score a COWS
    sows = (
        dict.fromkeys(client.app.state.kb.scales["sows"].item_ids, 1)
        if hasattr(client.app.state.kb.scales["sows"], "item_ids")
        else {i.id: 1 for i in client.app.state.kb.scales["sows"].items}
    )
    assert (
        client.post(f"/patients/{own}/assessments", json={"scale": "sows", "items": sows}, headers=hp).status_code
        == 201
    )
    r = client.post(f"/patients/{own}/assessments", json={"scale": "cows", "items": cows(1)}, headers=hp)
    assert r.status_code == 403
    denied = client.get(f"/audit?patient_id={other}", headers=hc).json()
    assert any(a["outcome"] == "denied" and a["actor"] == "patient:patient" for a in denied)


def test_every_read_and_write_is_audited(client) -> None:
    h = login(client, "clinician")
    r = client.post(
        "/patients",
        headers=h,
        json={"display_name": "Test Person", "external_id": "ext-1", "data": {"age_years": 44, "sex": "male"}},
    )
    assert r.status_code == 201
    pid = r.json()["id"]
    client.get(f"/patients/{pid}", headers=h)
    client.post(f"/patients/{pid}/assessments", json={"scale": "cows", "items": cows(1)}, headers=h)
    client.get(f"/patients/{pid}/trends", headers=h)
    rows = client.get(f"/audit?patient_id={pid}", headers=h).json()
    seen = {(a["action"], a["resource"]) for a in rows}
    assert {("create", "patient"), ("read", "patient"), ("create", "assessment"), ("read", "trends")} <= seen
    assert all(a["actor"] == "clinician:clinician" and a["at"] for a in rows)


def test_patient_from_fhir_bundle_and_plan_and_alerts(client) -> None:
    from svc_synthea import bundle

    h = login(client, "clinician")
    b, _ = bundle(noise=100)
    r = client.post("/patients", headers=h, json={"display_name": "From EHR", "data": b})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    now = datetime.now(UTC)
    for hours, level in ((30, 0), (6, 2)):
        r = client.post(
            f"/patients/{pid}/assessments",
            headers=h,
            json={"scale": "cows", "items": cows(level), "recorded_at": (now - timedelta(hours=hours)).isoformat()},
        )
        assert r.status_code == 201
    r = client.post(
        f"/patients/{pid}/administrations",
        headers=h,
        json={"drug": "Suboxone", "dose_mg": 4, "at": (now - timedelta(hours=20)).isoformat()},
    )
    assert r.status_code == 422  # a combination brand is two ingredients: name one
    r = client.post(
        f"/patients/{pid}/administrations",
        headers=h,
        json={"drug": "buprenorphine", "dose_mg": 4, "at": (now - timedelta(hours=20)).isoformat()},
    )
    assert r.status_code == 201 and r.json()["drug"] == "buprenorphine"
    plan = client.post(f"/patients/{pid}/plans", headers=h, json={"note": "start"}).json()
    assert plan["status"] == "active" and plan["result"]["cows"]["total"] > 0
    trends = client.get(f"/patients/{pid}/trends", headers=h).json()
    assert [p["band"] for p in trends["cows"]] == ["none", "moderately_severe"]
    alerts = client.get(f"/patients/{pid}/alerts", headers=h).json()
    codes = [a["code"] for a in alerts["alerts"]]
    assert "cows_worsening_on_treatment" in codes and "buprenorphine_threshold_reached" in codes
    assert all(alerts["sources"][s]["link"].startswith("http") for a in alerts["alerts"] for s in a["sources"])


def test_tramadol_dose_at_limit_alert(client) -> None:
    h = login(client, "clinician")
    pid = client.post("/patients", headers=h, json={"display_name": "T", "data": {"age_years": 80}}).json()["id"]
    now = datetime.now(UTC)
    for i in range(3):  # 3 x 100 mg in 24 h, limit over 75 years is 300 mg
        client.post(
            f"/patients/{pid}/administrations",
            headers=h,
            json={"drug": "Ultram", "dose_mg": 100, "at": (now - timedelta(hours=2 + i * 6)).isoformat()},
        )
    alerts = client.get(f"/patients/{pid}/alerts", headers=h).json()["alerts"]
    top = alerts[0]
    assert top["code"] == "tramadol_dose_at_limit" and top["level"] == "critical"
    assert top["evidence"] == {"last_24h_mg": 300.0, "limit_mg": 300}


def test_duplicate_external_id_and_unknown_patient(client) -> None:
    h = login(client, "clinician")
    body = {"display_name": "A", "external_id": "dup", "data": {"age_years": 30}}
    assert client.post("/patients", headers=h, json=body).status_code == 201
    assert client.post("/patients", headers=h, json=body).status_code == 422
    assert client.get("/patients/999999", headers=h).status_code == 404
    r = client.post("/users", headers=h, json={"username": "p2", "password": "x" * 12, "role": "patient"})
    assert r.status_code == 422


def test_new_patient_account_logs_in(client) -> None:
    h = login(client, "clinician")
    pid = client.post("/patients", headers=h, json={"display_name": "B", "data": {"age_years": 30}}).json()["id"]
    r = client.post(
        "/users",
        headers=h,
        json={"username": "bob", "password": "long-password-1", "role": "patient", "patient_id": pid},
    )
    assert r.status_code == 201
    tok = client.post("/auth/token", json={"username": "bob", "password": "long-password-1"}).json()["access_token"]
    assert client.get("/patients", headers={"Authorization": f"Bearer {tok}"}).json()[0]["id"] == pid
    assert PASSWORDS  # demo passwords come from settings


def test_a_taper_plan_needs_a_printed_tramadol_schedule(client) -> None:
    """The API refuses a taper plan where the plan prints no tramadol schedule, as the page does (one rule,
    in records.make_plan): phenelzine makes tramadol contraindicated (label: MAOI within 14 days)."""
    h = login(client, "clinician")
    ok = client.post("/patients", headers=h, json={"display_name": "Taper ok", "data": {"age_years": 35}}).json()["id"]
    bad = client.post("/patients", headers=h, json={"display_name": "Taper maoi", "data": {
        "age_years": 35, "medications": [{"name": "phenelzine"}]}}).json()["id"]
    r = client.post(f"/patients/{bad}/plans", headers=h, json={"taper": True})
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["field"] == "taper" and "contraindicated" in item["message"] and "without it" in item["message"]
    assert client.get(f"/patients/{bad}/plans", headers=h).json() == []  # nothing half-written
    plain = client.post(f"/patients/{bad}/plans", headers=h, json={"taper": False})
    assert plain.status_code == 201 and plain.json()["taper"] is False
    taper = client.post(f"/patients/{ok}/plans", headers=h, json={"taper": True})
    assert taper.status_code == 201 and taper.json()["taper"] is True
    assert taper.json()["result"]["tramadol"]["regimen"]
