"""CDS Hooks order-sign latency and server CPU with a Synthea-sized patient record in prefetch.

Starts ``withdrawal serve`` itself (subprocess, free port, a JWK Set it generates; a temporary
SQLite data dir, or with ``--database postgresql`` a throwaway PostgreSQL cluster started from the
Debian binaries as the tests do), then sends ``POST /cds-services/withdrawal-order-sign`` at a fixed
rate (open loop: request i is sent at t0 + i/rate whether or not the earlier ones have been answered,
and its latency counts from that moment, so a slow server is not hidden by a waiting client). Each
request has its own RS384 JWT (fresh ``jti``), signed before the run starts, and a draft tramadol
50 mg q6h order.

Two prefetch shapes of the same patient:

* ``full``: every resource of the record a template's resource type covers, as an EHR that ignores
  the template's search parameters sends it (with the default record: about 1,400 Observations,
  100 MedicationRequests, 1.3 MB of JSON);
* ``template``: only what the templates ask for (Observations restricted to the template's codes).

It prints, per shape, the server's CPU time per request (user + system of the server process and its
children, from ``/proc``: robust to other load on the machine), p50 and p99 latency, and checks that
both shapes get the same cards.

The record is a Synthea FHIR R4 export (``--bundle path``, a Bundle of one patient); without one, a
Synthea-shaped record is generated (``tests/service/svc_synthea.py``, with Synthea's volume of
vital signs, labs, medication orders and procedures) and written to a temporary file first.

Run: .venv/bin/python benchmarks/cds_order_sign.py [--bundle synthea.json] [--requests 300] [--rate 10]
     [--database sqlite|postgresql]
Target (issue 19): server CPU <= 10 ms a request and p99 < 100 ms at 10 requests/s with the full
record; p99 < 25 ms with the template-only prefetch; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://ehr.example.org"
SERVICE = "withdrawal-order-sign"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ROOT = Path(__file__).resolve().parent.parent
HOOK_INSTANCE = "00000000-0000-4000-8000-000000000000"  # replaced per request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the record -------------------------------------------------------------------------------

_VITALS = (  # (LOINC, display, unit, typical value, spread, category)
    ("8302-2", "Body Height", "cm", 165.0, 10.0, "vital-signs"),
    ("29463-7", "Body Weight", "kg", 78.0, 12.0, "vital-signs"),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 28.0, 4.0, "vital-signs"),
    ("8867-4", "Heart rate", "/min", 72.0, 10.0, "vital-signs"),
    ("9279-1", "Respiratory rate", "/min", 14.0, 2.0, "vital-signs"),
    ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "{score}", 3.0, 2.0, "vital-signs"),
    ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 95.0, 15.0, "laboratory"),
    ("6299-2", "Urea nitrogen [Mass/volume] in Blood", "mg/dL", 14.0, 4.0, "laboratory"),
    ("38483-4", "Creatinine [Mass/volume] in Blood", "mg/dL", 1.0, 0.2, "laboratory"),
    ("49765-1", "Calcium [Mass/volume] in Blood", "mg/dL", 9.4, 0.4, "laboratory"),
    ("2947-0", "Sodium [Moles/volume] in Blood", "mmol/L", 140.0, 2.0, "laboratory"),
    ("6298-4", "Potassium [Moles/volume] in Blood", "mmol/L", 4.2, 0.3, "laboratory"),
    ("2069-3", "Chloride [Moles/volume] in Blood", "mmol/L", 104.0, 2.0, "laboratory"),
    ("20565-8", "Carbon dioxide, total [Moles/volume] in Blood", "mmol/L", 25.0, 2.0, "laboratory"),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 5.8, 0.5, "laboratory"),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 190.0, 20.0, "laboratory"),
    ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood "
     "by Creatinine-based formula (MDRD)", "mL/min/{1.73_m2}", 72.0, 8.0, "laboratory"),
)
_MEDS = (  # (RxNorm, SCD text, status, tablets q6h or None)
    ("314076", "lisinopril 10 MG Oral Tablet", "active", None),
    ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet", "active", None),
    ("312961", "simvastatin 20 MG Oral Tablet", "stopped", None),
    ("313782", "Acetaminophen 325 MG Oral Tablet", "completed", 2.0),
    ("310965", "Ibuprofen 200 MG Oral Tablet", "stopped", 1.0),
    ("308182", "Amoxicillin 250 MG Oral Capsule", "completed", None),
    ("849574", "Naproxen sodium 220 MG Oral Tablet", "stopped", 1.0),
    ("834061", "Penicillin V Potassium 250 MG Oral Tablet", "completed", None),
    ("1049621", "Acetaminophen 325 MG / oxyCODONE Hydrochloride 5 MG Oral Tablet", "stopped", 1.0),
)


def synthea_record(seed: int = 7, observations: int = 1340, medication_requests: int = 95,
                   procedures: int = 80) -> dict[str, Any]:
    """A one-patient Synthea-shaped transaction Bundle of about Synthea's volume.

    The skeleton (patient, encounters, claims, resolved conditions, malformed resources) is the tests'
    generator; added here: vital signs and metabolic panels (eGFR among them) over ten years, a medication
    history of ``medication_requests`` orders (two active), and procedures, shaped as Synthea writes them.
    """
    sys.path.insert(0, str(ROOT / "tests" / "service"))
    from svc_synthea import bundle, condition, medication_request, q6h

    rng = random.Random(seed)
    extra: list[dict[str, Any]] = []
    enc = [f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(120)]
    for i in range(observations):
        code, display, unit, value, spread, category = _VITALS[i % len(_VITALS)]
        when = f"20{14 + i * 10 // observations:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}T10:{i % 60:02d}:53-04:00"
        extra.append({
            "resourceType": "Observation",
            "meta": {"profile": [f"http://hl7.org/fhir/us/core/StructureDefinition/us-core-{category}"]},
            "status": "final",
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": category, "display": category}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "encounter": {"reference": rng.choice(enc)},
            "effectiveDateTime": when,
            "issued": when[:19] + ".394-04:00",
            "valueQuantity": {"value": round(value + rng.uniform(-spread, spread), 1), "unit": unit,
                              "system": UCUM, "code": unit},
        })
    rec, pid = bundle(seed, extra=extra)
    extra2: list[dict[str, Any]] = []
    for i in range(medication_requests):
        code, text, status, tablets = _MEDS[0] if i == 0 else _MEDS[1] if i == 1 else _MEDS[2 + i % (len(_MEDS) - 2)]
        status = status if i < 2 else ("stopped", "completed")[i % 2]
        year = 2014 + i * 10 // medication_requests
        extra2.append(medication_request(rng, pid, code, text, status, authored=f"{year}-03-04T10:00:00-05:00",
                                         dosage=q6h(tablets) if tablets else None))
    for i in range(procedures):
        extra2.append({
            "resourceType": "Procedure",
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "status": "completed",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "430193006",
                                 "display": "Medication Reconciliation (procedure)"}],
                     "text": "Medication Reconciliation (procedure)"},
            "subject": {"reference": f"urn:uuid:{pid}"},
            "encounter": {"reference": rng.choice(enc)},
            "performedPeriod": {"start": f"20{14 + i % 10}-05-0{1 + i % 9}T10:00:00-04:00",
                                "end": f"20{14 + i % 10}-05-0{1 + i % 9}T10:15:00-04:00"},
        })
    extra2.append(condition(rng, pid, "55822004", "Hyperlipidemia (disorder)"))
    extra2.append(condition(rng, pid, "82423001", "Chronic pain (finding)"))
    extra2.append(condition(rng, pid, "370143000", "Major depressive disorder (disorder)"))
    for r in extra2:
        rec["entry"].append({"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
                             "request": {"method": "POST", "url": r["resourceType"]}})
    return rec


# --- prefetch from a record -----------------------------------------------------------------------

def _template_codes() -> set[str]:
    """``system|code`` of the Observation template's ``code`` parameter."""
    from withdrawal.service.cds.prefetch import PREFETCH

    query = PREFETCH["observations"].split("?", 1)[1]
    return set(",".join(parse_qs(query)["code"]).split(","))


