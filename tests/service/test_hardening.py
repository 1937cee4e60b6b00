"""Issue 11, hardening, against a real ``withdrawal serve`` on SQLite and on PostgreSQL.

Input that breaks the record: bounded timestamps (and old out-of-range rows that no longer
break pages), out-of-range ids, NUL characters and non-finite numbers refused at the edge.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import ISSUER, PASSWORDS, Keys, LiveServer, pg_database, start_server, stop_server
from withdrawal.service.db import make_engine
from withdrawal.service.models import Patient, ScaleAssessment, User

pytestmark = pytest.mark.integration

COWS = {
    "resting_pulse_rate": 4,
    "sweating": 4,
    "restlessness": 5,
    "pupil_size": 5,
    "bone_or_joint_aches": 4,
    "runny_nose_or_tearing": 4,
    "gi_upset": 5,
    "tremor": 4,
    "yawning": 4,
    "anxiety_or_irritability": 4,
    "gooseflesh_skin": 5,
}
ZERO_COWS = dict.fromkeys(COWS, 0)


class Live:
    """A running server, its database URL and a clinician's bearer token."""

    def __init__(self, server: LiveServer, db_url: str, backend: str) -> None:
        self.server, self.url, self.db_url, self.backend = server, server.url, db_url, backend
        self.clients: list[httpx.Client] = []
        self.http = self.client()
        self.clinician = self.token("clinician")
        self.patient = self.token("patient")

    def client(self) -> httpx.Client:
        """An HTTP client closed with the server (an unclosed socket is an error in these tests)."""
        c = httpx.Client(base_url=self.url, timeout=30)
        self.clients.append(c)
        return c

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def token(self, role: str) -> dict[str, str]:
        r = self.http.post("/auth/token", json={"username": role, "password": PASSWORDS[role]})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def new_patient(self, **data: Any) -> int:
        body = {"display_name": f"P {uuid.uuid4().hex[:6]}", "data": {"age_years": 40, **data}}
        r = self.http.post("/patients", json=body, headers=self.clinician)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def web_login(self, role: str) -> httpx.Client:
        """A browser-like client signed in through the login form (CSRF token and cookies)."""
        web = self.client()
        page = web.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text[:500]
        r = web.post("/login", data={"csrf": csrf.group(1), "username": role, "password": PASSWORDS[role]})
        assert r.status_code == 303, r.text[:500]
        return web


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[Live]:
    data = tmp_path_factory.mktemp(f"hardening-{request.param}")
    db_url = pg_database(request.getfixturevalue("pg_server")) if request.param == "postgresql" else None
    server = start_server(data, keys=keys, database_url=db_url)
    running = None
    try:
        running = Live(server, db_url or f"sqlite:///{data / 'withdrawal.db'}", request.param)
        yield running
    finally:
        if running is not None:
            running.close()
        stop_server(server)


