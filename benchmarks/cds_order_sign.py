"""Speed of CDS Hooks order-sign against a trivial endpoint of the same server, same run.

Starts ``withdrawal serve`` itself (subprocess, free port, temporary SQLite data dir, a
JWK Set it generates), warms up, then alternates rounds of ``GET /health`` (trivial)
and ``POST /cds-services/withdrawal-order-sign`` (a valid JWT with a fresh ``jti`` per
request, a draft tramadol order, a realistic prefetch: patient, conditions, active and
stopped medications, an allergy, eGFR) with a fixed request count and concurrency
(threads, one keep-alive httpx client each). Prints req/s, p50 and p99 for both, the
server process's CPU time per request (from ``/proc``: shows which side of the loopback
was the bottleneck) and the ratio order-sign / trivial; the summary is the median over
the rounds.

JWTs and request bodies are made before a round starts, so the client's signing is not
measured; every order-sign request is for a different patient (id and age).

Run: .venv/bin/python benchmarks/cds_order_sign.py [--requests 1000] [--concurrency 4] [--rounds 3] [--workers 1]
``--floor`` runs the same app with the clinical work stubbed out (``cds_floor_app.py``): the
most any clinical logic could reach in this stack.
Target (issue 5): ratio >= 0.70 and order-sign p99 < 25 ms on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://ehr.example.org"
SERVICE = "withdrawal-order-sign"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bundle(*res: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in res]}


def _med(pid: str, rid: str, code: str, display: str, status: str = "active", **kw: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {"coding": [{"system": RX, "code": code, "display": display}]},
        **kw,
    }


def _condition(pid: str, cid: str, code: str, display: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
    }


def order_sign_body(seq: int = 0) -> dict[str, Any]:
    """A draft tramadol 50 mg every 6 h for a patient with a typical primary-care record.

    ``seq`` varies the patient (id, age) so that no two requests of a round are alike.
    """
    pid = f"p{seq}"
    draft = _med(
        pid,
        "draft-1",
        "835603",
        "tramadol hydrochloride 50 MG Oral Tablet",
        status="draft",
        dosageInstruction=[
            {
                "timing": {"repeat": {"frequency": 1, "period": 6, "periodUnit": "h"}},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
            }
        ],
    )
    birth = f"{1940 + seq % 60}-{1 + seq % 12:02d}-{1 + seq % 28:02d}"
    patient = {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": ("female", "male")[seq % 2]}
    conditions = _bundle(
        _condition(pid, "c1", "I10", "Essential (primary) hypertension"),
        _condition(pid, "c2", "F32.9", "Major depressive disorder, single episode, unspecified"),
        _condition(pid, "c3", "E11.9", "Type 2 diabetes mellitus without complications"),
        _condition(pid, "c4", "M54.50", "Low back pain, unspecified"),
    )
    medications = _bundle(
        _med(pid, "m1", "36437", "sertraline"),
        _med(pid, "m2", "29046", "lisinopril"),
        _med(pid, "m3", "6809", "metformin"),
        _med(pid, "m4", "25480", "gabapentin"),
        _med(pid, "m5", "161", "acetaminophen", status="stopped"),
    )
    allergies = _bundle(
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "patient": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": RX, "code": "7980", "display": "penicillin G"}]},
        }
    )
    observations = _bundle(
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3", "display": "eGFR"}]},
            "valueQuantity": {"value": 72, "unit": "mL/min/{1.73_m2}"},
        }
    )
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {"userId": "Practitioner/1", "patientId": pid, "draftOrders": _bundle(draft)},
        "prefetch": {
            "patient": patient,
            "conditions": conditions,
            "medications": medications,
            "statements": None,
            "allergies": allergies,
            "observations": observations,
        },
    }


class Server:
    def __init__(self, data_dir: Path, workers: int = 1, floor: bool = False) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwks = {"keys": [{**jwk, "kid": "bench1", "alg": "RS384", "use": "sig"}]}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "WITHDRAWAL_ENVIRONMENT": "test",
            "WITHDRAWAL_CDS_JWKS": json.dumps(jwks),
            "WITHDRAWAL_CDS_ALLOWED_ISSUERS": ISSUER,
        }
        self.log = data_dir / "server.log"
        command = [sys.executable, "-m", "withdrawal", "serve", "--port", str(self.port), "--data-dir", str(data_dir)]
        command += ["--workers", str(workers)] if workers > 1 else []
        if floor:  # the same app, clinical work stubbed out (cds_floor_app.py)
            env["WITHDRAWAL_DATA_DIR"] = str(data_dir)
            command = [sys.executable, "-m", "uvicorn", "--factory", "cds_floor_app:app", "--no-access-log"]
            command += ["--app-dir", str(Path(__file__).resolve().parent), "--port", str(self.port)]
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                command,
                env=env,
                stdout=fh,
                stderr=fh,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.log.read_text()[-2000:])
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start: " + self.log.read_text()[-2000:])

    def tokens(self, n: int) -> list[str]:
        aud = f"{self.url}/cds-services/{SERVICE}"
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "bench", "aud": aud, "iat": now, "exp": now + 300}  # at most 5 min ahead
        headers = {"kid": "bench1", "typ": "JWT"}
        return [
            jwt.encode({**claims, "jti": uuid.uuid4().hex}, self.key, algorithm="RS384", headers=headers)
            for _ in range(n)
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


Request = Callable[[httpx.Client, int], httpx.Response]


def run_load(url: str, send: Request, n: int, concurrency: int) -> tuple[float, list[float]]:
    """Send requests 0..n-1 over ``concurrency`` threads; (req/s, latencies in ms)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))
    clients = [httpx.Client(base_url=url, timeout=30) for _ in range(concurrency)]
    barrier = threading.Barrier(concurrency + 1)

    def worker(client: httpx.Client) -> None:
        mine: list[float] = []
        barrier.wait()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            r = send(client, i)
            mine.append(1000 * (time.perf_counter() - t0))
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.close()
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return n / elapsed, latencies


