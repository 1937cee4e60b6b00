"""REST routers, one per resource."""

from fastapi import APIRouter

from withdrawal.service.routes import assess, auth, monitoring, patients

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(assess.router)
api_router.include_router(patients.router)
api_router.include_router(monitoring.router)

__all__ = ["api_router"]
