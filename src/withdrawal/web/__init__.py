"""Web pages for clinicians, patients and families, served by the same FastAPI app as the API.

``install(app)`` adds the pages to the service's app (the composition root, ``withdrawal.app``, does):
same database, same accounts (a browser session cookie instead of a bearer token) and the
same audit log. Server-rendered Jinja2 with a little vanilla JavaScript; everything
essential works with JavaScript off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def install(app: FastAPI) -> None:
    """Include the pages' router and their error pages (idempotent)."""
    from withdrawal.web import auth, errors, pages, views

    if getattr(app.state, "web_installed", False):
        return
    app.state.web_installed = True
    app.include_router(views.router)
    app.add_exception_handler(pages.LoginRequired, errors.login_required_handler)
    app.add_exception_handler(auth.CsrfError, errors.csrf_handler)
    api_handler: Handler | None = app.exception_handlers.get(StarletteHTTPException)

    async def http_errors(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if errors.is_web_path(request.url.path):
            return errors.http_error_page(request, exc)
        if api_handler is None:
            raise exc
        out = api_handler(request, exc)
        return await out if not isinstance(out, Response) else out

    app.add_exception_handler(StarletteHTTPException, http_errors)


__all__ = ["install"]
