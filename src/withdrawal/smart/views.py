"""The SMART pages: ``/smart/launch`` (EHR and standalone launch), ``/smart/callback`` (the
redirect back), and the read-only assessment with its two actions, reload and save.

No cookie carries the session: after the token exchange the page holds an unguessable,
short-lived session token bound to this launch (a hidden form field, posted back by the
page's own forms, never in a URL). The launch itself is bound to the browser by a
partitioned cookie (CHIPS: ``SameSite=None; Secure; Partitioned``), which browsers keep
inside an EHR iframe where third-party cookies are blocked. Framing is allowed only for the
configured EHR origins (CSP ``frame-ancestors``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from withdrawal import __version__
from withdrawal.assess import assess_patient
from withdrawal.errors import WithdrawalError
from withdrawal.fhir import FhirPatient
from withdrawal.intake import read_fhir_record
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.service.deps import KbDep, UnitOfWork, UowDep
from withdrawal.service.models import Patient, utcnow
from withdrawal.smart.client import (
    Endpoints,
    FhirReader,
    SessionExpired,
    SmartError,
    authorization_url,
    check_patient_id,
    discover,
    exchange_code,
    fhir_user,
    oauth_client,
)
from withdrawal.smart.config import EHR_SCOPE, STANDALONE_SCOPE, SmartSettings, normalise_iss
from withdrawal.smart.store import Launch, SmartSession, Store, digest

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

BIND_COOKIE = "wd_smart_bind"
TOKEN_FIELD = "smart_session"
LAUNCH_PARAM = re.compile(r"[\x21-\x7e]{1,500}")
CODE_PARAM = re.compile(r"[\x21-\x7e]{1,2000}")
STATE_PARAM = re.compile(r"[A-Za-z0-9_\-]{20,100}")
def install(app: FastAPI, settings: SmartSettings | None = None) -> None:
    """Add the SMART pages to the app (idempotent); settings from ``WITHDRAWAL_SMART_*`` by default."""
    if getattr(app.state, "smart_installed", False):
        return
    app.state.smart_installed = True
    smart = settings or SmartSettings()
    app.state.smart_settings = smart
    app.state.smart_store = Store(smart.launch_ttl_s, smart.session_ttl_s)
    if not hasattr(app.state, "smart_transport"):
        app.state.smart_transport = None
    app.include_router(router)


def _settings(request: Request) -> SmartSettings:
    s: SmartSettings = request.app.state.smart_settings
    return s


def _store(request: Request) -> Store:
    s: Store = request.app.state.smart_store
    return s


def _transport(request: Request) -> httpx.AsyncBaseTransport | None:
    t: httpx.AsyncBaseTransport | None = request.app.state.smart_transport
    return t


def headers(settings: SmartSettings) -> dict[str, str]:
    """The SMART pages' headers: framing only by the configured EHR origins, no referrer (the
    callback URL holds the one-time code), nothing cached."""
    ancestors = " ".join(("'self'", *settings.frame_ancestors))
    return {
        "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
            f"base-uri 'none'; frame-ancestors {ancestors}; form-action 'self'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    kb: KnowledgeBase = request.app.state.kb
    context = {
        "crisis": sorted(kb.care.resources, key=lambda r: r.order),
        "version": __version__,
        "sources": kb.sources,
        "level_text": kb.tramadol.verdict_headings,
        **ctx,
    }
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(headers(_settings(request)))
    return response


def refuse(request: Request, err: SmartError) -> HTMLResponse:
    return _render(request, "smart_error.html", {"title": "Cannot open from the EHR", "message": err.message,
                                                 "code": err.code}, status=err.status)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def redirect_uri(request: Request) -> str:
    return _settings(request).redirect_uri or f"{_base(request)}/smart/callback"


def launch_url(request: Request) -> str:
    return _settings(request).launch_url or f"{_base(request)}/smart/launch"


def smart_links(request: Request, patient_id: str) -> list[dict[str, Any]]:
    """A CDS card's ``smart`` link to open the app on the card's patient (none while SMART is off)."""
    smart: SmartSettings | None = getattr(request.app.state, "smart_settings", None)
    if smart is None or not smart.enabled:
        return []
    return [{"label": "Open the withdrawal assessment", "url": launch_url(request), "type": "smart",
             "appContext": f"patient={quote(patient_id, safe='')}"}]


def _secure_cookie(request: Request) -> bool:
    """Whether the binding cookie can be ``Secure; SameSite=None; Partitioned`` (what a cross-site iframe needs).

    Behind a TLS-terminating proxy the request arrives over http, but the registered redirect URI
    (``WITHDRAWAL_SMART_REDIRECT_URI``) is https; Chromium accepts Secure cookies from loopback over http.
    """
    return (request.url.scheme == "https" or redirect_uri(request).startswith("https://")
            or (request.url.hostname or "") in {"127.0.0.1", "localhost", "::1"})


def _binder(request: Request) -> tuple[str, bool]:
    """This browser's launch binding (a random value in a partitioned cookie) and whether it is new."""
    existing = request.cookies.get(BIND_COOKIE)
    if existing and re.fullmatch(r"[A-Za-z0-9_\-]{40,60}", existing):
        return existing, False
    return secrets.token_urlsafe(32), True


