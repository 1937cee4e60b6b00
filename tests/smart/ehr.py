"""A small test EHR on loopback: SMART configuration, an OAuth 2 authorization server with
PKCE (S256, checked at the token endpoint) and a FHIR R4 endpoint serving Synthea-style data.

It auto-approves every authorization request it accepts, and checks what a real EHR checks:
the client id and its registered redirect URI, ``aud`` against its FHIR base, the launch id,
S256 and a well-formed challenge, the code once, the redirect URI again and the PKCE verifier
at the token endpoint, and the bearer token (unexpired, for the launched patient) on every
FHIR read. ``controls`` makes it misbehave on purpose for the refusal tests.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import random
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from svc_synthea import bundle, condition, medication_request, q6h  # noqa: E402

CLIENT_ID = "withdrawal-test-client"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def _records() -> dict[str, list[dict[str, Any]]]:
    """Two patients: on tramadol with sertraline (serotonergic: avoid), and one with epilepsy."""
    out: dict[str, list[dict[str, Any]]] = {}
    for seed, extra_of in (
        (11, lambda rng: [
            medication_request(rng, "x", "835603", "tramadol hydrochloride 50 MG Oral Tablet", "active",
                               dosage=q6h(1)),
            medication_request(rng, "x", "312940", "sertraline 50 MG Oral Tablet", "active"),
            condition(rng, "x", "F11.23", "Opioid dependence with withdrawal", system=ICD10),
        ]),
        (12, lambda rng: [
            condition(rng, "x", "G40.909", "Epilepsy, unspecified", system=ICD10),
        ]),
    ):
        rng = random.Random(seed)
        b, pid = bundle(seed, noise=30, extra=extra_of(rng), birth="1984-02-03" if seed == 11 else "1969-10-20")
        resources = [e["resource"] for e in b["entry"] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        for r in resources:
            # A FHIR server answers with relative references, not a transaction's urn:uuid ones.
            for key in ("subject", "patient"):
                ref = r.get(key)
                if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                    ref["reference"] = f"Patient/{pid}"
            if r.get("resourceType") == "Patient" and seed == 12:
                r["name"] = [{"family": "Roe", "given": ["John"]}]
                r["gender"] = "male"
        out[pid] = resources
    return out


class App:
    """The service under test, as the tests see it."""

    def __init__(self, base_url: str, data: Path) -> None:
        self.base_url, self.data = base_url, data

    def log(self) -> str:
        return (self.data / "server.log").read_text(errors="replace")


@dataclass
class Controls:
    """Switches for the refusal tests; ``reset()`` between tests."""

    expires_in: int = 3600
    issue_refresh: bool = True
    tamper_challenge: bool = False
    wrong_state: bool = False
    id_token_aud: str | None = None
    """Sign id_tokens for another audience (a forged or misdirected token)."""
    failing_search: str | None = None
    """A resource type whose searches answer HTTP 500 (a FHIR server failing mid-read)."""
    hidden_medications: frozenset[str] = frozenset()
    """Medication ids whose reads answer 404 (a reference the server cannot resolve)."""

    def reset(self) -> None:
        self.expires_in, self.issue_refresh, self.tamper_challenge, self.wrong_state = 3600, True, False, False
        self.id_token_aud = self.failing_search = None
        self.hidden_medications = frozenset()


@dataclass
class Ehr:
    base: str
    app_launch: str
    redirect_uris: tuple[str, ...]
    records: dict[str, list[dict[str, Any]]] = field(default_factory=_records)
    controls: Controls = field(default_factory=Controls)
    launches: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)
    """(what, outcome): discovery, authorize, token, jwks, refresh, fhir reads, in order."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    signing_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    practitioner: str = "Practitioner/dr-ehr-1"

    @property
    def fhir(self) -> str:
        return f"{self.base}/fhir"

    def patient_ids(self) -> list[str]:
        return list(self.records)

    def seen(self, what: str) -> list[str]:
        return [outcome for w, outcome in self.events if w == what]

    def log(self, what: str, outcome: str) -> None:
        with self.lock:
            self.events.append((what, outcome))

    # --- pages -----------------------------------------------------------------------------

    async def ehr_page(self, request: Request) -> Response:
        """The EHR's chart with the app in an iframe, launched on ``?patient=`` (EHR launch); ``app_url`` and
        ``app_context`` as a CDS card's smart link gives them (the appContext comes back in the token response)."""
        q = request.query_params
        pid = q.get("patient") or self.patient_ids()[0]
        launch = secrets.token_urlsafe(16)
        self.launches[launch] = (pid, q.get("app_context"))
        iss = q.get("iss") or self.fhir
        src = f"{q.get('app_url') or self.app_launch}?{urlencode({'iss': iss, 'launch': launch})}"
        return HTMLResponse(
            "<!doctype html><html lang='en'><head><title>Test EHR</title></head><body style='margin:0;font-family:sans-serif'>"
            "<header style='background:#3b1f5e;color:#fff;padding:8px 16px'><strong>Test EHR</strong> · chart of "
            f"patient {html.escape(pid[:8])}…</header>"
            f"<iframe id='app' title='withdrawal' src='{html.escape(src)}' style='width:100%;height:760px;border:0'>"
            "</iframe></body></html>"
        )

    async def configuration(self, _: Request) -> Response:
        self.log("discovery", "ok")
        return JSONResponse({
            "issuer": self.base,
            "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token",
            "jwks_uri": f"{self.base}/jwks",
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["launch", "launch/patient", "openid", "fhirUser", "patient/*.rs", "online_access"],
            "response_types_supported": ["code"],
            "capabilities": ["launch-ehr", "launch-standalone", "client-public", "context-ehr-patient",
                             "context-standalone-patient", "permission-patient", "permission-v2", "sso-openid-connect"],
        })

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        redirect = q.get("redirect_uri", "")
        if q.get("client_id") != CLIENT_ID or redirect not in self.redirect_uris:
            self.log("authorize", "bad client or redirect_uri")
            return HTMLResponse("unknown client or redirect_uri", status_code=400)
        state = q.get("state", "")

        def back(**params: str) -> Response:
            return RedirectResponse(f"{redirect}?{urlencode({**params, 'state': state})}", status_code=302)

        scopes = set(q.get("scope", "").split())
        if q.get("response_type") != "code" or not state:
            return back(error="invalid_request")
        if q.get("aud") != self.fhir:
            self.log("authorize", "bad aud")
            return back(error="invalid_request")
        challenge = q.get("code_challenge", "")
        if q.get("code_challenge_method") != "S256" or not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge):
            self.log("authorize", "no S256")
            return back(error="invalid_request")
        app_context = None
        if "launch" in scopes:
            launched = self.launches.pop(q.get("launch", ""), None)
            if launched is None:
                self.log("authorize", "bad launch")
                return back(error="invalid_request")
            pid, app_context = launched
        elif "launch/patient" in scopes:
            pid = self.patient_ids()[0]  # the patient picker, answered at once
        else:
            return back(error="invalid_scope")
        if not {"openid", "fhirUser", "patient/*.rs"} <= scopes:
            return back(error="invalid_scope")
        code = secrets.token_urlsafe(24)
        if self.controls.tamper_challenge:
            challenge = challenge[::-1]
        self.codes[code] = {"challenge": challenge, "redirect_uri": redirect, "patient": pid,
                            "scope": " ".join(sorted(scopes)), "app_context": app_context}
        self.log("authorize", "ok")
        if self.controls.wrong_state:
            state = secrets.token_urlsafe(32)
        return back(code=code)

    def _issue(self, pid: str, scope: str) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        self.access[access] = {"patient": pid, "exp": time.time() + self.controls.expires_in}
        out: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.controls.expires_in,
                               "scope": scope, "patient": pid, "need_patient_banner": False}
        if self.controls.issue_refresh:
            rt = secrets.token_urlsafe(32)
            self.refresh[rt] = pid
            out["refresh_token"] = rt
        return out

    async def token(self, request: Request) -> Response:
        form = await request.form()
        grant = form.get("grant_type")
        if grant == "refresh_token":
            pid = self.refresh.pop(str(form.get("refresh_token", "")), None)
            if pid is None or form.get("client_id") != CLIENT_ID:
                self.log("refresh", "invalid_grant")
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            self.log("refresh", "ok")
            return JSONResponse(self._issue(pid, "patient/*.rs"))
        if grant != "authorization_code":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        entry = self.codes.pop(str(form.get("code", "")), None)
        if entry is None or form.get("client_id") != CLIENT_ID or form.get("redirect_uri") != entry["redirect_uri"]:
            self.log("token", "invalid_grant")
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = str(form.get("code_verifier", ""))
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if not re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier) or not secrets.compare_digest(
            computed, entry["challenge"]
        ):
            self.log("token", "bad verifier")
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verification failed"},
                                status_code=400)
        self.log("token", "ok")
        issued = self._issue(entry["patient"], entry["scope"])
        if entry["app_context"] is not None:
            issued["appContext"] = entry["app_context"]
        if "openid" in entry["scope"].split():
            now = int(time.time())
            claims = {"iss": self.base, "sub": "dr-ehr-1", "aud": self.controls.id_token_aud or CLIENT_ID,
                      "iat": now, "exp": now + 300, "fhirUser": f"{self.fhir}/{self.practitioner}"}
            issued["id_token"] = jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": "ehr-1"})
        return JSONResponse(issued)

    # --- FHIR --------------------------------------------------------------------------------

    def _bearer(self, request: Request) -> str | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        grant = self.access.get(value) if scheme.lower() == "bearer" else None
        if grant is None or grant["exp"] <= time.time():
            self.log("fhir", "401")
            return None
        return str(grant["patient"])

    @staticmethod
    def _unauthorized() -> Response:
        return JSONResponse({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})

    async def patient(self, request: Request) -> Response:
        pid = self._bearer(request)
        if pid is None:
            return self._unauthorized()
        if request.path_params["pid"] != pid:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=403)
        self.log("fhir", "Patient")
        return JSONResponse(next(r for r in self.records[pid] if r["resourceType"] == "Patient"),
                            media_type="application/fhir+json")

    async def medication(self, request: Request) -> Response:
        """A Medication read (searches answer orders without the Medications they reference)."""
        pid = self._bearer(request)
        if pid is None:
            return self._unauthorized()
        mid = request.path_params["mid"]
        found = next((r for r in self.records[pid] if r["resourceType"] == "Medication" and r.get("id") == mid), None)
        self.log("fhir", f"Medication/{mid}" + ("" if found else " 404"))
        if found is None or mid in self.controls.hidden_medications:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
        return JSONResponse(found, media_type="application/fhir+json")

    async def search(self, request: Request) -> Response:
        rtype = request.path_params["rtype"]
        if rtype not in {"Condition", "MedicationRequest", "MedicationStatement", "AllergyIntolerance",
                         "Observation"}:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
        pid = self._bearer(request)
        if pid is None:
            return self._unauthorized()
        if request.query_params.get("patient") != pid:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=403)
        if rtype == self.controls.failing_search:
            self.log("fhir", f"{rtype} 500")
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=500)
        self.log("fhir", rtype)
        found = [r for r in self.records[pid] if r["resourceType"] == rtype]
        return JSONResponse({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                             "entry": [{"fullUrl": f"{self.fhir}/{rtype}/{r.get('id')}", "resource": r,
                                        "search": {"mode": "match"}} for r in found]},
                            media_type="application/fhir+json")

    async def jwks(self, _: Request) -> Response:
        self.log("jwks", "ok")
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.signing_key.public_key()))
        return JSONResponse({"keys": [{**public, "kid": "ehr-1", "alg": "RS256", "use": "sig"}]})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/jwks", self.jwks),
            Route("/", self.ehr_page),
            Route("/fhir/.well-known/smart-configuration", self.configuration),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
            Route("/fhir/Patient/{pid}", self.patient),
            Route("/fhir/Medication/{mid}", self.medication),
            Route("/fhir/{rtype}", self.search),
        ])
