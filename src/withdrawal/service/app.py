"""The service's FastAPI application: REST API and CDS Hooks, built explicitly by :func:`create_service`.

The pages and the SMART launch are added by the composition root (:mod:`withdrawal.app`), which is
what ``withdrawal serve`` runs; the service never imports them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from withdrawal import __version__
from withdrawal.errors import WithdrawalError
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.service import errors
from withdrawal.service.config import Settings
from withdrawal.service.db import make_engine, migrate, session_factory
from withdrawal.service.limits import EdgeGuard

log = logging.getLogger("withdrawal.service")

DESCRIPTION = (
    "Clinician decision support on tramadol and opioid withdrawal: patient records over time, "
    "stateless assessment, monitoring alerts and CDS Hooks 2.0 services. Never a self-treatment guide."
)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (413), declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await _send_413(send)
                    return
        seen = 0

        async def limited() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _send_413(send)


class AccessLog:
    """One log line per request: method, route template, status, time; never ids, query or body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def capture(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if log.isEnabledFor(logging.INFO):
                route = getattr(scope.get("route"), "path", "-")
                log.info("%s %s %s %.1fms", scope.get("method"), route, status, 1000 * (time.perf_counter() - start))


class Contained:
    """The outermost layer: an unhandled error ends here, after the 500 was sent.

    Starlette's error middleware answers 500 and then raises the exception again for the
    server to log; uvicorn's traceback would carry the exception's message, and a database
    error's message holds the SQL parameters (a patient's name, scale items, drug and dose;
    on PostgreSQL the whole failing row). The error handler has already logged the type,
    route and request id, so nothing more is logged here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # already answered and logged, without its message
            if scope["type"] != "http":
                raise
            log.debug("request ended by %s after the 500", type(exc).__name__)


class Service(FastAPI):
    """FastAPI with :class:`Contained` outside Starlette's own error middleware."""

    def build_middleware_stack(self) -> ASGIApp:
        return Contained(super().build_middleware_stack())


QUIET_LOGGERS = ("httpx", "httpcore", "sqlalchemy.engine", "sqlalchemy.pool", "alembic.runtime.migration")


def quiet_libraries() -> None:
    """Library loggers that would name URLs or SQL (httpx logs each FHIR fetch URL with the patient id)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def no_card_links(_request: Any, _patient_id: str | None) -> list[dict[str, Any]]:
    """CDS card links to other apps: none unless the composition root installs an app that makes them."""
    return []


class _TooLarge(WithdrawalError):
    pass


async def _send_413(send: Send) -> None:
    body = b'{"detail":"request body too large"}'
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_service(
    settings: Settings | None = None,
    *,
    kb: KnowledgeBase | None = None,
    fhir_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the service; the database is created and migrated to the latest schema first."""
    from withdrawal.service.cds.jwt_auth import KeyRing, ReplayGuard
    from withdrawal.service.cds.prefetch import FhirPolicy, Limiter
    from withdrawal.service.cds.routes import decoded_here
    from withdrawal.service.cds.routes import router as cds_router
    from withdrawal.service.routes import api_router

    settings = settings or Settings()
    kb = kb or default_kb()
    engine = make_engine(settings.db_url)
    migrate(engine)
    quiet_libraries()
    app = Service(
        title="withdrawal",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        openapi_tags=[
            {"name": "auth"},
            {"name": "assess"},
            {"name": "patients"},
            {"name": "monitoring"},
            {"name": "cds-hooks", "description": "CDS Hooks 2.0 services for EHRs"},
        ],
    )
    app.state.settings = settings
    app.state.kb = kb
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.fhir_transport = fhir_transport
    app.state.card_links = no_card_links  # the composition root adds the SMART app's links
    app.state.fhir_policy = FhirPolicy.from_settings(settings.cds_fhir_servers, settings.cds_fhir_private_networks)
    app.state.fhir_limiter = Limiter(settings.cds_fhir_max_concurrent)
    app.state.fhir_tls = httpx.create_ssl_context()  # once: building it reads the CA bundle (~20 ms)
    app.state.cds_keys = KeyRing.from_settings(settings)  # parsed once; a changed JWKS file is reloaded
    app.state.cds_replay = ReplayGuard()
    errors.install(app)
    app.include_router(api_router)
    app.include_router(cds_router)

    # NUL and non-finite numbers: 422 before any route or database sees them (the CDS routes check their own)
    app.add_middleware(EdgeGuard, decoded_by_route=decoded_here)
    app.add_middleware(AccessLog)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cds_cors_origins:
        app.add_middleware(CdsCors, origins=settings.cds_cors_origins)
    return app


class CdsCors:
    """CORS for browser-based EHR clients, on the CDS Hooks paths only and for the configured origins only
    (``WITHDRAWAL_CDS_CORS_ORIGINS``); the JWT travels in the Authorization header, never a cookie."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        from starlette.middleware.cors import CORSMiddleware

        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=list(origins), allow_methods=["GET", "POST", "OPTIONS"],
                                   allow_headers=["Authorization", "Content-Type"], allow_credentials=False,
                                   max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/cds-services" or path.startswith("/cds-services/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