def _stat(path: Path) -> list[str] | None:
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its children (the workers); Linux ``/proc``, NaN elsewhere."""
    own = _stat(Path(f"/proc/{pid}/stat"))
    if own is None:
        return float("nan")
    total = int(own[11]) + int(own[12])
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(stat)
        if fields is not None and fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _line(label: str, cells: list[Any]) -> str:
    out = [f"{label:>6}"]
    for c in cells:
        out.append(f"{c:>14}" if isinstance(c, str) else f"{c:>14.2f}" if c < 10 else f"{c:>14.1f}")
    return " ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="requests per endpoint per round")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--workers", type=int, default=1, help="server worker processes (withdrawal serve --workers)")
    ap.add_argument(
        "--floor", action="store_true", help="clinical work stubbed out: the ceiling of the ratio (cds_floor_app.py)"
    )
    args = ap.parse_args()

    headers = {"content-type": "application/json"}
    with tempfile.TemporaryDirectory(prefix="withdrawal-bench-") as tmp:
        server = Server(Path(tmp), args.workers, args.floor)
        try:
            path = f"/cds-services/{SERVICE}"
            with httpx.Client(base_url=server.url, timeout=30) as c:
                auth = {"authorization": "Bearer " + server.tokens(1)[0]}
                r = c.post(path, content=json.dumps(order_sign_body()).encode(), headers={**headers, **auth})
                r.raise_for_status()
                cards = r.json()["cards"]
            print(f"order-sign answer: {len(cards)} card(s): " + "; ".join(c["indicator"] for c in cards))
            if args.floor:
                print("FLOOR: the clinical work is stubbed out (no FHIR mapping, no screen, no cards)")

            def trivial(client: httpx.Client, _: int) -> httpx.Response:
                return client.get("/health")

            def sign_with(tokens: list[str], offset: int) -> Request:
                """Request i: its own JWT (fresh ``jti``) and its own patient."""
                bodies = [json.dumps(order_sign_body(offset + i)).encode() for i in range(len(tokens))]

                def send(client: httpx.Client, i: int) -> httpx.Response:
                    return client.post(
                        path, content=bodies[i], headers={**headers, "authorization": f"Bearer {tokens[i]}"}
                    )

                return send

            run_load(server.url, trivial, args.warmup, args.concurrency)
            run_load(server.url, sign_with(server.tokens(args.warmup), 0), args.warmup, args.concurrency)

            print(
                f"{args.requests} requests per endpoint per round, concurrency {args.concurrency}, "
                f"{args.workers} server worker(s), loopback"
            )
            print(
                _line(
                    "round",
                    ["trivial req/s", "p50 ms", "p99 ms", "cpu ms/req", "sign req/s", "p50 ms", "p99 ms", "cpu ms/req"]
                    + ["ratio"],
                )
            )
            rows: list[list[float]] = []
            pid = server.proc.pid
            for rnd in range(args.rounds):
                sign = sign_with(server.tokens(args.requests), (rnd + 1) * args.requests)
                c0 = cpu_seconds(pid)
                t_rps, t_lat = run_load(server.url, trivial, args.requests, args.concurrency)
                c1 = cpu_seconds(pid)
                s_rps, s_lat = run_load(server.url, sign, args.requests, args.concurrency)
                c2 = cpu_seconds(pid)
                t_cpu, s_cpu = 1000 * (c1 - c0) / args.requests, 1000 * (c2 - c1) / args.requests
                row = [t_rps, _pct(t_lat, 0.5), _pct(t_lat, 0.99), t_cpu]
                row += [s_rps, _pct(s_lat, 0.5), _pct(s_lat, 0.99), s_cpu]
                rows.append([*row, s_rps / t_rps])
                print(_line(str(rnd + 1), rows[-1]))
            med = [statistics.median(r[i] for r in rows) for i in range(9)]
            print(_line("median", med))
            print(
                f"trivial /health: {med[0]:.0f} req/s, p50 {med[1]:.1f} ms, p99 {med[2]:.1f} ms, "
                f"server CPU {med[3]:.2f} ms/req | order-sign: {med[4]:.0f} req/s, p50 {med[5]:.1f} ms, "
                f"p99 {med[6]:.1f} ms, server CPU {med[7]:.2f} ms/req | ratio {med[8]:.2f} "
                f"(target >= 0.70, p99 < 25 ms)"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
