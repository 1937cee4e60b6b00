"""REST routers, one per resource."""

from fastapi import APIRouter

from withdrawal.service.routes import assess, auth, fhir_out, monitoring, pathway, patients

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(assess.router)
api_router.include_router(patients.router)
api_router.include_router(monitoring.router)
api_router.include_router(pathway.router)
api_router.include_router(fhir_out.router)

__all__ = ["api_router"]
