"""The pages' router, assembled from one module per audience and part.

- :mod:`~withdrawal.web.public`: anyone: start page, patient information, language, static files;
- :mod:`~withdrawal.web.account`: sign in and out, the signed-in user's home;
- clinicians and patients: :mod:`~withdrawal.web.patients` (list, record forms, assessment, plan,
  a patient's diary), :mod:`~withdrawal.web.scales` (COWS, SOWS), :mod:`~withdrawal.web.course`
  (course, doses, handout), :mod:`~withdrawal.web.tools` (simulator, interactions, evidence),
  :mod:`~withdrawal.web.pathway_view` (buprenorphine start);
- shared: :mod:`~withdrawal.web.pages` (render, sign-in checks, audited record access) and
  :mod:`~withdrawal.web.errors` (error pages).

Every read and write of patient data goes into the service's audit log through the request's unit
of work (:class:`withdrawal.service.deps.UnitOfWork`), the same as the REST API; a patient asking
for another patient's page gets the same 404 as for a record that does not exist.
"""

from __future__ import annotations

from fastapi import APIRouter

from withdrawal.web import account, course, pathway_view, patients, public, scales, tools
from withdrawal.web.errors import csrf_handler, http_error_page, is_web_path, login_required_handler
from withdrawal.web.pages import LoginRequired, render, templates

router = APIRouter(include_in_schema=False)
# NOTE: order matters where paths overlap: /info/help before /info/{section_id} (both in public),
# /app/patients/new before /app/patients/{patient_id} (both in patients).
for part in (public, account, patients, scales, course, tools, pathway_view):
    router.include_router(part.router)

__all__ = [
    "LoginRequired", "csrf_handler", "http_error_page", "is_web_path", "login_required_handler", "render", "router",
    "templates",
]
