"""The web service: REST API, CDS Hooks 2.0 and the patient course over time.

``create_app(settings)`` builds the FastAPI application; ``Settings`` reads the
environment (prefix ``WITHDRAWAL_``).
"""

from withdrawal.service.app import create_app
from withdrawal.service.config import Settings

__all__ = ["Settings", "create_app"]
