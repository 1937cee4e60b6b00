"""Signing in and out of the pages (a session cookie over the service's accounts), and where a signed-in
user's home is. Failed and throttled sign-ins are audited as the API's are."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from withdrawal.service.deps import SessionDep, SettingsDep, UowDep
from withdrawal.service.models import User, utcnow
from withdrawal.service.security import authenticate, login_actor, login_throttled
from withdrawal.web import auth
from withdrawal.web.pages import home_for, redirect, render, require_user, safe_next

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, next: str | None = None) -> Response:  # noqa: A002
    user = auth.web_user(request, session)
    if user is not None:
        return redirect(safe_next(next) or home_for(user))
    return render(request, "login.html", {"next": safe_next(next) or "", "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, uow: UowDep, settings: SettingsDep) -> Response:
    form = await request.form()
    auth.check_csrf(request, form.get("csrf"))
    username = str(form.get("username") or "")[:100]
    password = str(form.get("password") or "")[:200]
    nxt = safe_next(str(form.get("next") or ""))
    client = request.client.host if request.client else None
    actor = login_actor(username, client)
    session = uow.session

    def check() -> tuple[bool, User | None]:
        # NOTE: in the thread pool: the throttle query and the password hash must not hold up the event loop.
        if login_throttled(session, username, client, utcnow(), settings.login_max_failures,
                           settings.login_window_minutes):
            return True, None
        return False, authenticate(session, username, password) if username and password else None

    throttled, user = await run_in_threadpool(check)
    if throttled:
        uow.refuse(actor=actor, action="login", resource="user", outcome="throttled")
        return render(request, "login.html", {"next": nxt or "", "username": username,
                                              "error": "Too many failed logins for this username. Try again later."},
                      status=429)
    if user is None:
        uow.refuse(actor=actor, action="login", resource="user", outcome="denied")
        return render(request, "login.html", {"next": nxt or "", "error": "Wrong username or password.",
                                              "username": username}, status=401)
    response = redirect(nxt or home_for(user))
    auth.sign_in(session, response, request, user, settings)
    uow.audit(actor=user, action="login", resource="user", resource_id=user.id)
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    auth.check_csrf(request, form.get("csrf"))
    response = redirect("/")
    auth.sign_out(session, response, request)
    return response


@router.get("/app")
def app_home(request: Request, session: SessionDep) -> Response:
    return redirect(home_for(require_user(request, session)))
