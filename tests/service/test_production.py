"""Issue 11: production mode, the demo switch, Argon2id passwords and who may call POST /assess.

Each against the real ``withdrawal serve`` process (SQLite: nothing here depends on the database).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from conftest import ISSUER, PASSWORDS, Keys, free_port, start_server, stop_server
from withdrawal.service.db import make_engine
from withdrawal.service.models import User

pytestmark = pytest.mark.integration

AUDIENCE = "https://withdrawal.example.org/cds-services"


def production_env(keys: Keys, **extra: str) -> dict[str, str]:
    return {
        "WITHDRAWAL_ENVIRONMENT": "production",
        "WITHDRAWAL_CDS_JWKS": json.dumps(keys.jwks),
        "WITHDRAWAL_CDS_ALLOWED_ISSUERS": ISSUER,
        "WITHDRAWAL_CDS_AUDIENCES": AUDIENCE,
        "WITHDRAWAL_CDS_FHIR_SERVERS": "https://fhir.example.org/r4",
        **extra,
    }


def serve(data: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``withdrawal serve`` expecting it to refuse to start (it exits before listening)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WITHDRAWAL_")}
    return subprocess.run(
        [sys.executable, "-m", "withdrawal", "serve", "--data-dir", str(data), "--port", str(free_port()), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_what_it_enforces(tmp_path: Path, keys: Keys) -> None:
    r = serve(tmp_path, {"WITHDRAWAL_ENVIRONMENT": "production"})
    assert r.returncode == 2, r.stderr
    for needed in ("WITHDRAWAL_CDS_JWKS", "WITHDRAWAL_CDS_AUDIENCES", "WITHDRAWAL_CDS_FHIR_SERVERS",
                   "WITHDRAWAL_CDS_ALLOWED_ISSUERS"):
        assert needed in r.stderr, (needed, r.stderr)
    for missing in ("WITHDRAWAL_CDS_AUDIENCES", "WITHDRAWAL_CDS_FHIR_SERVERS"):
        env = production_env(keys)
        del env[missing]
        r = serve(tmp_path, env)
        assert r.returncode == 2 and missing in r.stderr, r.stderr
    shared = {"keys": [{"kty": "oct", "k": base64.urlsafe_b64encode(b"k" * 32).decode(), "kid": "s"}]}
    r = serve(tmp_path, production_env(keys, WITHDRAWAL_CDS_JWKS=json.dumps(shared)))
    assert r.returncode == 2 and "asymmetric" in r.stderr, r.stderr
    r = serve(tmp_path, production_env(keys), "--demo")
    assert r.returncode == 2 and "--demo" in r.stderr, r.stderr
    assert not (tmp_path / "withdrawal.db").exists() or not _users(tmp_path)


def _users(data: Path) -> list[str]:
    engine = make_engine(f"sqlite:///{data / 'withdrawal.db'}")
    try:
        with Session(engine) as s:
            return list(s.scalars(select(User.username)))
    finally:
        engine.dispose()


def test_demo_refuses_a_non_loopback_host(tmp_path: Path) -> None:
    r = serve(tmp_path, {"WITHDRAWAL_ENVIRONMENT": "development"}, "--demo", "--host", "0.0.0.0")
    assert r.returncode == 2 and "loopback" in r.stderr, r.stderr


def test_production_starts_says_what_it_enforces_and_checks_the_audience(tmp_path: Path, keys: Keys) -> None:
    server = start_server(tmp_path, keys=keys, demo=False,
                          extra_env=production_env(keys, WITHDRAWAL_DOCS_ENABLED="false"))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for path in ("/docs", "/redoc", "/openapi.json"):
                assert c.get(path).status_code == 404, path
            here = f"{server.url}/cds-services"  # what the Host header says: not an audience in production
            assert c.get("/cds-services", headers={"Authorization": f"Bearer {keys.token(here)}"}).status_code == 401
            ok = c.get("/cds-services", headers={"Authorization": f"Bearer {keys.token(AUDIENCE)}"})
            assert ok.status_code == 200, ok.text
    finally:
        stop_server(server)
    log = server.log.read_text()
    assert "production mode enforces" in log and "fhir.example.org" in log and "API documentation" in log


def test_demo_never_resets_an_existing_password(tmp_path: Path, keys: Keys) -> None:
    first = start_server(tmp_path, keys=keys)  # demo accounts with the test passwords
    stop_server(first)
    other = "another-password-123"
    second = start_server(tmp_path, keys=keys, extra_env={"WITHDRAWAL_DEMO_CLINICIAN_PASSWORD": other})
    try:
        with httpx.Client(base_url=second.url, timeout=30) as c:
            kept = c.post("/auth/token", json={"username": "clinician", "password": PASSWORDS["clinician"]})
            assert kept.status_code == 200
            assert c.post("/auth/token", json={"username": "clinician", "password": other}).status_code == 401
    finally:
        stop_server(second)
    assert "password unchanged" in second.log.read_text()


def _scrypt(password: str) -> str:
    """A hash as the service wrote them before Argon2id (scrypt N=2^14, r=8, p=1)."""
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).decode().rstrip("=")

    return f"scrypt${2**14}$8$1${b64(salt)}${b64(dk)}"


def test_argon2id_hashes_and_scrypt_upgraded_at_login(tmp_path: Path, keys: Keys) -> None:
    server = start_server(tmp_path, keys=keys)
    engine = make_engine(f"sqlite:///{tmp_path / 'withdrawal.db'}")

    def stored(name: str) -> str:
        with Session(engine) as s:
            value = s.scalar(select(User.password_hash).where(User.username == name))
            assert value is not None
            return value

    try:
        assert stored("clinician").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        with Session(engine) as s:
            s.execute(update(User).where(User.username == "patient").values(password_hash=_scrypt(PASSWORDS["patient"])))
            s.commit()
        with httpx.Client(base_url=server.url, timeout=30) as c:
            wrong = c.post("/auth/token", json={"username": "patient", "password": "not-the-password"})
            assert wrong.status_code == 401 and stored("patient").startswith("scrypt$")
            ok = c.post("/auth/token", json={"username": "patient", "password": PASSWORDS["patient"]})
            assert ok.status_code == 200
            assert stored("patient").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
            again = c.post("/auth/token", json={"username": "patient", "password": PASSWORDS["patient"]})
            assert again.status_code == 200
    finally:
        engine.dispose()
        stop_server(server)


def test_patient_accounts_cannot_call_assess(tmp_path: Path, keys: Keys) -> None:
    server = start_server(tmp_path, keys=keys)
    body: dict[str, Any] = {"age_years": 34, "medications": [{"name": "sertraline"}]}
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            tokens = {
                role: c.post("/auth/token", json={"username": role, "password": PASSWORDS[role]}).json()["access_token"]
                for role in ("clinician", "patient")
            }
            r = c.post("/assess", json=body, headers={"Authorization": f"Bearer {tokens['patient']}"})
            assert r.status_code == 403 and "tramadol" not in r.text
            r = c.post("/assess", json=body, headers={"Authorization": f"Bearer {tokens['clinician']}"})
            assert r.status_code == 200 and "tramadol" in r.json()
    finally:
        stop_server(server)
