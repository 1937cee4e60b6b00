"""A real uvicorn process on loopback, on SQLite and on PostgreSQL; migrations; SIGKILL durability."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session

from conftest import PASSWORDS, Keys, start_server, stop_server
from withdrawal.service.db import HEAD, downgrade, make_engine, migrate
from withdrawal.service.models import ScaleAssessment

pytestmark = pytest.mark.integration

TABLES = {
    "users",
    "api_tokens",
    "patients",
    "assessments",
    "plans",
    "medication_administrations",
    "audit_log",
    "cds_feedback",
    "cds_jti",
    "alembic_version",
}
COWS = {
    "resting_pulse_rate": 1,
    "sweating": 1,
    "restlessness": 1,
    "pupil_size": 1,
    "bone_or_joint_aches": 1,
    "runny_nose_or_tearing": 1,
    "gi_upset": 1,
    "tremor": 1,
    "yawning": 1,
    "anxiety_or_irritability": 1,
    "gooseflesh_skin": 3,
}


def _order_sign_body() -> dict[str, Any]:
    """A draft tramadol order for a patient on sertraline (a warning card)."""
    return {
        "hook": "order-sign",
        "hookInstance": "1",
        "context": {
            "patientId": "p1",
            "draftOrders": {
                "resourceType": "Bundle",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "MedicationRequest",
                            "id": "d1",
                            "status": "draft",
                            "medicationCodeableConcept": {"text": "tramadol 50 mg tablet"},
                        }
                    }
                ],
            },
        },
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1960-01-01"},
            "conditions": None,
            "medications": {
                "resourceType": "Bundle",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "MedicationRequest",
                            "status": "active",
                            "medicationCodeableConcept": {"text": "sertraline 50 mg"},
                        }
                    }
                ],
            },
        },
    }


def _token(c: httpx.Client, role: str) -> dict[str, str]:
    r = c.post("/auth/token", json={"username": role, "password": PASSWORDS[role]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _main_flows(url: str, keys: Keys) -> None:
    with httpx.Client(base_url=url, timeout=30) as c:
        hc, hp = _token(c, "clinician"), _token(c, "patient")
        r = c.post("/assess", headers=hc, json={"age_years": 30, "cows": COWS})
        assert r.status_code == 200 and r.json()["cows"]["total"] == 13
        pid = c.post("/patients", headers=hc, json={"display_name": "Live", "data": {"age_years": 50}}).json()["id"]
        assert (
            c.post(f"/patients/{pid}/assessments", headers=hc, json={"scale": "cows", "items": COWS}).status_code == 201
        )
        assert c.post(f"/patients/{pid}/plans", headers=hc, json={}).status_code == 201
        assert c.get(f"/patients/{pid}/trends", headers=hc).json()["cows"][0]["total"] == 13
        assert c.get(f"/patients/{pid}/alerts", headers=hc).status_code == 200
        assert c.get(f"/patients/{pid}", headers=hp).status_code == 404  # not the patient's own record
        assert any(a["patient_id"] == pid for a in c.get("/audit", headers=hc).json())
        aud = f"{url}/cds-services/withdrawal-order-sign"
        body = _order_sign_body()
        token = keys.token(aud)
        r = c.post("/cds-services/withdrawal-order-sign", json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        assert any(card["indicator"] == "warning" for card in r.json()["cards"])
        replay = c.post("/cds-services/withdrawal-order-sign", json=body, headers={"Authorization": f"Bearer {token}"})
        assert replay.status_code == 401 and "already used" in replay.text
        r = c.post("/cds-services/withdrawal-order-sign", json=body)  # no JWT
        assert r.status_code == 401
        assert c.get("/cds-services").status_code == 401


def test_live_server_on_sqlite(tmp_path: Path, keys: Keys) -> None:
    server = start_server(tmp_path / "data", keys=keys)
    try:
        _main_flows(server.url, keys)
    finally:
        stop_server(server)
    assert (tmp_path / "data" / "withdrawal.db").exists()
    assert "Traceback" not in server.log.read_text()


def test_live_server_on_postgresql(tmp_path: Path, keys: Keys, pg_url: str) -> None:
    server = start_server(tmp_path / "data", keys=keys, database_url=pg_url)
    try:
        _main_flows(server.url, keys)
    finally:
        stop_server(server)
    assert not (tmp_path / "data" / "withdrawal.db").exists()


def test_migrations_from_empty_on_sqlite_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    for url in (f"sqlite:///{tmp_path / 'm.db'}", pg_url):
        engine = make_engine(url)
        migrate(engine)
        migrate(engine)  # idempotent at head
        assert TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.exec_driver_sql("select version_num from alembic_version").scalar() == HEAD
        downgrade(engine, "base")  # and all the way down
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, keys: Keys, backend: str, request: Any) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    data = tmp_path / "data"
    server = start_server(data, keys=keys, database_url=url)
    acked: list[int] = []
    stop = threading.Event()

    def writer(pid: int, headers: dict[str, str]) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post(f"/patients/{pid}/assessments", headers=headers, json={"scale": "cows", "items": COWS})
                except httpx.HTTPError:
                    return
                if r.status_code == 201:
                    acked.append(r.json()["id"])

    with httpx.Client(base_url=server.url, timeout=10) as c:
        h = _token(c, "clinician")
        pid = c.post("/patients", headers=h, json={"display_name": "D", "data": {"age_years": 40}}).json()["id"]
    threads = [threading.Thread(target=writer, args=(pid, h)) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) >= 20
    db_url = url or f"sqlite:///{data / 'withdrawal.db'}"
    server2 = start_server(data, keys=keys, database_url=url)  # restarts on the same database
    try:
        engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
        with Session(engine) as s:
            rows = {a.id: a for a in s.scalars(select(ScaleAssessment).where(ScaleAssessment.patient_id == pid))}
        engine.dispose()
        missing = set(acked) - set(rows)
        assert not missing, f"acknowledged but lost: {sorted(missing)[:10]}"
        assert all(r.total == sum(r.items.values()) == 13 and len(r.items) == 11 for r in rows.values())
        with httpx.Client(base_url=server2.url, timeout=10) as c:
            assert c.get("/health").status_code == 200
    finally:
        stop_server(server2)


def test_several_workers_share_the_database(tmp_path: Path, keys: Keys) -> None:
    """``serve --workers 2``: migrated once, every worker answers, a JWT id is refused across workers."""
    server = start_server(tmp_path / "data", keys=keys, workers=2)
    try:
        aud = f"{server.url}/cds-services/withdrawal-order-sign"
        tokens = [keys.token(aud) for _ in range(24)]
        results: list[int] = []

        def call(chunk: list[str]) -> None:
            with httpx.Client(base_url=server.url, timeout=10) as c:
                for tok in chunk:
                    r = c.post(
                        "/cds-services/withdrawal-order-sign",
                        json=_order_sign_body(),
                        headers={"Authorization": f"Bearer {tok}"},
                    )
                    results.append(r.status_code)

        threads = [threading.Thread(target=call, args=(tokens[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [200] * 24
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for tok in tokens[:4]:  # whichever worker gets the replay, the database has the id
                r = c.post(
                    "/cds-services/withdrawal-order-sign",
                    json=_order_sign_body(),
                    headers={"Authorization": f"Bearer {tok}"},
                )
                assert r.status_code == 401
            h = _token(c, "clinician")  # the demo accounts were seeded once, before the workers started
            cds_rows = [a for a in c.get("/audit", headers=h, params={"limit": 500}).json() if a["action"] == "cds"]
        assert len(cds_rows) == 24
    finally:
        stop_server(server)
    log = server.log.read_text()
    assert "Traceback" not in log
    assert log.count("Started server process") == 2