# --- timestamps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:59:59",
        "9999-12-31T23:59:59-01:00",  # beyond year 9999 in UTC
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "0001-01-01T00:00:00",
        "1999-12-31T23:59:59Z",
        "2099-01-01T00:00:00Z",
    ],
)
def test_recorded_times_out_of_bounds_are_422_naming_the_field(live: Live, when: str) -> None:
    pid = live.new_patient()
    r = live.http.post(
        f"/patients/{pid}/assessments",
        json={"scale": "cows", "items": ZERO_COWS, "recorded_at": when},
        headers=live.clinician,
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["field"] == "recorded_at" and "2000-01-01" in r.json()["detail"][0]["message"]
    r = live.http.post(
        f"/patients/{pid}/administrations", json={"drug": "tramadol", "dose_mg": 50, "at": when}, headers=live.clinician
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "at"


def test_recorded_times_within_bounds_are_stored_in_utc(live: Live) -> None:
    pid = live.new_patient()
    soon = (datetime.now(UTC) + timedelta(minutes=2)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    for when, want in (("2000-01-01T00:30:00+01:00", "1999-12-31T23:30"), ("2000-01-01T01:00:00+01:00", None)):
        r = live.http.post(
            f"/patients/{pid}/assessments",
            json={"scale": "cows", "items": ZERO_COWS, "recorded_at": when},
            headers=live.clinician,
        )
        assert r.status_code == (422 if want else 201), r.text
    r = live.http.post(
        f"/patients/{pid}/assessments",
        json={"scale": "cows", "items": ZERO_COWS, "recorded_at": soon},
        headers=live.clinician,
    )
    assert r.status_code == 201, r.text  # a client clock 2 minutes ahead is skew, not the future
    assert r.json()["recorded_at"].startswith(soon[:16])


def test_rows_stored_before_the_bounds_break_no_page(live: Live) -> None:
    """A SOWS dated 9999-12-31 and a severe COWS dated 2099, written straight into the database."""
    engine = make_engine(live.db_url)
    with Session(engine) as s:
        demo = s.scalar(select(User).where(User.username == "patient"))
        clinician = s.scalar(select(User).where(User.username == "clinician"))
        assert demo is not None and clinician is not None and demo.patient_id is not None
        pid = demo.patient_id
        for scale, items, total, when in (
            ("sows", {"craving": 4}, 4, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
            ("cows", COWS, 48, datetime(2099, 1, 1, tzinfo=UTC)),
            ("sows", {"craving": 1}, 1, datetime(1, 1, 1, tzinfo=UTC)),
        ):
            s.add(
                ScaleAssessment(
                    patient_id=pid, scale=scale, total=total, band="severe" if scale == "cows" else None,
                    items=items, recorded_at=when, recorded_by=clinician.id, kb_version="x", software_version="x",
                )
            )
        s.commit()
    engine.dispose()
    # a COWS of 0 today is the latest, not the 48 of 2099
    r = live.http.post(f"/patients/{pid}/assessments", json={"scale": "cows", "items": ZERO_COWS},
                       headers=live.clinician)
    assert r.status_code == 201
    patient_web = live.web_login("patient")
    diary = patient_web.get(f"/app/patients/{pid}")
    assert diary.status_code == 200, diary.text[:500]
    clinician_web = live.web_login("clinician")
    for path in (f"/app/patients/{pid}/course", f"/app/patients/{pid}", "/app/patients"):
        page = clinician_web.get(path)
        assert page.status_code == 200, (path, page.text[:500])
    listing = clinician_web.get("/app/patients").text
    assert "48/48" not in listing and "48 / 48" not in listing
    result = clinician_web.get(f"/app/patients/{pid}").text
    assert "48/48" not in result
    assert live.http.get(f"/patients/{pid}/trends", headers=live.clinician).status_code == 200
    alerts = live.http.get(f"/patients/{pid}/alerts", headers=live.clinician)
    assert alerts.status_code == 200
    plan = live.http.post(f"/patients/{pid}/plans", json={}, headers=live.clinician)
    assert plan.status_code == 201 and plan.json()["result"]["cows"]["total"] == 0
    # the API still lists every stored row: nothing is hidden from the record itself
    listed = live.http.get(f"/patients/{pid}/assessments", headers=live.clinician).json()
    assert any(a["recorded_at"].startswith("9999-12-31") for a in listed)


# --- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pid", ["99999999999999999999", "9223372036854775808", "2147483648", "0", "-1"])
def test_out_of_range_ids_are_404_or_422_everywhere(live: Live, pid: str) -> None:
    for path in ("", "/assessments", "/plans", "/administrations", "/trends", "/alerts"):
        r = live.http.get(f"/patients/{pid}{path}", headers=live.clinician)
        assert r.status_code in (404, 422), (path, r.status_code, r.text)
    web = live.web_login("clinician")
    for path in ("", "/course", "/cows", "/sows", "/edit", "/simulator"):
        r = web.get(f"/app/patients/{pid}{path}")
        assert r.status_code in (404, 422), (path, r.status_code, r.text[:300])
    patient_web = live.web_login("patient")
    assert patient_web.get(f"/app/patients/{pid}").status_code in (404, 422)


# --- NUL and non-finite numbers ----------------------------------------------------------------


def test_nul_characters_are_422_at_the_edge(live: Live) -> None:
    nul = "a\x00b"
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/auth/token", {"username": nul, "password": "whatever-pass"}, "username"),
        ("/patients", {"display_name": nul, "data": {"age_years": 40}}, "display_name"),
        ("/patients", {"display_name": "x", "external_id": nul, "data": {"age_years": 40}}, "external_id"),
        ("/patients", {"display_name": "x", "data": {"age_years": 40, "conditions": [nul]}}, "data.conditions[0]"),
    ]
    for path, body, field in cases:
        r = live.http.post(path, json=body, headers=live.clinician)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert r.json()["detail"][0]["field"] == field and "NUL" in r.json()["detail"][0]["message"]
    pid = live.new_patient()
    r = live.http.post(f"/patients/{pid}/plans", json={"note": nul}, headers=live.clinician)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "note"
    r = live.http.post(
        "/cds-services/withdrawal-patient-view",
        json={"hook": "patient-view", "hookInstance": nul, "context": {"patientId": "p1"}},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "hookInstance"
    # the web forms: a NUL in the username before login, in a patient's name
    web = live.client()
    csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/login").text)
    assert csrf
    r = web.post("/login", data={"csrf": csrf.group(1), "username": nul, "password": "x"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "username"
    clinician = live.web_login("clinician")
    r = clinician.post("/app/patients/new", data={"csrf": "x", "display_name": nul, "age_years": "40"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "display_name"
    assert live.http.get("/audit?patient_id=1%00", headers=live.clinician).status_code == 422
    # a multipart form, and a JSON body sent without a content type (FastAPI reads it as JSON)
    token = re.search(r'name="csrf" value="([^"]+)"', clinician.get("/app/patients/new").text)
    assert token
    fields = {"csrf": (None, token.group(1)), "display_name": (None, nul), "age_years": (None, "40")}
    r = clinician.post("/app/patients/new", files=fields)
    assert r.status_code == 422
    r = live.http.post(
        "/patients", content=b'{"display_name": "a\\u0000b", "data": {"age_years": 40}}', headers=live.clinician
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "display_name"


def test_cds_feedback_time_is_bounded(live: Live, keys: Keys) -> None:
    url = f"{live.url}/cds-services/withdrawal-order-sign/feedback"
    for when, status in (("9999-12-31T23:59:59-01:00", 422), ("2099-01-01T00:00:00Z", 422), (None, 200)):
        fb: dict[str, Any] = {"card": "c1", "outcome": "accepted"}
        if when:
            fb["outcomeTimestamp"] = when
        r = live.http.post(url, json={"feedback": [fb]}, headers={"Authorization": f"Bearer {keys.token(url)}"})
        assert r.status_code == status, (when, r.text)


def test_non_finite_numbers_are_422_at_the_edge(live: Live) -> None:
    for raw in (
        b'{"display_name": "x", "data": {"age_years": 40, "weight_kg": Infinity}}',
        b'{"display_name": "x", "data": {"age_years": 40, "weight_kg": -Infinity}}',
        b'{"display_name": "x", "data": {"age_years": 40, "weight_kg": NaN}}',
    ):
        r = live.http.post("/patients", content=raw, headers={**live.clinician, "content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert "finite" in r.json()["detail"][0]["message"]
    r = live.http.post(
        "/assess", content=b'{"age_years": 40, "weight_kg": Infinity}',
        headers={**live.clinician, "content-type": "application/json"},
    )
    assert r.status_code == 422
    # the text "Infinity" and "NaN" inside strings is ordinary data
    r = live.http.post(
        "/patients", json={"display_name": "Infinity NaN", "data": {"age_years": 40}}, headers=live.clinician
    )
    assert r.status_code == 201
    engine = make_engine(live.db_url)
    with Session(engine) as s:
        for p in s.scalars(select(Patient)):
            assert "Infinity" not in str(p.data) and "NaN" not in str(p.data)
    engine.dispose()


# --- application logs --------------------------------------------------------------------------

MARKERS = ("Zebedee-Marker-7781", "mrn-marker-7781", "note-marker-7781", "73.25")


def _break_writes(db_url: str) -> None:
    """Make every write of patient data fail inside the database, as a real fault would."""
    from sqlalchemy import text

    engine = make_engine(db_url)
    with engine.begin() as conn:
        for table in ("patients", "assessments", "plans", "medication_administrations"):
            if engine.dialect.name == "sqlite":
                conn.execute(text(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                                  "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"))
            else:  # the error's DETAIL would name the whole failing row
                conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT refuse_{table} CHECK (id < 0) NOT VALID"))
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_unhandled_errors_log_no_patient_data(
    backend: str, tmp_path_factory: pytest.TempPathFactory, keys: Keys, request: pytest.FixtureRequest
) -> None:
    data = tmp_path_factory.mktemp(f"logs-{backend}")
    db_url = pg_database(request.getfixturevalue("pg_server")) if backend == "postgresql" else None
    server = start_server(data, keys=keys, database_url=db_url)
    live = Live(server, db_url or f"sqlite:///{data / 'withdrawal.db'}", backend)
    try:
        pid = live.new_patient()
        _break_writes(live.db_url)
        failed = [
            live.http.post("/patients", headers=live.clinician, json={
                "display_name": MARKERS[0], "external_id": MARKERS[1], "data": {"age_years": 40}}),
            live.http.post(f"/patients/{pid}/plans", headers=live.clinician, json={"note": MARKERS[2]}),
            live.http.post(f"/patients/{pid}/administrations", headers=live.clinician,
                           json={"drug": "tramadol", "dose_mg": float(MARKERS[3])}),
            live.http.post(f"/patients/{pid}/assessments", headers=live.clinician,
                           json={"scale": "cows", "items": COWS}),
        ]
        assert [r.status_code for r in failed] == [500] * 4, [r.text for r in failed]
        ids = [r.json()["request_id"] for r in failed]
    finally:
        live.close()
        stop_server(server)
    log = server.log.read_text(encoding="utf-8", errors="replace")
    assert all(rid in log for rid in ids), log[-2000:]  # the errors were logged, with their request ids
    for marker in MARKERS:
        assert marker not in log, marker
    assert "Traceback" not in log and "parameters" not in log and "Failing row" not in log


# --- CDS tokens --------------------------------------------------------------------------------


def _jwt(keys: Keys, aud: str, **claims: Any) -> str:
    import jwt

    now = int(time.time())
    body = {"iss": ISSUER, "sub": "c", "aud": aud, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex, **claims}
    return jwt.encode(body, keys.ec, algorithm="ES384", headers={"kid": "ec1"})


def test_cds_token_expiry_is_bounded_and_must_be_a_number(live: Live, keys: Keys) -> None:
    aud = f"{live.url}/cds-services"
    now = int(time.time())
    ok = live.http.get("/cds-services", headers={"Authorization": f"Bearer {_jwt(keys, aud, exp=now + 290)}"})
    assert ok.status_code == 200, ok.text
    for exp in (now + 3600, now + 10**9, 1e300, float("inf"), "9" * 400, str(now + 60), None, True, [now]):
        token = _jwt(keys, aud, exp=exp)
        r = live.http.get("/cds-services", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (exp, r.status_code, r.text)


def test_cds_jti_is_compared_whole(live: Live, keys: Keys) -> None:
    aud = f"{live.url}/cds-services"
    prefix = "j" * 300
    first, second = prefix + "-one", prefix + "-two"
    for jti in (first, second):  # two ids sharing their first 300 characters are two ids
        r = live.http.get("/cds-services", headers={"Authorization": f"Bearer {_jwt(keys, aud, jti=jti)}"})
        assert r.status_code == 200, r.text
    replay = live.http.get("/cds-services", headers={"Authorization": f"Bearer {_jwt(keys, aud, jti=first)}"})
    assert replay.status_code == 401 and "already used" in replay.text
    with_nul = _jwt(keys, aud, jti="a\x00b")
    nul = live.http.get("/cds-services", headers={"Authorization": f"Bearer {with_nul}"})
    assert nul.status_code == 200  # stored as a digest: a NUL in a jti is no database error


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_idempotency_key_makes_a_retried_write_create_nothing_twice(live: Live) -> None:
    name = f"Idem {uuid.uuid4().hex[:8]}"
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    body = {"display_name": name, "data": {"age_years": 40}}
    first = live.http.post("/patients", json=body, headers={**live.clinician, **key})
    retry = live.http.post("/patients", json=body, headers={**live.clinician, **key})
    assert first.status_code == retry.status_code == 201 and first.json() == retry.json()
    pid = first.json()["id"]
    listed = live.http.get("/patients", params={"limit": 1000}, headers=live.clinician).json()
    assert [p["display_name"] for p in listed].count(name) == 1
    other = live.http.post("/patients", json={**body, "display_name": name + "x"}, headers={**live.clinician, **key})
    assert other.status_code == 422 and other.json()["detail"][0]["field"] == "Idempotency-Key"
    without = live.http.post("/patients", json=body, headers=live.clinician)
    assert without.status_code == 201 and without.json()["id"] != pid  # no key: a new record, as before
    for path, payload in (
        ("assessments", {"scale": "cows", "items": ZERO_COWS}),
        ("administrations", {"drug": "tramadol", "dose_mg": 50}),
        ("plans", {"note": "retry"}),
    ):
        k = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
        a = live.http.post(f"/patients/{pid}/{path}", json=payload, headers={**live.clinician, **k})
        b = live.http.post(f"/patients/{pid}/{path}", json=payload, headers={**live.clinician, **k})
        assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"], (path, a.text, b.text)
        rows = live.http.get(f"/patients/{pid}/{path}", headers=live.clinician).json()
        assert len(rows) == 1, (path, rows)
    bad = live.http.post("/patients", json=body, headers={**live.clinician, "Idempotency-Key": "has space"})
    assert bad.status_code == 422


def test_concurrent_retries_with_one_key_create_one_record(live: Live) -> None:
    from concurrent.futures import ThreadPoolExecutor

    name = f"Concurrent {uuid.uuid4().hex[:8]}"
    headers = {**live.clinician, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    body = {"display_name": name, "data": {"age_years": 40}}

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=live.url, timeout=30) as c:
            return c.post("/patients", json=body, headers=headers)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1
    listed = live.http.get("/patients", params={"limit": 1000}, headers=live.clinician).json()
    assert [p["display_name"] for p in listed].count(name) == 1
