"""What every page module shares: the templates, ``render``, sign-in checks and audited record access.

Kept small on purpose: a page module (``public``, ``account``, ``patients``, ``scales``, ``course``,
``tools``, ``pathway_view``) holds its routes and the plain functions that build its pages; what
more than one of them needs lives here.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from withdrawal import __version__
from withdrawal.errors import WithdrawalError
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.service.deps import UnitOfWork, patient_for
from withdrawal.service.models import Patient, User, aware
from withdrawal.web import answer, auth, i18n

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]

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
class LoginRequired(WithdrawalError):
    """A page that needs a signed-in user was asked for without one."""


def render(request: Request, name: str, ctx: dict[str, Any], *, user: User | None = None,
           status: int = 200) -> HTMLResponse:
    """A page in the reader's language, with what every page shows (crisis resources, sign-in, CSRF token)."""
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
        "level_text": kb.tramadol.verdict_headings,
        "dial_links": answer.DIAL,
        **ctx,
    }
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    auth.set_login_csrf_cookie(request, response)
    return response


def require_user(request: Request, session: Session) -> User:
    """The signed-in user; without one, the sign-in page (:class:`LoginRequired`)."""
    user = auth.web_user(request, session)
    if user is None:
        raise LoginRequired
    return user


def require_clinician(request: Request, session: Session) -> User:
    user = require_user(request, session)
    if user.role != "clinician":
        raise HTTPException(403, "clinicians only")
    return user


def open_patient(uow: UnitOfWork, user: User, patient_id: int, *, action: str, resource: str) -> Patient:
    """The patient if this user may see it (audited); otherwise a 404 page, the denial audited too."""
    patient = patient_for(uow, user, patient_id, action=action, resource=resource)
    uow.audit(actor=user, action=action, resource=resource, resource_id=patient.id, patient_id=patient.id)
    return patient


async def posted(request: Request) -> dict[str, str]:
    """A submitted form's text fields, after the CSRF check (the clinician forms read text only)."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    auth.check_csrf(request, form.get("csrf"))
    return form


def safe_next(value: str | None) -> str | None:
    """A local path to go to after sign-in; anything else (another site, a scheme) is dropped."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and len(value) < 300:
        return value
    return None


def home_for(user: User) -> str:
    if user.role == "clinician":
        return "/app/patients"
    return f"/app/patients/{user.patient_id}"


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def fmt_time(value: datetime) -> str:
    return aware(value).strftime("%d %b %Y %H:%M UTC")


templates.env.filters["when"] = fmt_time
templates.env.globals["severity"] = answer.severity
templates.env.globals["severity_word"] = answer.severity_word
templates.env.globals["routine_alerts"] = sorted(answer.ROUTINE_ALERTS)