def prefetch_of(record: dict[str, Any], *, template_only: bool) -> tuple[dict[str, Any], str]:
    """(the prefetch an EHR would send for the record, the patient id).

    Each template's resource type goes to its key as a searchset Bundle; ``template_only`` keeps only the
    Observations the template's ``code`` parameter asks for."""
    keys = {"Condition": "conditions", "MedicationRequest": "medications", "MedicationStatement": "statements",
            "AllergyIntolerance": "allergies", "Observation": "observations", "Procedure": "procedures"}
    wanted = _template_codes()
    resources = [e["resource"] for e in record.get("entry", [])
                 if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    patient = next(r for r in resources if r.get("resourceType") == "Patient")
    pre: dict[str, Any] = {"patient": patient}
    for key in keys.values():
        pre[key] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    for r in resources:
        key = keys.get(str(r.get("resourceType")))
        if key is None:
            continue
        if key == "observations" and template_only:
            concept = r.get("code")
            codings = concept.get("coding") if isinstance(concept, dict) else None
            if not any(isinstance(c, dict) and f"{c.get('system')}|{c.get('code')}" in wanted for c in codings or []):
                continue
        pre[key]["entry"].append({"fullUrl": f"urn:uuid:{r.get('id')}", "resource": r, "search": {"mode": "match"}})
    for value in pre.values():
        if value.get("resourceType") == "Bundle":
            value["total"] = len(value["entry"])
    return pre, str(patient["id"])


def order_sign_body(prefetch: dict[str, Any], pid: str) -> bytes:
    """A draft tramadol 50 mg every 6 h for the patient, with the prefetch; ``HOOK_INSTANCE`` to replace."""
    draft = {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {"coding": [{"system": RX, "code": "835603",
                                                  "display": "tramadol hydrochloride 50 MG Oral Tablet"}]},
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 6, "periodUnit": "h"}},
                               "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}],
    }
    body = {
        "hook": "order-sign",
        "hookInstance": HOOK_INSTANCE,
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {"userId": "Practitioner/1", "patientId": pid,
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}},
        "prefetch": prefetch,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def counts(prefetch: dict[str, Any]) -> str:
    parts = [f"{len(v['entry'])} {k}" for k, v in prefetch.items() if isinstance(v, dict) and "entry" in v]
    return ", ".join(p for p in parts if not p.startswith("0 "))