# --- launch ---------------------------------------------------------------------------------


@router.get("/smart/launch", response_class=HTMLResponse)
async def launch(request: Request) -> Response:
    """EHR launch (``iss`` and ``launch``) or standalone launch (``iss`` only, or none with one EHR)."""
    settings = _settings(request)
    if not settings.enabled:
        return refuse(request, SmartError(404, "SMART launch is not configured on this server.", code="off"))
    q = request.query_params
    iss, launch_id = q.get("iss"), q.get("launch")
    if iss is None and launch_id is None and len(settings.issuers) == 1:
        iss = settings.issuers[0]
    if not iss or len(iss) > 500:
        return refuse(request, SmartError(400, "The launch did not name the EHR (iss).", code="iss"))
    if launch_id is not None and not LAUNCH_PARAM.fullmatch(launch_id):
        return refuse(request, SmartError(400, "The launch parameter is not usable.", code="launch"))
    try:
        found = await discover(iss, settings, _transport(request))
    except SmartError as err:
        return refuse(request, err)
    iss = normalise_iss(iss)
    scope = EHR_SCOPE if launch_id is not None else STANDALONE_SCOPE
    binder, new = _binder(request)
    verifier = secrets.token_urlsafe(64)  # 86 characters of the unreserved set (RFC 7636: 43-128)
    target = redirect_uri(request)
    try:
        state = _store(request).add_launch(Launch(
            iss=iss, launch=launch_id, verifier=verifier, binder_digest=digest(binder),
            authorization_endpoint=found.authorization_endpoint, token_endpoint=found.token_endpoint,
            scope=scope, redirect_uri=target, issuer=found.issuer, jwks_uri=found.jwks_uri))
    except OverflowError:
        return refuse(request, SmartError(503, "Too many launches in progress; try again shortly.", code="busy"))
    client = oauth_client(settings, scope=scope, redirect_uri=target, token_endpoint=found.token_endpoint)
    try:
        url = authorization_url(client, found.authorization_endpoint, state=state, verifier=verifier, iss=iss,
                                launch=launch_id)
    finally:
        await client.aclose()
    response = RedirectResponse(url, status_code=302)
    response.headers.update(headers(settings))
    if new:
        # NOTE: written by hand: Starlette's set_cookie takes ``partitioned`` only on Python 3.14.
        secure = "; Secure; SameSite=None; Partitioned" if _secure_cookie(request) else "; SameSite=Lax"
        response.headers.append(
            "set-cookie", f"{BIND_COOKIE}={binder}; Max-Age={settings.launch_ttl_s * 4}; Path=/smart/; HttpOnly{secure}"
        )
    return response


@router.get("/smart/callback", response_class=HTMLResponse)
async def callback(request: Request, uow: UowDep, kb: KbDep) -> Response:
    """The EHR's redirect back: state checked (single use, bound to this browser), code exchanged with
    the PKCE verifier, then the launched patient's assessment from the EHR's data."""
    settings = _settings(request)
    if not settings.enabled:
        return refuse(request, SmartError(404, "SMART launch is not configured on this server.", code="off"))
    q = request.query_params
    state = q.get("state") or ""
    taken = _store(request).take_launch(state) if STATE_PARAM.fullmatch(state) else None
    if taken is None:
        return refuse(request, SmartError(400, "This sign-in does not match a launch from this browser (unknown, "
                                               "used or expired state). Open the app again from the EHR.",
                                          code="state"))
    if not taken.bound_to(request.cookies.get(BIND_COOKIE)):
        return refuse(request, SmartError(400, "This sign-in was started in another browser. Open the app again "
                                               "from the EHR.", code="state"))
    if q.get("error"):
        err = q["error"] if re.fullmatch(r"[a-z_]{1,40}", q["error"]) else "error"
        return refuse(request, SmartError(400, f"The EHR did not authorise the app ({err}).", code="denied"))
    code = q.get("code") or ""
    if not CODE_PARAM.fullmatch(code):
        return refuse(request, SmartError(400, "The EHR's redirect carried no authorization code.", code="code"))
    keep = KeepToken()
    client = oauth_client(settings, scope=taken.scope, redirect_uri=taken.redirect_uri,
                          token_endpoint=taken.token_endpoint, update_token=keep, transport=_transport(request))
    try:
        token = await exchange_code(client, taken.token_endpoint, code=code, verifier=taken.verifier)
        patient = check_patient_id(token.get("patient"))
        if not isinstance(token.get("access_token"), str):
            raise SmartError(400, "The EHR's token response has no access token.", code="token")
        app_context = _text(token.get("appContext"))
        named = _context_patient(app_context)
        if named is not None and named != patient:
            # The CDS card that launched the app was about another patient than the EHR put in context.
            raise SmartError(409, "The EHR opened the app on another patient than the card it was opened from. "
                                  "Open the app again from this patient's chart.", code="context")
        who = await fhir_user(token.get("id_token"), Endpoints(taken.authorization_endpoint, taken.token_endpoint,
                                                                (), taken.issuer, taken.jwks_uri),
                              settings, _transport(request))
        sess = SmartSession(iss=taken.iss, patient=patient, token=token, token_endpoint=taken.token_endpoint,
                            scope=taken.scope, app_context=app_context, fhir_user=who)
        keep.sess = sess
        page_token = _store(request).add_session(sess)
        record = await _read(request, kb, sess, client, keep, purpose="assessed")
        return _assessment(request, uow, kb, sess, page_token, record)
    except SmartError as err:
        _audit_refusal(uow, taken.iss, err)
        return refuse(request, err)
    except OverflowError:
        return refuse(request, SmartError(503, "Too many SMART sessions; try again shortly.", code="busy"))
    finally:
        await client.aclose()


