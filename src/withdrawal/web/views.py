"""The pages: clinicians (patients, COWS, result, course, simulator, interactions, evidence),
patients (their own SOWS diary) and the public plain-language pages for patients and families.

Every read and write of patient data goes into the service's audit log, the same as the REST API;
a patient asking for another patient's page gets the same 404 as for a record that does not exist.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from withdrawal import __version__
from withdrawal.assess import Assessment
from withdrawal.errors import InputError
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Scale
from withdrawal.monitoring import ScaleRecord, crisis_signal
from withdrawal.patient import resolve_drug_name
from withdrawal.safety.interactions import check_interactions
from withdrawal.service import audit, records, schemas, summaries
from withdrawal.service.config import Settings
from withdrawal.service.deps import KbDep, SessionDep, SettingsDep, patient_for
from withdrawal.service.limits import stored_window
from withdrawal.service.models import MedicationAdministration, Patient, Plan, ScaleAssessment, User, aware, utcnow
from withdrawal.service.security import authenticate, login_actor, login_throttled
from withdrawal.web import answer, auth, forms, i18n, pathway_view
from withdrawal.web.charts import DoseMark, Point, concentration_chart, course_chart
from withdrawal.web.content import patient_info

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
router = APIRouter(include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
LEVEL_TEXT = {
    "contraindicated": "Contraindicated: do not use tramadol",
    "avoid": "Avoid tramadol",
    "caution": "Use tramadol only with caution",
    "acceptable": "No reason against tramadol found",
}


class LoginRequired(Exception):
    """A page that needs a signed-in user was asked for without one."""


# --- helpers ------------------------------------------------------------------------------


def render(request: Request, name: str, ctx: dict[str, Any], *, user: User | None = None,
           status: int = 200) -> HTMLResponse:
    kb: KnowledgeBase = request.app.state.kb
    lang = i18n.choose(request, user)
    i18n.activate(lang)
    context = {
        "lang": lang,
        "languages": i18n.NAMES,
        "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "user": user,
        "csrf": auth.csrf_token(request),
        "crisis": sorted(kb.care.resources, key=lambda r: r.order),
        "version": __version__,
        "sources": kb.sources,
        "level_text": LEVEL_TEXT,
        "dial_links": answer.DIAL,
        **ctx,
    }
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    auth.set_login_csrf_cookie(request, response)
    return response


def require_user(request: Request, session: Session) -> User:
    user = auth.web_user(request, session)
    if user is None:
        raise LoginRequired
    return user


def require_clinician(request: Request, session: Session) -> User:
    user = require_user(request, session)
    if user.role != "clinician":
        raise HTTPException(403, "clinicians only")
    return user


def open_patient(session: Session, user: User, patient_id: int, *, action: str, resource: str) -> Patient:
    """The patient if this user may see it (audited); otherwise a 404 page, the denial audited too."""
    patient = patient_for(session, user, patient_id, action=action, resource=resource)
    audit.record(session, actor=user, action=action, resource=resource, resource_id=patient.id, patient_id=patient.id)
    return patient


def safe_next(value: str | None) -> str | None:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and len(value) < 300:
        return value
    return None


def home_for(user: User) -> str:
    if user.role == "clinician":
        return "/app/patients"
    return f"/app/patients/{user.patient_id}"


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def latest(session: Session, patient_id: int, scale: str) -> ScaleAssessment | None:
    """The latest score within the time bounds (a row dated in the future is not the latest)."""
    return records.latest_score(session, patient_id, scale)


def parse_scale_form(form: dict[str, Any], scale: Scale) -> tuple[dict[str, int], dict[str, str]]:
    """Chosen scores by item and an error message per item left out or invalid."""
    chosen: dict[str, int] = {}
    errors: dict[str, str] = {}
    for item in scale.items:
        raw = form.get(item.id)
        if raw is None or raw == "":
            errors[item.id] = f"Choose an answer for “{item.label}”."
            continue
        try:
            value = int(str(raw))
        except ValueError:
            errors[item.id] = f"“{item.label}”: not a score."
            continue
        if value not in item.allowed_scores:
            errors[item.id] = f"“{item.label}”: {value} is not one of the scores on the form."
            continue
        chosen[item.id] = value
    return chosen, errors


def band_json(scale: Scale) -> list[dict[str, Any]]:
    return [{"min": b.min, "max": b.max, "key": b.key, "label": b.label, "sev": answer.severity(b.key)}
            for b in scale.bands]


# --- public pages -------------------------------------------------------------------------


def _info(request: Request, user: User | None) -> Any:
    """The patient content in the request's language."""
    return patient_info(i18n.choose(request, user))


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> HTMLResponse:
    user = auth.web_user(request, session)
    return render(request, "home.html", {"info": _info(request, user)}, user=user)


@router.get("/info", response_class=HTMLResponse)
def info_index(request: Request, session: SessionDep) -> HTMLResponse:
    user = auth.web_user(request, session)
    return render(request, "info_index.html", {"info": _info(request, user)}, user=user)


