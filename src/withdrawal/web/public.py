"""Pages for anyone, signed in or not: the start page, the plain-language information for patients and
families, the language switch and the pages' static files."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from withdrawal.service.deps import SessionDep, UowDep
from withdrawal.service.models import User
from withdrawal.web import auth, i18n
from withdrawal.web.pages import HERE, redirect, render, safe_next

router = APIRouter(include_in_schema=False)


def _info(request: Request, user: User | None) -> Any:
    """The patient content in the request's language."""
    return request.app.state.kb.patient_info[i18n.choose(request, user)]


def _info_page(request: Request, user: User | None, section_id: str) -> HTMLResponse:
    """One section of the patient information, or the 404 page for a section that does not exist."""
    info = _info(request, user)
    section = info.section(section_id.replace("-", "_"))
    if section is None:
        return render(request, "error.html", {"title": i18n.gettext("Page not found"),
                                              "message": i18n.gettext("There is no such page.")},
                      user=user, status=404)
    return render(request, "info_section.html", {"info": info, "section": section,
                                                 "help": section.id == "help_now"}, user=user)


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
    return _info_page(request, auth.web_user(request, session), section_id)


@router.post("/language")
async def set_language(request: Request, uow: UowDep) -> Response:
    """The language switch: remembered in a cookie and, when signed in, by the account (``users.language``)."""
    form = await request.form()
    auth.check_csrf(request, form.get("csrf"))
    lang = str(form.get("lang") or "")
    if lang not in i18n.LANGUAGES:
        raise HTTPException(422, "unknown language")
    response = redirect(safe_next(str(form.get("next") or "")) or "/")
    response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    user = auth.web_user(request, uow.session)
    if user is not None:
        user.language = lang
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