def _text(v: object) -> str | None:
    return v[:500] if isinstance(v, str) else None


def _context_patient(app_context: str | None) -> str | None:
    """The patient a CDS card's ``appContext`` (``patient=<id>``, from :func:`smart_links`) names."""
    if app_context is None:
        return None
    for part in app_context.split("&"):
        key, _, value = part.partition("=")
        if key == "patient":
            return unquote(value)
    return None


def _actor(iss: str, user: str | None = None) -> str:
    """The audit log's actor: the clinician the EHR's verified id_token names, at that EHR; else the EHR."""
    return (f"smart:{user}@{iss}" if user else f"smart:{iss}")[:200]


def _audit_refusal(uow: UnitOfWork, iss: str, err: SmartError) -> None:
    """A refused launch or action, audited however the request ends."""
    uow.refuse(actor=_actor(iss), action="smart_launch", resource="smart", outcome=f"refused:{err.code}"[:20])


@dataclass
class KeepToken:
    """Authlib's ``update_token`` hook: a token the client refreshed replaces the session's (this session
    only), whatever the request does next, so a rotated refresh token is never lost."""

    sess: SmartSession | None = None
    """None until the callback has made the session (nothing refreshes before the code is exchanged)."""
    refreshed: bool = False

    async def __call__(self, token: dict[str, Any], **_: Any) -> None:
        self.refreshed = True
        if self.sess is not None:
            self.sess.token = dict(token)


@dataclass
class EhrRecord:
    """The launched patient's record as read from the EHR once in this request, and mapped."""

    resources: list[dict[str, Any]]
    mapped: FhirPatient
    unread: list[str] = field(default_factory=list)
    refreshed: bool = False

    @property
    def patient_resource(self) -> dict[str, Any]:
        return self.resources[0]


async def _read(request: Request, kb: KnowledgeBase, sess: SmartSession, client: Any, keep: KeepToken, *,
                purpose: str) -> EhrRecord:
    """Read the record with the access token (refreshed if expired) and map it; ``purpose`` names the
    action a record that cannot be mapped is refused for ("assessed", "saved")."""
    reader = FhirReader(client, sess.iss, _settings(request))
    resources = await reader.record(sess.patient)
    try:
        mapped = read_fhir_record(resources, kb, patient_id=sess.patient)
    except WithdrawalError as exc:
        raise SmartError(422, f"The EHR's record cannot be {purpose}: {exc}", code="record") from exc
    return EhrRecord(resources, mapped, reader.unread, keep.refreshed or reader.refreshed)


def _assessment(request: Request, uow: UnitOfWork, kb: KnowledgeBase, sess: SmartSession, page_token: str,
                record: EhrRecord, *, saved: int | None = None) -> HTMLResponse:
    """Assess the record read in this request and render it read-only."""
    mapped = record.mapped
    try:
        result = assess_patient(mapped.patient, kb)
    except WithdrawalError as exc:
        raise SmartError(422, f"The EHR's record cannot be assessed: {exc}", code="record") from exc
    uow.audit(actor=_actor(sess.iss, sess.fhir_user), action="read", resource="smart_patient",
              resource_id=f"Patient/{sess.patient}"[:60])
    patient_res = record.patient_resource
    return _render(request, "smart_result.html", {
        "a": result.to_dict(), "name": _display_name(patient_res, sess.patient), "iss": sess.iss,
        "age": mapped.patient.age_years, "sex": mapped.patient.sex,
        "birth": patient_res.get("birthDate") if isinstance(patient_res.get("birthDate"), str) else None,
        "skipped": mapped.skipped, "unread": record.unread, "session_field": TOKEN_FIELD, "session_token": page_token,
        "refreshed": record.refreshed, "saved": saved, "who": sess.fhir_user,
    })


