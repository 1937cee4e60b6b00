"""Domain and framework errors mapped to HTTP: field names, never a stack trace.

* InputError, RequestValidationError -> 422 with ``[{field, message}]``
* MissingData (CDS Hooks data that cannot be had) -> 412
* CdsAuthError -> 401
* anything unexpected -> 500 with a request id only; the log line names the
  exception type and route, never the request body.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from withdrawal.errors import InputError, WithdrawalError

log = logging.getLogger("withdrawal.service")


class MissingData(WithdrawalError):
    """Data a CDS service needs is neither prefetched nor fetchable (HTTP 412)."""


class CdsAuthError(WithdrawalError):
    """The CDS Hooks bearer JWT is missing or not acceptable (HTTP 401)."""


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [{"field": _loc(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
    return JSONResponse({"detail": items[:50]}, status_code=422)


def _input(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputError)
    msg = str(exc).removeprefix(f"{exc.field}: ")
    return JSONResponse({"detail": [{"field": exc.field, "message": msg[:500]}]}, status_code=422)


def _missing(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=412)


def _cds_auth(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _domain(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)[:500]}, status_code=422)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    rid = uuid.uuid4().hex[:12]
    route = getattr(request.scope.get("route"), "path", "?")
    log.error("unhandled %s on %s %s (request %s)", type(exc).__name__, request.method, route, rid)
    return JSONResponse({"detail": "internal error", "request_id": rid}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(InputError, _input)
    app.add_exception_handler(MissingData, _missing)
    app.add_exception_handler(CdsAuthError, _cds_auth)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(WithdrawalError, _domain)
    app.add_exception_handler(Exception, _unexpected)
