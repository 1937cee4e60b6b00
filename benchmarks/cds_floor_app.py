"""The service with the CDS clinical work stubbed out, for ``cds_order_sign.py --floor``.

Order-sign then still verifies the JWT, parses and validates the request, consumes
the ``jti`` and commits the audit row, and answers, but reads no draft order, so it
maps no FHIR, screens nothing and makes no cards. Its ratio to ``/health`` is the
most any clinical logic could reach in this stack on this machine. Never served.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from withdrawal.service import Settings, create_app
from withdrawal.service.cds import routes


def app() -> FastAPI:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    def no_drafts(*_args: Any, **_kwargs: Any) -> list[Any]:
        return []

    routes._drafts = no_drafts
    return create_app(Settings())