def _display_name(res: dict[str, Any], fallback: str) -> str:
    names = res.get("name")
    if isinstance(names, list):
        for n in names:
            if isinstance(n, dict):
                given = " ".join(g for g in n.get("given") or [] if isinstance(g, str))
                family = n.get("family") if isinstance(n.get("family"), str) else ""
                text = n.get("text") if isinstance(n.get("text"), str) else f"{given} {family}".strip()
                if text:
                    return str(text)[:200]
    return f"EHR patient {fallback}"


# --- the page's own actions: reload from the EHR, save -------------------------------------------


async def _posted_session(request: Request) -> tuple[str, SmartSession]:
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and origin.rstrip("/") != _base(request):
        raise SmartError(403, "This form came from another site.", code="origin")
    form = await request.form()
    token = form.get(TOKEN_FIELD)
    sess = _store(request).session(token) if isinstance(token, str) and 20 <= len(token) <= 100 else None
    if sess is None:
        raise SmartError(401, "This EHR session has ended or expired. Open the app again from the EHR.",
                         code="session")
    return str(token), sess


async def _with_session(request: Request, uow: UnitOfWork, kb: KnowledgeBase, *, save: bool) -> Response:
    settings = _settings(request)
    if not settings.enabled:
        return refuse(request, SmartError(404, "SMART launch is not configured on this server.", code="off"))
    try:
        page_token, sess = await _posted_session(request)
    except SmartError as err:
        return refuse(request, err)
    keep = KeepToken(sess)
    client = oauth_client(settings, scope=sess.scope, redirect_uri=redirect_uri(request),
                          token_endpoint=sess.token_endpoint, token=sess.token, update_token=keep,
                          transport=_transport(request))
    try:
        record = await _read(request, kb, sess, client, keep, purpose="saved" if save else "assessed")
        saved = _save(uow, sess, record) if save else None
        return _assessment(request, uow, kb, sess, page_token, record, saved=saved)
    except SessionExpired as err:
        _store(request).end_session(page_token)
        _audit_refusal(uow, sess.iss, err)
        return refuse(request, err)
    except SmartError as err:
        _audit_refusal(uow, sess.iss, err)
        return refuse(request, err)
    finally:
        await client.aclose()


def _save(uow: UnitOfWork, sess: SmartSession, record: EhrRecord) -> int:
    """The clinician chose to save: the EHR's record, as read now, becomes (or updates) a withdrawal record."""
    external = f"smart:{sess.iss}/Patient/{sess.patient}"
    if len(external) > 200:
        external = "smart:" + hashlib.sha256(external.encode()).hexdigest()
    session = uow.session
    row = session.scalar(select(Patient).where(Patient.external_id == external))
    now = utcnow()
    data = record.mapped.patient.model_dump(mode="json")
    if row is None:
        row = Patient(display_name=_display_name(record.patient_resource, sess.patient), external_id=external,
                      data=data, created_by=None, created_at=now, updated_at=now)
        session.add(row)
        session.flush()
        action = "create"
    else:
        row.data, row.updated_at, action = data, now, "update"
    uow.audit(actor=_actor(sess.iss, sess.fhir_user), action=action, resource="patient", resource_id=row.id,
              patient_id=row.id)
    return int(row.id)


@router.post("/smart/reload", response_class=HTMLResponse)
async def reload(request: Request, uow: UowDep, kb: KbDep) -> Response:
    """Read the EHR's record again (the access token refreshed if it expired)."""
    return await _with_session(request, uow, kb, save=False)


@router.post("/smart/save", response_class=HTMLResponse)
async def save(request: Request, uow: UowDep, kb: KbDep) -> Response:
    """Save the EHR's record as a withdrawal patient record: the only SMART action that stores anything."""
    return await _with_session(request, uow, kb, save=True)


@router.post("/smart/end", response_class=HTMLResponse)
async def end(request: Request) -> Response:
    try:
        page_token, sess = await _posted_session(request)
    except SmartError as err:
        return refuse(request, err)
    _store(request).end_session(page_token)
    return _render(request, "smart_error.html", {"title": "Session ended", "code": "ended",
                                                 "message": "The EHR session with this app has ended. Nothing "
                                                            "was stored unless you saved it."})
