"""The web service: REST API, CDS Hooks 2.0 and the patient course over time.

``create_service(settings)`` builds its FastAPI application (the whole application, pages
included, is built by :func:`withdrawal.app.create_app`); ``Settings`` reads the environment
(prefix ``WITHDRAWAL_``).
"""

from withdrawal.service.app import create_service
from withdrawal.service.config import Settings

__all__ = ["Settings", "create_service"]
