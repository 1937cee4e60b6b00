"""The composition root: the one place that builds the whole application.

The service (REST API, CDS Hooks), the pages (clinicians, patients and families) and the SMART
App Launch are separate packages that do not import each other upward; this module puts them
together on one FastAPI app, one database, one knowledge base and one audit log. ``withdrawal
serve`` and the uvicorn factories (:func:`create_app`, :func:`worker_app`, :func:`demo_app`) build the
app here.
"""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI

from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.service import summaries
from withdrawal.service.app import create_service
from withdrawal.service.config import Settings


def create_app(
    settings: Settings | None = None,
    *,
    kb: KnowledgeBase | None = None,
    fhir_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The service, the pages and the SMART launch on one app; the database is created and migrated first."""
    from withdrawal import web
    from withdrawal.smart import views as smart_views

    app = create_service(settings, kb=kb, fhir_transport=fhir_transport)
    # the patient list's stored summaries, kept in each write's transaction (issue 17)
    summaries.install(app.state.sessions, app.state.kb, app.state.settings.thresholds())
    web.install(app)  # the HTML pages (issue 6): same database, accounts and audit log
    smart_views.install(app)  # SMART App Launch from an EHR (issue 15, docs/smart.md)
    app.state.card_links = smart_views.smart_links  # CDS cards link to the SMART app when it is on
    return app


def worker_app() -> FastAPI:
    """The app of one ``withdrawal serve --workers N`` worker (a uvicorn factory), settings from the environment."""
    from withdrawal.service.workers import LOG_FORMAT, freeze_start_up_heap

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    application = create_app(Settings())
    freeze_start_up_heap()
    return application


def demo_app() -> FastAPI:
    """App factory for uvicorn: settings from the environment, demo data seeded.

    ``uvicorn --factory withdrawal.app:demo_app`` with the ``WITHDRAWAL_*`` settings in the environment.
    """
    from withdrawal.web.demo import seed_web

    settings = Settings()
    if not (settings.demo_clinician_password and settings.demo_patient_password):
        raise SystemExit("set WITHDRAWAL_DEMO_CLINICIAN_PASSWORD and WITHDRAWAL_DEMO_PATIENT_PASSWORD")
    kb = default_kb()
    app = create_app(settings, kb=kb)
    seed_web(app.state.sessions, settings, kb)
    return app