@router.get("/info/questions", response_class=HTMLResponse)
def info_faq(request: Request, session: SessionDep) -> HTMLResponse:
    user = auth.web_user(request, session)
    return render(request, "info_faq.html", {"info": _info(request, user)}, user=user)


@router.get("/info/help", response_class=HTMLResponse)
def info_help(request: Request, session: SessionDep) -> HTMLResponse:
    user = auth.web_user(request, session)
    info = _info(request, user)
    return render(request, "info_section.html", {"info": info, "section": info.section("help_now"), "help": True},
                  user=user)


@router.get("/info/{section_id}", response_class=HTMLResponse)
def info_section(section_id: str, request: Request, session: SessionDep) -> HTMLResponse:
    user = auth.web_user(request, session)
    info = _info(request, user)
    section = info.section(section_id.replace("-", "_"))
    if section is None:
        return render(request, "error.html", {"title": i18n.gettext("Page not found"),
                                              "message": i18n.gettext("There is no such page.")},
                      user=user, status=404)
    return render(request, "info_section.html", {"info": info, "section": section,
                                                 "help": section.id == "help_now"}, user=user)


@router.post("/language")
async def set_language(request: Request, session: SessionDep) -> Response:
    """The language switch: remembered in a cookie and, when signed in, by the account (``users.language``)."""
    form = await request.form()
    auth.check_csrf(request, form.get("csrf"))
    lang = str(form.get("lang") or "")
    if lang not in i18n.LANGUAGES:
        raise HTTPException(422, "unknown language")
    response = redirect(safe_next(str(form.get("next") or "")) or "/")
    response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    user = auth.web_user(request, session)
    if user is not None:
        user.language = lang
        session.commit()
    return response


@cache
def _static(name: str) -> tuple[bytes, str]:
    path = HERE / "static" / name
    media = {"css": "text/css", "js": "text/javascript", "svg": "image/svg+xml"}[name.rsplit(".", 1)[1]]
    return path.read_bytes(), media


@router.get("/static/web/{name}")
def static(name: str) -> Response:
    if not re.fullmatch(r"[a-z0-9_-]+\.(css|js|svg)", name) or not (HERE / "static" / name).is_file():
        raise HTTPException(404, "not found")
    body, media = _static(name)
    return Response(body, media_type=media, headers={"Cache-Control": "public, max-age=3600",
                                                     "X-Content-Type-Options": "nosniff"})


