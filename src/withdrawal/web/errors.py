"""The pages' error answers: the sign-in redirect, an expired form, and HTTP errors as pages."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from withdrawal.web import auth
from withdrawal.web.pages import redirect, render


def login_required_handler(request: Request, _: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/login?next={quote(target, safe='/')}")


def csrf_handler(request: Request, _: Exception) -> Response:
    return render(request, "error.html", {"title": "Form expired",
                                          "message": "This form could not be accepted. Go back, reload the page "
                                                     "and try again."}, status=403)


def is_web_path(path: str) -> bool:
    """Whether an HTTP error on ``path`` is answered with a page (else the API's JSON)."""
    return path == "/" or path.startswith(("/app", "/info", "/login", "/logout", "/language"))


def http_error_page(request: Request, exc: StarletteHTTPException) -> Response:
    # NOTE: its own session, only to read who is signed in: the request's unit of work has ended.
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
