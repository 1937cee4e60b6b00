"""The buprenorphine start pathway page of one patient (clinicians): ``/app/patients/{id}/pathway``.

Its own router, included in the pages' router (:mod:`withdrawal.web.views`), whose rendering,
sign-in and audited record access the page reuses.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from withdrawal.plan.pathway import build_pathway
from withdrawal.service import records
from withdrawal.service.deps import KbDep, SessionDep

router = APIRouter(include_in_schema=False)


@router.get("/app/patients/{patient_id}/pathway", response_class=HTMLResponse)
def pathway_page(patient_id: int, request: Request, session: SessionDep, kb: KbDep) -> Response:
    """Which buprenorphine start, its schedule, COWS rechecks, hand-off and a chart note to copy."""
    from withdrawal.web import views

    user = views.require_clinician(request, session)
    patient = views.open_patient(session, user, patient_id, action="read", resource="pathway")
    result = records.assess_record(session, patient, kb)
    pathway = build_pathway(result)
    session.commit()
    return views.render(request, "pathway.html", {"patient": patient, "p": pathway}, user=user)