# --- the server -----------------------------------------------------------------------------------

@contextmanager
def postgresql() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free port (as the tests start one); yields a database URL."""
    sys.path.insert(0, str(ROOT / "tests" / "service"))
    from conftest import pg_database, pg_server

    gen = pg_server.__wrapped__()  # type: ignore[attr-defined]
    server = next(gen)
    try:
        yield pg_database(server)
    finally:
        next(gen, None)


class Server:
    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
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
            "WITHDRAWAL_MAX_BODY_BYTES": str(16 * 2**20),
        }
        self.log = data_dir / "server.log"
        command = [sys.executable, "-m", "withdrawal", "serve", "--port", str(self.port), "--data-dir", str(data_dir)]
        command += ["--database-url", database_url] if database_url else []
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(command, env=env, stdout=fh, stderr=fh)
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
        return [jwt.encode({**claims, "jti": uuid.uuid4().hex}, self.key, algorithm="RS384", headers=headers)
                for _ in range(n)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _stat(path: Path) -> list[str] | None:
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its children; Linux ``/proc``, NaN elsewhere."""
    own = _stat(Path(f"/proc/{pid}/stat"))
    if own is None:
        return float("nan")
    total = int(own[11]) + int(own[12])
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(stat)
        if fields is not None and fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# --- the load -------------------------------------------------------------------------------------

