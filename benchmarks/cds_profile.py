"""Where a served CDS order-sign call's CPU goes: the server's segments timed inside the served process.

Runs the app under uvicorn in this process (start-up heap frozen, as ``withdrawal serve`` does) and sends
order-sign calls with the benchmark's Synthea record (``cds_order_sign.py``) from a client process, one
at a time. Each segment of the call (the body received and decoded, the JWT, the prefetch gathered, the
hook's answer, the jti and audit rows, the commit) is wrapped and timed in the thread's CPU time
(``time.thread_time``), so other load on the machine counts little; the rest is this process's CPU per
request (``getrusage``) less the segments: HTTP, FastAPI, the middleware, the hand-over to the pool
thread, freeing the request's objects.

Run: .venv/bin/python benchmarks/cds_profile.py [--shape full|template] [--requests 200] [--database-url URL]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cds_order_sign as bench  # noqa: E402 (the benchmark's record, prefetch and body)

_CLIENT = """
import httpx, json, sys, time
url, aud, folder = sys.argv[1:4]
body = open(folder + "/body", "rb").read()
tokens = json.load(open(folder + "/tokens"))
c = httpx.Client()
while True:
    try:
        if c.get(url + "/health").status_code == 200:
            break
    except httpx.HTTPError:
        time.sleep(0.2)
for i, t in enumerate(tokens):
    if i == 20:
        print("GO", flush=True)
        time.sleep(0.2)
    r = c.post(aud, content=body, headers={"Authorization": "Bearer " + t, "content-type": "application/json"})
    assert r.status_code == 200, r.text
    time.sleep(0.03)
time.sleep(0.2)
print("END", flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=("full", "template"), default="full")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = ap.parse_args()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    port = bench._free_port()
    url = f"http://127.0.0.1:{port}"
    folder = tempfile.mkdtemp()
    os.environ.update({
        "WITHDRAWAL_ENVIRONMENT": "test", "WITHDRAWAL_CDS_ALLOWED_ISSUERS": bench.ISSUER,
        "WITHDRAWAL_CDS_JWKS": json.dumps({"keys": [{**jwk, "kid": "bench1", "alg": "RS384", "use": "sig"}]}),
        "WITHDRAWAL_MAX_BODY_BYTES": str(16 * 2**20), "WITHDRAWAL_DATA_DIR": folder,
    })
    if args.database_url:
        os.environ["WITHDRAWAL_DATABASE_URL"] = args.database_url

    import starlette.requests
    import uvicorn

    from withdrawal.app import create_app
    from withdrawal.service import deps
    from withdrawal.service.cds import hooks, routes
    from withdrawal.service.config import Settings
    from withdrawal.service.workers import freeze_start_up_heap

    spent: collections.Counter[str] = collections.Counter()
    on = threading.Event()

    def timed(owner: Any, name: str, label: str) -> None:
        f: Callable[..., Any] = getattr(owner, name)

        def sync(*a: Any, **k: Any) -> Any:
            t = time.thread_time()
            try:
                return f(*a, **k)
            finally:
                if on.is_set():
                    spent[label] += time.thread_time() - t

        async def asynchronous(*a: Any, **k: Any) -> Any:
            t = time.thread_time()  # the event loop's thread: what runs on it meanwhile is this request's
            try:
                return await f(*a, **k)
            finally:
                if on.is_set():
                    spent[label] += time.thread_time() - t

        import inspect

        setattr(owner, name, asynchronous if inspect.iscoroutinefunction(f) else sync)

    timed(routes._JsonRequest, "refused", "body received, decoded, edge checks")
    timed(starlette.requests.Request, "body", "  of which the body received")
    timed(routes, "refusal", "  of which the edge checks")
    timed(routes, "verify", "JWT verified (RS384)")
    timed(routes, "assemble", "prefetch gathered (unread Observations passed over)")
    timed(hooks, "answer", "hooks.answer: FHIR reading, screen, cards")
    timed(routes, "_record", "jti and audit rows added (ORM, the jti flushed)")
    timed(deps.UnitOfWork, "commit", "unit of work committed (summaries hook, COMMIT)")

    app = create_app(Settings())
    freeze_start_up_heap()
    record = bench.synthea_record()
    prefetch, pid = bench.prefetch_of(record, template_only=args.shape == "template")
    Path(folder, "body").write_bytes(bench.order_sign_body(prefetch, pid))
    aud = f"{url}/cds-services/{bench.SERVICE}"
    now = int(time.time())
    claims = {"iss": bench.ISSUER, "sub": "profile", "aud": aud, "iat": now, "exp": now + 290}
    Path(folder, "tokens").write_text(json.dumps([
        jwt.encode({**claims, "jti": f"j{i}"}, key, algorithm="RS384", headers={"kid": "bench1"})
        for i in range(args.requests + 20)]))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning"))
    usage: dict[str, float] = {}

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def drive() -> None:
        client = subprocess.Popen([sys.executable, "-c", _CLIENT, url, aud, folder], stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None
        for line in client.stdout:
            if line.startswith("GO"):
                time.sleep(0.1)
                on.set()
                usage["start"] = cpu()
            elif line.startswith("END"):
                on.clear()
                usage["end"] = cpu()
                break
        client.wait()
        server.should_exit = True

    threading.Thread(target=drive, daemon=True).start()
    server.run()
    per = (usage["end"] - usage["start"]) / args.requests * 1000
    print(f"{args.shape} prefetch, {args.requests} calls one at a time: {per:.2f} ms of the process's CPU a call")
    outer = 0.0
    for label, seconds in spent.items():
        ms = seconds / args.requests * 1000
        outer += 0 if label.startswith("  ") else ms
        print(f"  {ms:6.2f} ms  {label}")
    print(f"  {per - outer:6.2f} ms  the rest: HTTP, FastAPI, middleware, hand-over to the pool thread, freeing")


if __name__ == "__main__":
    main()
