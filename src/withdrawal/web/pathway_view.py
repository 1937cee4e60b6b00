"""The buprenorphine start pathway page of one patient (clinicians): ``/app/patients/{id}/pathway``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from withdrawal.pathway import build_pathway
from withdrawal.service import records
from withdrawal.service.deps import KbDep, UowDep
from withdrawal.web.pages import open_patient, render, require_clinician

router = APIRouter(include_in_schema=False)


@router.get("/app/patients/{patient_id}/pathway", response_class=HTMLResponse)
def pathway_page(patient_id: int, request: Request, uow: UowDep, kb: KbDep) -> Response:
    """Which buprenorphine start, its schedule, COWS rechecks, hand-off and a chart note to copy."""
    user = require_clinician(request, uow.session)
    patient = open_patient(uow, user, patient_id, action="read", resource="pathway")
    pathway = build_pathway(records.assess_record(uow.session, patient, kb))
    return render(request, "pathway.html", {"patient": patient, "p": pathway}, user=user)