def open_loop(url: str, body: bytes, tokens: list[str], rate: float) -> list[float]:
    """Request i at t0 + i/rate, each on a pool thread with its own keep-alive client; latencies in ms."""
    path = f"/cds-services/{SERVICE}"
    local = threading.local()
    errors: list[str] = []

    def send(i: int, at: float) -> float:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=60)
        content = body.replace(HOOK_INSTANCE.encode(), str(uuid.uuid4()).encode(), 1)
        wait = at - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        r = client.post(path, content=content, headers={"content-type": "application/json",
                                                         "authorization": f"Bearer {tokens[i]}"})
        if r.status_code != 200:
            errors.append(f"{r.status_code} {r.text[:200]}")
        return 1000 * (time.perf_counter() - at)

    t0 = time.perf_counter() + 0.2
    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = []
        for i in range(len(tokens)):
            at = t0 + i / rate
            pause = at - 0.05 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)  # submit just ahead of its time: the pool's queue holds no backlog
            futures.append(pool.submit(send, i, at))
        latencies = [f.result() for f in futures]
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return latencies


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _cards(server: Server, body: bytes) -> list[dict[str, Any]]:
    """The cards for the body, their random ``uuid`` fields left out (to compare answers)."""
    r = httpx.post(f"{server.url}/cds-services/{SERVICE}", content=body, timeout=60,
                   headers={"content-type": "application/json", "authorization": f"Bearer {server.tokens(1)[0]}"})
    r.raise_for_status()

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "uuid"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return list(strip(r.json()["cards"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, help="a Synthea FHIR R4 Bundle of one patient (default: generated)")
    ap.add_argument("--requests", type=int, default=300, help="requests per prefetch shape")
    ap.add_argument("--rate", type=float, default=10.0, help="requests per second (open loop)")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--cards", type=Path, help="write the cards of the full record (uuids left out) here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="withdrawal-bench-") as tmp:
        path = args.bundle
        if path is None:
            path = Path(tmp) / "synthea.json"
            path.write_text(json.dumps(synthea_record()))
        record = json.loads(path.read_text())
        shapes = {}
        for shape in ("full", "template"):
            pre, pid = prefetch_of(record, template_only=shape == "template")
            shapes[shape] = (order_sign_body(pre, pid), counts(pre))
        with postgresql() if args.database == "postgresql" else _nothing() as url:
            server = Server(Path(tmp), url)
            try:
                _run(args, server, shapes)
            finally:
                server.stop()


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _run(args: argparse.Namespace, server: Server, shapes: dict[str, tuple[bytes, str]]) -> None:
    answers = {shape: _cards(server, body) for shape, (body, _) in shapes.items()}
    if answers["full"] != answers["template"]:
        raise RuntimeError("the full record and the template-only prefetch got different cards")
    if args.cards:
        args.cards.write_text(json.dumps(answers["full"], indent=1, sort_keys=True) + "\n")
    cards = answers["full"]
    print(f"order-sign answer: {len(cards)} card(s): " + "; ".join(f"{c['indicator']}: {c['summary']}" for c in cards))
    print(f"{args.database}, {args.rate:g} requests/s open loop, {args.requests} requests per shape, "
          f"load average {os.getloadavg()[0]:.2f} at start ({os.cpu_count()} CPUs)")
    print(f"{'prefetch':>9} {'body MB':>8} {'server CPU ms/req':>18} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for shape, (body, what) in shapes.items():
        open_loop(server.url, body, server.tokens(args.warmup), args.rate)
        tokens = server.tokens(args.requests)
        c0 = cpu_seconds(server.proc.pid)
        lat = open_loop(server.url, body, tokens, args.rate)
        cpu = 1000 * (cpu_seconds(server.proc.pid) - c0) / args.requests
        print(f"{shape:>9} {len(body) / 1e6:>8.2f} {cpu:>18.2f} {_pct(lat, 0.5):>8.1f} {_pct(lat, 0.99):>8.1f} "
              f"{max(lat):>8.1f}   ({what})")
    print(f"load average {os.getloadavg()[0]:.2f} at end; target: full <= 10 ms CPU and p99 < 100 ms, "
          "template p99 < 25 ms")


if __name__ == "__main__":
    main()
