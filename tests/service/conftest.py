"""Service fixtures: apps on real SQLite, a throwaway PostgreSQL cluster, JWT keys, live servers."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from withdrawal.app import create_app  # noqa: E402
from withdrawal.service import Settings  # noqa: E402

ISSUER = "https://ehr.example.org"
PASSWORDS = {"clinician": "clinician-pass-123", "patient": "patient-pass-1234"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- keys and JWTs -----------------------------------------------------------------------


class Keys:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP384R1())
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        self.jwks = {
            "keys": [
                {**rsa_jwk, "kid": "rsa1", "alg": "RS384", "use": "sig"},
                {**ec_jwk, "kid": "ec1", "alg": "ES384", "use": "sig"},
            ]
        }

    def token(
        self,
        aud: str,
        *,
        alg: str = "ES384",
        iss: str = ISSUER,
        exp_in: int = 300,
        jti: str | None = None,
        kid: str | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": iss,
            "sub": "client-1",
            "aud": aud,
            "iat": now,
            "exp": now + exp_in,
            "jti": jti or uuid.uuid4().hex,
        }
        for k in drop:
            claims.pop(k)
        key = self.ec if alg.startswith("ES") else self.rsa
        return jwt.encode(
            claims,
            key,
            algorithm=alg,
            headers={"kid": kid or ("ec1" if alg.startswith("ES") else "rsa1"), "typ": "JWT"},
        )


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


# --- in-process app on SQLite -------------------------------------------------------------


def make_settings(tmp: Path, keys: Keys | None = None, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "environment": "test",
        "data_dir": tmp,
        "demo_clinician_password": PASSWORDS["clinician"],
        "demo_patient_password": PASSWORDS["patient"],
        "cds_allowed_issuers": (ISSUER,),
    }
    if keys is not None:
        base["cds_jwks"] = json.dumps(keys.jwks)
    base.update(kw)
    return Settings(**base)


@pytest.fixture
def app_factory(tmp_path: Path, keys: Keys) -> Callable[..., Any]:
    from withdrawal.knowledge.loader import default_kb
    from withdrawal.service.demo import seed

    def build(**kw: Any) -> Any:
        transport = kw.pop("fhir_transport", None)
        settings = make_settings(tmp_path, keys, **kw)
        app = create_app(settings, fhir_transport=transport)
        seed(app.state.sessions, settings, default_kb())
        return app

    return build


@pytest.fixture
def client(app_factory: Callable[..., Any]) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app_factory()) as c:
        yield c


def login(c: Any, role: str) -> dict[str, str]:
    r = c.post("/auth/token", json={"username": role, "password": PASSWORDS[role]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        pytest.fail(
            f"PostgreSQL binary {name!r} not found on PATH or in /usr/lib/postgresql/*/bin: "
            "install the Debian 'postgresql' package (see docs/service.md)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def pg_server() -> Iterator[dict[str, Any]]:
    """A throwaway cluster on a free port, started with initdb/pg_ctl (as 'postgres' when we are root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="withdrawal-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = "postgres" if _has_user("postgres") else "nobody"
        pw = pwd.getpwnam(user)
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chown(sock, pw.pw_uid, pw.pw_gid)
        os.chmod(root, 0o755)
        prefix = ["runuser", "-u", user, "--"]
    port = free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=on"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", opts, "-w", "-t", "60", "-l", str(root / "log"), "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield {"port": port, "root": root}
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def pg_database(pg_server: dict[str, Any]) -> str:
    """A fresh, empty database in the session's cluster (for fixtures of any scope)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_server['port']}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:{pg_server['port']}/{name}"


@pytest.fixture
def pg_url(pg_server: dict[str, Any]) -> str:
    """A fresh, empty database in the session's cluster."""
    return pg_database(pg_server)


# --- live uvicorn server ----------------------------------------------------------------------


class LiveServer:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log


def start_server(
    data_dir: Path,
    *,
    database_url: str | None = None,
    keys: Keys | None = None,
    port: int | None = None,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    demo: bool = True,
) -> LiveServer:
    port = port or free_port()
    env = {
        **os.environ,
        "WITHDRAWAL_ENVIRONMENT": "test",
        "WITHDRAWAL_DEMO_CLINICIAN_PASSWORD": PASSWORDS["clinician"],
        "WITHDRAWAL_DEMO_PATIENT_PASSWORD": PASSWORDS["patient"],
        "WITHDRAWAL_CDS_ALLOWED_ISSUERS": ISSUER,
    }
    if keys is not None:
        env["WITHDRAWAL_CDS_JWKS"] = json.dumps(keys.jwks)
    if database_url:
        env["WITHDRAWAL_DATABASE_URL"] = database_url
    env.update(extra_env or {})
    log = data_dir / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "withdrawal", "serve", "--port", str(port), "--data-dir", str(data_dir)]
            + (["--demo"] if demo else [])
            + ["--workers", str(workers)],
            env=env,
            stdout=fh,
            stderr=fh,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return LiveServer(url, proc, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


def stop_server(server: LiveServer) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