# --- sign in / out ------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, next: str | None = None) -> Response:  # noqa: A002
    user = auth.web_user(request, session)
    if user is not None:
        return redirect(safe_next(next) or home_for(user))
    return render(request, "login.html", {"next": safe_next(next) or "", "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = await request.form()
    auth.check_csrf(request, form.get("csrf"))
    username = str(form.get("username") or "")[:100]
    password = str(form.get("password") or "")[:200]
    nxt = safe_next(str(form.get("next") or ""))
    client = request.client.host if request.client else None
    actor = login_actor(username, client)

    def check() -> tuple[bool, User | None]:
        # NOTE: in the thread pool: the throttle query and scrypt must not hold up the event loop.
        if login_throttled(session, username, client, utcnow(), settings.login_max_failures,
                           settings.login_window_minutes):
            return True, None
        return False, authenticate(session, username, password) if username and password else None

    throttled, user = await run_in_threadpool(check)
    if throttled:
        audit.record(session, actor=actor, action="login", resource="user", outcome="throttled")
        session.commit()
        return render(request, "login.html", {"next": nxt or "", "username": username,
                                              "error": "Too many failed logins for this username. Try again later."},
                      status=429)
    if user is None:
        audit.record(session, actor=actor, action="login", resource="user", outcome="denied")
        session.commit()
        return render(request, "login.html", {"next": nxt or "", "error": "Wrong username or password.",
                                              "username": username}, status=401)
    response = redirect(nxt or home_for(user))
    auth.sign_in(session, response, request, user, settings)
    audit.record(session, actor=user, action="login", resource="user", resource_id=user.id)
    session.commit()
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    auth.check_csrf(request, form.get("csrf"))
    response = redirect("/")
    auth.sign_out(session, response, request)
    session.commit()
    return response


@router.get("/app")
def app_home(request: Request, session: SessionDep) -> Response:
    return redirect(home_for(require_user(request, session)))


# --- clinician: patient list --------------------------------------------------------------


PAGE_SIZE = 50
SUMMARY_MAX_AGE = timedelta(minutes=15)
SUMMARY_AGED_PER_LOAD = 5
"""Of a page's summaries older than 15 minutes, the 5 oldest are recomputed on each load (time-dependent
alerts); at about 10 ms each, a page stays well under 100 ms."""


@router.get("/app/patients", response_class=HTMLResponse)
def patients(request: Request, session: SessionDep, kb: KbDep, settings: SettingsDep, page: str = "1") -> Response:
    """One page of patients by name, read from their stored summaries (``service/summaries.py``): no patient is
    re-assessed here unless their summary is missing or was made with another knowledge-base version."""
    user = require_user(request, session)
    if user.role != "clinician":
        return redirect(home_for(user))
    total = session.scalar(select(func.count()).select_from(Patient)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    number = int(page) if page.isdigit() and len(page) < 9 else 1  # a malformed page number is the first page
    number = min(max(1, number), pages)
    listed = list(session.scalars(select(Patient).order_by(Patient.display_name, Patient.id)
                                  .offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    stored = summaries.ensure(session, listed, kb, settings.thresholds(), max_age=SUMMARY_MAX_AGE,
                              aged_budget=SUMMARY_AGED_PER_LOAD)
    rows = []
    for p in listed:
        s = stored[p.id]
        audit.record(session, actor=user, action="read", resource="patient", resource_id=p.id, patient_id=p.id)
        opioid = p.data.get("opioid") or {}
        rows.append({"patient": p, "summary": s, "verdict": s.verdict, "alerts": s.alerts,
                     "substance": opioid.get("substance"), "age": p.data.get("age_years")})
    session.commit()
    band_labels = {b.key: b.label for b in kb.scales["cows"].bands}
    return render(request, "patients.html", {"rows": rows, "band_labels": band_labels, "page": number,
                                             "pages": pages, "total": total, "page_size": PAGE_SIZE}, user=user)


async def _posted(request: Request) -> dict[str, str]:
    """A submitted form's text fields, after the CSRF check (the clinician forms read text only)."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    auth.check_csrf(request, form.get("csrf"))
    return form


# --- clinician: new patient -----------------------------------------------------------------

_PATIENT_FORM_CHOICES = {"sexes": forms.SEXES, "settings": forms.SETTINGS, "substances": forms.SUBSTANCES,
                         "phenotypes": forms.PHENOTYPES, "child_pugh": forms.CHILD_PUGH}
_NEW = {"heading": "New patient", "form_action": "/app/patients/new", "submit_label": "Create and assess",
        **_PATIENT_FORM_CHOICES}


def _edit_ctx(patient: Patient) -> dict[str, Any]:
    return {"heading": f"Edit {patient.display_name}", "form_action": f"/app/patients/{patient.id}/edit",
            "submit_label": "Save and assess", "patient": patient, **_PATIENT_FORM_CHOICES}


@router.get("/app/patients/new", response_class=HTMLResponse)
def new_patient_form(request: Request, session: SessionDep) -> Response:
    user = require_clinician(request, session)
    return render(request, "patient_form.html", {"values": {}, "errors": {}, **_NEW}, user=user)


REVIEW_FIELDS = ("conditions", "current_medications", "stopped_medications", "allergies")


def _apply_review(form: dict[str, str]) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """The form with the clinician's choices for entries the knowledge base did not recognise
    (use a suggestion, remove, keep as typed) applied; and the entries already reviewed."""
    reviewed: set[tuple[str, str]] = set()
    if form.get("review") != "1":
        return form, reviewed
    keep_all = form.get("action") == "save_anyway"
    for i in range(forms.MAX_LINES * len(REVIEW_FIELDS)):
        entry, field = form.get(f"fix-{i}-entry"), form.get(f"fix-{i}-field")
        if entry is None or field is None:
            break
        if field not in REVIEW_FIELDS:
            continue
        reviewed.add((field, entry))
        choice = "keep" if keep_all else form.get(f"fix-{i}", "keep")
        if choice == "remove":
            form = answer.replace_entry(form, field, entry, None)
        elif choice.startswith("use:") and choice[4:].strip():
            form = answer.replace_entry(form, field, entry, choice[4:].strip()[:200])
    return form, reviewed


def _pending_review(form: dict[str, str], data: dict[str, Any], kb: KnowledgeBase,
                    reviewed: set[tuple[str, str]]) -> list[answer.Unrecognised]:
    """Entries not recognised that the clinician has not seen yet ("save anyway" saves them as typed)."""
    if form.get("action") == "save_anyway":
        return []
    return [u for u in answer.unrecognised_entries(data, kb) if (u.field, u.entry) not in reviewed]


@router.post("/app/patients/new", response_class=HTMLResponse)
async def new_patient_submit(request: Request, session: SessionDep, kb: KbDep) -> Response:
    user = require_clinician(request, session)
    form, reviewed = _apply_review(await _posted(request))
    name, data, errors = forms.patient_from_form(form)
    if not errors and (pending := _pending_review(form, data, kb, reviewed)):
        return render(request, "patient_form.html", {"values": form, "errors": {}, "review": pending, **_NEW},
                      user=user)
    patient = None
    if not errors:
        try:
            patient = records.create_patient(session=session, user=user, kb=kb,
                                             body=schemas.PatientCreate(display_name=name, data=data))
        except InputError as exc:
            errors[forms.form_field(exc.field)] = str(exc)
    if patient is None:
        session.rollback()
        return render(request, "patient_form.html", {"values": form, "errors": errors, **_NEW}, user=user,
                      status=422)
    audit.record(session, actor=user, action="create", resource="patient", resource_id=patient.id,
                 patient_id=patient.id)
    session.commit()
    return redirect(f"/app/patients/{patient.id}?recorded=patient")


# --- one patient --------------------------------------------------------------------------


def _assessment_ctx(session: Session, patient: Patient, kb: KnowledgeBase, override: str | None = None
                    ) -> dict[str, Any]:
    result: Assessment = records.assess_record(session, patient, kb, override=override)
    return {"a": result.to_dict(), "result": result}


def _result_page(request: Request, session: Session, kb: KnowledgeBase, settings: Settings, user: User,
                 patient: Patient, *, recorded: str | None = None, override: str | None = None,
                 override_error: str | None = None, plan_error: str | None = None, plan_note: str = "",
                 status: int = 200) -> Response:
    ctx = _assessment_ctx(session, patient, kb, override)
    plan = session.scalar(select(Plan).where(Plan.patient_id == patient.id, Plan.status == "active")
                          .order_by(Plan.id.desc()).limit(1))
    found, alert_sources = records.alerts(session=session, patient=patient, kb=kb,
                                          thresholds=settings.thresholds(), now=utcnow())
    audit.record(session, actor=user, action="read", resource="alerts", patient_id=patient.id)
    session.commit()
    return render(request, "result.html", {
        "patient": patient, "alerts": found, "alert_sources": alert_sources, "recorded": recorded,
        "cows_row": latest(session, patient.id, "cows"), "first": answer.first_screen(ctx["a"], found),
        "override_error": override_error, "override_value": override or "", "plan": plan,
        "plan_error": plan_error, "plan_note": plan_note, **ctx,
    }, user=user, status=status)


@router.post("/app/patients/{patient_id}/plans", response_class=HTMLResponse)
async def plan_submit(patient_id: int, request: Request, session: SessionDep, kb: KbDep,
                      settings: SettingsDep) -> Response:
    """Save the assessment shown as the patient's active plan (the API's ``POST /patients/{id}/plans``): the
    previous one is superseded, the plan's dose limit and taper feed the monitoring alerts."""
    user = require_clinician(request, session)
    form = await _posted(request)
    patient = open_patient(session, user, patient_id, action="create", resource="plan")
    note = str(form.get("note") or "").strip()[:4000] or None
    taper = form.get("taper") == "1"
    if taper and records.assess_record(session, patient, kb).screen.verdict in ("avoid", "contraindicated"):
        audit.record(session, actor=user, action="create", resource="plan", patient_id=patient.id,
                     outcome="invalid")
        return _result_page(request, session, kb, settings, user, patient, status=422, plan_note=note or "",
                            plan_error="taper: there is no tramadol taper for this patient (see the verdict); "
                                       "save the plan without it.")
    row = records.make_plan(session=session, patient=patient, user=user, kb=kb,
                            body=schemas.PlanCreate(note=note, taper=taper))
    audit.record(session, actor=user, action="create", resource="plan", resource_id=row.id, patient_id=patient.id)
    session.commit()
    return redirect(f"/app/patients/{patient.id}?recorded=plan#h-plan")


@router.get("/app/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(patient_id: int, request: Request, session: SessionDep, kb: KbDep, settings: SettingsDep,
                 recorded: str | None = None) -> Response:
    user = require_user(request, session)
    patient = open_patient(session, user, patient_id, action="read", resource="patient")
    if user.role != "clinician":
        ctx = _course_ctx(session, patient, kb, show_cows=False)
        session.commit()
        signal = _crisis(ctx["score_rows"], patient, kb, settings)
        return render(request, "patient_home.html", {"patient": patient, "recorded": recorded,
                                                     "crisis_signal": signal, **ctx}, user=user)
    return _result_page(request, session, kb, settings, user, patient, recorded=recorded)


@router.post("/app/patients/{patient_id}/override", response_class=HTMLResponse)
async def override_submit(patient_id: int, request: Request, session: SessionDep, kb: KbDep,
                          settings: SettingsDep) -> Response:
    """The tramadol schedule for a patient it is to be avoided for, with the clinician's reason: the same
    override as the API's ``override_reason`` (never for ``contraindicated``); the reason goes into the
    audit log only (a POST, so it is in no URL and no access log)."""
    user = require_clinician(request, session)
    form = await _posted(request)
    patient = open_patient(session, user, patient_id, action="read", resource="patient")
    reason = " ".join(str(form.get("override_reason") or "").split())[:500]
    if len(reason) < 10:
        return _result_page(request, session, kb, settings, user, patient, status=422,
                            override_error="override_reason: give your clinical reason (at least 10 characters; "
                                           "kept in the audit log).")
    audit.record(session, actor=user, action="assess_override", resource="patient", resource_id=patient.id,
                 patient_id=patient.id, outcome="override", reason=reason)
    return _result_page(request, session, kb, settings, user, patient, override=reason)


@router.get("/app/patients/{patient_id}/edit", response_class=HTMLResponse)
def edit_patient_form(patient_id: int, request: Request, session: SessionDep) -> Response:
    user = require_clinician(request, session)
    patient = open_patient(session, user, patient_id, action="read", resource="patient")
    session.commit()
    values = forms.form_from_patient(patient.display_name, patient.data)
    return render(request, "patient_form.html", {"values": values, "errors": {}, **_edit_ctx(patient)}, user=user)


@router.post("/app/patients/{patient_id}/edit", response_class=HTMLResponse)
async def edit_patient_submit(patient_id: int, request: Request, session: SessionDep, kb: KbDep) -> Response:
    user = require_clinician(request, session)
    form, reviewed = _apply_review(await _posted(request))
    patient = open_patient(session, user, patient_id, action="update", resource="patient")
    name, edited, errors = forms.patient_from_form(form)
    if not errors and (pending := _pending_review(form, edited, kb, reviewed)):
        session.commit()
        return render(request, "patient_form.html", {"values": form, "errors": {}, "review": pending,
                                                     **_edit_ctx(patient)}, user=user)
    if not errors:
        try:
            records.update_patient(patient=patient, kb=kb, body=schemas.PatientUpdate(
                display_name=name, data=forms.merge_edit(patient.data, edited)))
        except InputError as exc:
            errors[forms.form_field(exc.field)] = str(exc)
    if errors:
        session.rollback()
        return render(request, "patient_form.html", {"values": form, "errors": errors, **_edit_ctx(patient)},
                      user=user, status=422)
    session.commit()
    return redirect(f"/app/patients/{patient.id}?recorded=edit")


@router.get("/app/patients/{patient_id}/cows", response_class=HTMLResponse)
def cows_form(patient_id: int, request: Request, session: SessionDep, kb: KbDep) -> Response:
    user = require_clinician(request, session)
    patient = open_patient(session, user, patient_id, action="read", resource="patient")
    session.commit()
    scale = kb.scales["cows"]
    return render(request, "cows_form.html", {"patient": patient, "scale": scale, "chosen": {}, "errors": {},
                                              "bands": band_json(scale), "next_steps": next_steps(kb)}, user=user)


def next_steps(kb: KnowledgeBase) -> list[dict[str, Any]]:
    """What a COWS total means for the next step, from the buprenorphine start threshold (care.yaml)."""
    start = kb.treatment("buprenorphine").start_cows_min
    if start is None:
        return []
    top = kb.scales["cows"].total_max
    return [
        {"min": 0, "max": start - 1, "text": f"Below {start}: too early for buprenorphine (risk of precipitated "
                                             "withdrawal); score again as withdrawal progresses."},
        {"min": start, "max": top, "text": f"{start} or more: buprenorphine can start once the wait since the last "
                                           "opioid has passed (see the assessment)."},
    ]


def _minutes_ago(form: dict[str, Any], errors: dict[str, str]) -> datetime | None:
    """When the COWS was scored, from the form's minutes ago (0-720); None for now."""
    text = str(form.get("minutes_ago") or "").strip()
    if not text or text == "0":
        return None
    if not text.isdigit() or not 0 <= int(text) <= 720:
        errors["minutes_ago"] = "minutes_ago: whole minutes between 0 (now) and 720 (12 hours ago)"
        return None
    return utcnow() - timedelta(minutes=int(text))


async def _save_scale(request: Request, session: Session, kb: KnowledgeBase, user: User, patient_id: int,
                      scale_id: str, extra: dict[str, Any]) -> tuple[Patient, Response | None]:
    """Record a submitted COWS or SOWS; on invalid items, the form again with the errors (422)."""
    form = dict(await request.form())
    auth.check_csrf(request, form.get("csrf"))
    patient = open_patient(session, user, patient_id, action="create", resource="assessment")
    scale = kb.scales[scale_id]
    chosen, errors = parse_scale_form(form, scale)
    when = _minutes_ago(form, errors) if scale_id == "cows" else None
    if errors:
        session.commit()
        again = {"patient": patient, "scale": scale, "chosen": chosen, "errors": errors,
                 "minutes_ago": str(form.get("minutes_ago") or "0")[:10], **extra}
        return patient, render(request, f"{scale_id}_form.html", again, user=user, status=422)
    row = records.add_scale(session=session, patient=patient, user=user, kb=kb,
                            body=schemas.ScaleAssessmentCreate(scale=scale_id, items=chosen, recorded_at=when))
    audit.record(session, actor=user, action="create", resource="assessment", resource_id=row.id,
                 patient_id=patient.id)
    session.commit()
    return patient, None


@router.post("/app/patients/{patient_id}/cows", response_class=HTMLResponse)
async def cows_submit(patient_id: int, request: Request, session: SessionDep, kb: KbDep) -> Response:
    user = require_clinician(request, session)
    patient, failed = await _save_scale(request, session, kb, user, patient_id, "cows",
                                        {"bands": band_json(kb.scales["cows"]), "next_steps": next_steps(kb)})
    return failed or redirect(f"/app/patients/{patient.id}?recorded=cows")


@router.get("/app/patients/{patient_id}/sows", response_class=HTMLResponse)
def sows_form(patient_id: int, request: Request, session: SessionDep, kb: KbDep) -> Response:
    user = require_user(request, session)
    patient = open_patient(session, user, patient_id, action="read", resource="patient")
    session.commit()
    return render(request, "sows_form.html", {"patient": patient, "scale": kb.scales["sows"], "chosen": {},
                                              "errors": {}}, user=user)


@router.post("/app/patients/{patient_id}/sows", response_class=HTMLResponse)
async def sows_submit(patient_id: int, request: Request, session: SessionDep, kb: KbDep) -> Response:
    user = require_user(request, session)
    patient, failed = await _save_scale(request, session, kb, user, patient_id, "sows", {})
    if failed:
        return failed
    target = f"/app/patients/{patient.id}" if user.role != "clinician" else f"/app/patients/{patient.id}/course"
    return redirect(f"{target}?recorded=sows#chart")


def _crisis(rows: list[ScaleAssessment], patient: Patient, kb: KnowledgeBase, settings: Settings
            ) -> dict[str, Any] | None:
    """Why the patient's own report is at crisis level (the clinician's alert says the same), or None."""
    scores = [ScaleRecord("sows", r.total, r.items, aware(r.recorded_at)) for r in rows if r.scale == "sows"]
    ideation = any(kb.lookup_condition(str(c)) == "suicidal_ideation" for c in patient.data.get("conditions") or ())
    return crisis_signal(scores, settings.thresholds(), suicidal_ideation=ideation)


def _course_ctx(session: Session, patient: Patient, kb: KnowledgeBase, *, show_cows: bool) -> dict[str, Any]:
    # Rows outside the time bounds (stored before they existed) are left out: one SOWS dated 9999 made
    # this page a 500 for good.
    start, end = stored_window(utcnow())
    rows = session.scalars(select(ScaleAssessment).where(ScaleAssessment.patient_id == patient.id,
                                                         ScaleAssessment.recorded_at.between(start, end))
                           .order_by(ScaleAssessment.recorded_at, ScaleAssessment.id)).all()
    doses = session.scalars(select(MedicationAdministration)
                            .where(MedicationAdministration.patient_id == patient.id,
                                   MedicationAdministration.at.between(start, end))
                            .order_by(MedicationAdministration.at)).all()
    cows_scale = kb.scales["cows"]
    cows = [Point(aware(r.recorded_at), r.total, r.band or "") for r in rows if r.scale == "cows"]
    sows = [Point(aware(r.recorded_at), r.total) for r in rows if r.scale == "sows"]
    marks = [DoseMark(aware(d.at), d.drug, d.dose_mg) for d in doses if d.kind == "administration"]
    chart = course_chart(cows=cows if show_cows else [], sows=sows, doses=marks, cows_scale=cows_scale,
                         sows_max=kb.scales["sows"].total_max, show_cows=show_cows, width=760 if show_cows else 440,
                         title=f"Withdrawal scores over time for {patient.display_name}")
    band_labels = {b.key: b.label for b in cows_scale.bands}
    return {"chart": chart, "score_rows": [r for r in rows if show_cows or r.scale == "sows"], "doses": doses,
            "band_labels": band_labels, "show_cows": show_cows}


@router.get("/app/patients/{patient_id}/handout", response_class=HTMLResponse)
def handout(patient_id: int, request: Request, session: SessionDep) -> Response:
    """The patient's plan and SOWS diary as a printable handout (print stylesheet; the PDF in docs/img is
    Chromium's print of this page), in the reader's language, with the crisis resources."""
    user = require_user(request, session)
    patient = open_patient(session, user, patient_id, action="read", resource="plan")
    plan = session.scalar(select(Plan).where(Plan.patient_id == patient.id, Plan.status == "active")
                          .order_by(Plan.id.desc()).limit(1))
    start, end = stored_window(utcnow())
    sows_rows = session.scalars(select(ScaleAssessment).where(
        ScaleAssessment.patient_id == patient.id, ScaleAssessment.scale == "sows",
        ScaleAssessment.recorded_at.between(start, end)).order_by(ScaleAssessment.recorded_at)).all()
    session.commit()
    options = (plan.result.get("options") if plan else None) or []
    first = options[0].get("name") if options and isinstance(options[0], dict) else None
    return render(request, "handout.html", {"patient": patient, "plan": plan, "first_option": first,
                                            "sows_rows": sows_rows, "printed": utcnow()}, user=user)


@router.get("/app/patients/{patient_id}/course", response_class=HTMLResponse)
def course(patient_id: int, request: Request, session: SessionDep, kb: KbDep, recorded: str | None = None
           ) -> Response:
    user = require_user(request, session)
    patient = open_patient(session, user, patient_id, action="read", resource="trends")
    if user.role != "clinician":
        session.commit()
        return redirect(f"/app/patients/{patient.id}#chart")
    ctx = _course_ctx(session, patient, kb, show_cows=True)
    session.commit()
    return render(request, "course.html", {"patient": patient, "recorded": recorded, "dose_values": {},
                                           "dose_errors": {}, **ctx}, user=user)


def _dose_checks(session: Session, patient: Patient, kb: KnowledgeBase, fields: dict[str, Any], at: datetime,
                 override: str, errors: dict[str, str]) -> bool:
    """Order checks for a tramadol dose, as an EHR makes them: refused when tramadol is contraindicated
    for the patient; an override reason needed when it is to be avoided, or when the dose takes the last
    24 hours above the patient's limit. Errors are added by field; True when an override is used."""
    ids = resolve_drug_name(fields["drug"], kb) if fields["drug"] else ()
    if fields["drug"] and len(ids) != 1:
        sug = answer.suggestions(fields["drug"], "drug", kb)
        errors["drug"] = (f"drug: “{fields['drug'][:60]}” " + ("names more than one ingredient: record each one"
                          if ids else "is not recognised") + (f" (did you mean {' or '.join(sug)}?)" if sug else "")
                          + ": enter one medicine by generic or brand name")
        return False
    if ids != ("tramadol",):
        return False
    result = records.assess_record(session, patient, kb)
    first = answer.first_screen(result.to_dict(), ())
    verdict, limit = result.screen.verdict, result.screen.max_daily_dose_mg
    if verdict == "contraindicated":
        errors["drug"] = f"drug: tramadol is contraindicated for this patient and cannot be recorded: {first.reason}"
        return False
    why: list[str] = []
    if verdict == "avoid":
        why.append(f"tramadol is to be avoided for this patient: {first.reason}")
    dose = fields["dose_mg"]
    if fields["kind"] == "administration" and dose is not None:
        start, _ = stored_window(utcnow())
        given = session.scalars(select(MedicationAdministration).where(
            MedicationAdministration.patient_id == patient.id, MedicationAdministration.drug == "tramadol",
            MedicationAdministration.kind == "administration",
            MedicationAdministration.at > max(start, at - timedelta(hours=24)),
            MedicationAdministration.at <= at + timedelta(hours=24))).all()
        window = sum(d.dose_mg for d in given if abs((aware(d.at) - at).total_seconds()) < 86400)
        if window + dose > limit:
            why.append(f"{window + dose:g} mg of tramadol within 24 hours is above this patient's limit of "
                       f"{limit} mg a day" + (f" ({window:g} mg already recorded)" if window else ""))
    if not why:
        return False
    if len(override) < 10:
        errors["override_reason"] = ("override_reason: " + "; and ".join(why) + ". To record it anyway, give your "
                                     "clinical reason (at least 10 characters; kept in the audit log).")
        return False
    return True


@router.post("/app/patients/{patient_id}/doses", response_class=HTMLResponse)
async def dose_submit(patient_id: int, request: Request, session: SessionDep, kb: KbDep) -> Response:
    """Record a dose given (or dispensed): the course chart marks it, the monitoring alerts read it.

    Tramadol is checked as an order would be (:func:`_dose_checks`); an override reason is kept in
    the audit log, never in the application logs."""
    user = require_clinician(request, session)
    form = await _posted(request)
    patient = open_patient(session, user, patient_id, action="create", resource="administration")
    fields, hours_ago, errors = forms.dose_from_form(form)
    override = " ".join(str(form.get("override_reason") or "").split())[:500]
    at = utcnow() - timedelta(hours=hours_ago)
    overridden = _dose_checks(session, patient, kb, fields, at, override, errors)
    if not errors:
        try:
            body = schemas.AdministrationCreate(**fields, at=at)
            row = records.add_administration(session=session, patient=patient, body=body, user=user, kb=kb)
        except InputError as exc:
            errors["drug"] = str(exc)
        except ValidationError as exc:
            errors["dose_mg"] = "dose_mg: " + exc.errors()[0]["msg"]
    if errors:
        session.rollback()
        audit.record(session, actor=user, action="create", resource="administration", patient_id=patient.id,
                     outcome="invalid")
        audit.record(session, actor=user, action="read", resource="trends", patient_id=patient.id)
        session.commit()
        ctx = _course_ctx(session, patient, kb, show_cows=True)
        return render(request, "course.html", {"patient": patient, "recorded": None, "dose_values": form,
                                               "dose_errors": errors, **ctx}, user=user, status=422)
    audit.record(session, actor=user, action="create", resource="administration", resource_id=row.id,
                 patient_id=patient.id, outcome="override" if overridden else "ok",
                 reason=override if overridden else None)
    session.commit()
    return redirect(f"/app/patients/{patient.id}/course?recorded={'dose_override' if overridden else 'dose'}#chart")


PHENOTYPES = ("poor", "intermediate", "normal", "ultrarapid")


@router.get("/app/patients/{patient_id}/simulator", response_class=HTMLResponse)
def simulator(patient_id: int, request: Request, session: SessionDep, kb: KbDep,
              phenotype: str | None = None) -> Response:
    from withdrawal.web.pk_view import curves

    user = require_clinician(request, session)
    patient = open_patient(session, user, patient_id, action="read", resource="plan")
    result = records.assess_record(session, patient, kb)
    session.commit()
    recorded_ph = result.patient.data.cyp2d6_phenotype
    chosen = phenotype if phenotype in PHENOTYPES else recorded_ph
    c = curves(result.patient, result.plan, kb, chosen)
    chart = None
    if c is not None:
        chart = concentration_chart(
            hours=c.hours, m1=c.m1, tramadol=c.tramadol, threshold=c.threshold, dose_times_h=c.dose_times_h,
            course_marks=c.course_marks,
            title=f"Simulated M1 and tramadol for the proposed taper, {c.phenotype_used} metabolizer",
        )
    return render(request, "simulator.html", {
        "patient": patient, "a": result.to_dict(), "curves": c, "chart": chart, "phenotypes": PHENOTYPES,
        # the menu shows the phenotype simulated (normal when none is recorded or chosen), never another one
        "chosen": c.phenotype_used if c is not None else chosen, "recorded_ph": recorded_ph,
    }, user=user)


# --- tools --------------------------------------------------------------------------------


@router.get("/app/interactions", response_class=HTMLResponse)
def interactions(request: Request, session: SessionDep, kb: KbDep, drugs: str = "") -> Response:
    user = require_clinician(request, session)
    names = [n.strip() for n in re.split(r"[,\n;]+", drugs[:2000]) if n.strip()][:30]
    report = check_interactions(names, kb) if names else None
    return render(request, "interactions.html", {
        "drugs": drugs[:2000], "report": report, "drug_names": {d: kb.drugs[d].name for d in kb.drugs},
        "suggest": lambda text: answer.suggestions(text, "drug", kb)}, user=user)


@cache
def _evidence() -> tuple[Any, str]:
    import tempfile

    from withdrawal.evidence.summary import build_summary, tramadol_forest

    summary = build_summary()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "forest.svg"
        tramadol_forest(summary, path)
        svg = path.read_text(encoding="utf-8")
    return summary, svg


@router.get("/app/evidence", response_class=HTMLResponse)
def evidence(request: Request, session: SessionDep, kb: KbDep) -> Response:
    user = require_clinician(request, session)
    summary, _ = _evidence()
    return render(request, "evidence.html", {"summary": summary, "points": kb.care.evidence_summary}, user=user)


@router.get("/app/evidence/forest.svg")
def forest_svg(request: Request, session: SessionDep) -> Response:
    require_clinician(request, session)
    _, svg = _evidence()
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600",
                                                              "X-Content-Type-Options": "nosniff"})


# --- error pages --------------------------------------------------------------------------


def login_required_handler(request: Request, _: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/login?next={quote(target, safe='/')}")


def csrf_handler(request: Request, _: Exception) -> Response:
    return render(request, "error.html", {"title": "Form expired",
                                          "message": "This form could not be accepted. Go back, reload the page "
                                                     "and try again."}, status=403)


def is_web_path(path: str) -> bool:
    return path == "/" or path.startswith(("/app", "/info", "/login", "/logout", "/language"))


def http_error_page(request: Request, exc: StarletteHTTPException) -> Response:
    session: Session = request.app.state.sessions()
    try:
        user = auth.web_user(request, session)
    finally:
        session.close()
    if exc.status_code == 404:
        title, message = "Page not found", "There is no such page, or you do not have access to it."
    elif exc.status_code == 403:
        title, message = "Not available", "This page is for clinicians."
    else:
        title, message = "Something went wrong", "The request could not be completed."
    return render(request, "error.html", {"title": title, "message": message}, user=user, status=exc.status_code)


def fmt_time(value: datetime) -> str:
    return aware(value).strftime("%d %b %Y %H:%M UTC")


templates.env.filters["when"] = fmt_time
templates.env.globals["LEVEL_TEXT"] = LEVEL_TEXT
templates.env.globals["severity"] = answer.severity
templates.env.globals["severity_word"] = answer.severity_word
templates.env.globals["routine_alerts"] = sorted(answer.ROUTINE_ALERTS)


router.include_router(pathway_view.router)  # the buprenorphine start pathway page (its own module)
