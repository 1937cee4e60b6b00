"""The COWS (clinicians) and SOWS (clinicians, or the patient for themselves) forms: scored by the
server on submit, every error listed at once next to its item."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Scale
from withdrawal.service import records, schemas
from withdrawal.service.deps import KbDep, UnitOfWork, UowDep
from withdrawal.service.models import Patient, User, utcnow
from withdrawal.web import answer, auth
from withdrawal.web.pages import open_patient, redirect, render, require_clinician, require_user

router = APIRouter(include_in_schema=False)


def parse_scale_form(form: dict[str, Any], scale: Scale) -> tuple[dict[str, int], dict[str, str]]:
    """Chosen scores by item and an error message per item left out or invalid."""
    chosen: dict[str, int] = {}
    errors: dict[str, str] = {}
    for item in scale.items:
        raw = form.get(item.id)
        if raw is None or raw == "":
            errors[item.id] = f"Choose an answer for “{item.label}”."
            continue
        try:
            value = int(str(raw))
        except ValueError:
            errors[item.id] = f"“{item.label}”: not a score."
            continue
        if value not in item.allowed_scores:
            errors[item.id] = f"“{item.label}”: {value} is not one of the scores on the form."
            continue
        chosen[item.id] = value
    return chosen, errors


def band_json(scale: Scale) -> list[dict[str, Any]]:
    return [{"min": b.min, "max": b.max, "key": b.key, "label": b.label, "sev": answer.severity(b.key)}
            for b in scale.bands]


def next_steps(kb: KnowledgeBase) -> list[dict[str, Any]]:
    """What a COWS total means for the next step: the buprenorphine start threshold (care.yaml) and the
    statements for below and from it (care.yaml ``cows_below_start``, ``cows_at_start``), with their sources."""
    start = kb.treatment("buprenorphine").start_cows_min
    if start is None:
        return []
    top = kb.scales["cows"].total_max
    below, at = kb.statement("cows_below_start"), kb.statement("cows_at_start")
    return [
        {"min": 0, "max": start - 1, "text": f"Below {start}: {below.text}", "sources": list(below.sources)},
        {"min": start, "max": top, "text": f"{start} or more: {at.text}", "sources": list(at.sources)},
    ]


def _minutes_ago(form: dict[str, Any], errors: dict[str, str]) -> datetime | None:
    """When the COWS was scored, from the form's minutes ago (0-720); None for now."""
    text = str(form.get("minutes_ago") or "").strip()
    if not text or text == "0":
        return None
    if not text.isdigit() or not 0 <= int(text) <= 720:
        errors["minutes_ago"] = "minutes_ago: whole minutes between 0 (now) and 720 (12 hours ago)"
        return None
    return utcnow() - timedelta(minutes=int(text))


async def _save_scale(request: Request, uow: UnitOfWork, kb: KnowledgeBase, user: User, patient_id: int,
                      scale_id: str, extra: dict[str, Any]) -> tuple[Patient, Response | None]:
    """Record a submitted COWS or SOWS; on invalid items, the form again with the errors (422)."""
    form = dict(await request.form())
    auth.check_csrf(request, form.get("csrf"))
    patient = open_patient(uow, user, patient_id, action="create", resource="assessment")
    scale = kb.scales[scale_id]
    chosen, errors = parse_scale_form(form, scale)
    when = _minutes_ago(form, errors) if scale_id == "cows" else None
    if errors:
        # Nothing is recorded: the attempt is audited as invalid (not as a create), the form shown again as a read.
        uow.rollback()
        uow.audit(actor=user, action="create", resource="assessment", patient_id=patient.id, outcome="invalid")
        uow.audit(actor=user, action="read", resource="patient", resource_id=patient.id, patient_id=patient.id)
        again = {"patient": patient, "scale": scale, "chosen": chosen, "errors": errors,
                 "minutes_ago": str(form.get("minutes_ago") or "0")[:10], **extra}
        return patient, render(request, f"{scale_id}_form.html", again, user=user, status=422)
    row = records.add_scale(session=uow.session, patient=patient, user=user, kb=kb,
                            body=schemas.ScaleAssessmentCreate(scale=scale_id, items=chosen, recorded_at=when))
    uow.audit(actor=user, action="create", resource="assessment", resource_id=row.id, patient_id=patient.id)
    return patient, None


@router.get("/app/patients/{patient_id}/cows", response_class=HTMLResponse)
def cows_form(patient_id: int, request: Request, uow: UowDep, kb: KbDep) -> Response:
    user = require_clinician(request, uow.session)
    patient = open_patient(uow, user, patient_id, action="read", resource="patient")
    scale = kb.scales["cows"]
    return render(request, "cows_form.html", {"patient": patient, "scale": scale, "chosen": {}, "errors": {},
                                              "bands": band_json(scale), "next_steps": next_steps(kb)}, user=user)


@router.post("/app/patients/{patient_id}/cows", response_class=HTMLResponse)
async def cows_submit(patient_id: int, request: Request, uow: UowDep, kb: KbDep) -> Response:
    user = require_clinician(request, uow.session)
    patient, failed = await _save_scale(request, uow, kb, user, patient_id, "cows",
                                        {"bands": band_json(kb.scales["cows"]), "next_steps": next_steps(kb)})
    return failed or redirect(f"/app/patients/{patient.id}?recorded=cows")


@router.get("/app/patients/{patient_id}/sows", response_class=HTMLResponse)
def sows_form(patient_id: int, request: Request, uow: UowDep, kb: KbDep) -> Response:
    user = require_user(request, uow.session)
    patient = open_patient(uow, user, patient_id, action="read", resource="patient")
    return render(request, "sows_form.html", {"patient": patient, "scale": kb.scales["sows"], "chosen": {},
                                              "errors": {}}, user=user)


@router.post("/app/patients/{patient_id}/sows", response_class=HTMLResponse)
async def sows_submit(patient_id: int, request: Request, uow: UowDep, kb: KbDep) -> Response:
    user = require_user(request, uow.session)
    patient, failed = await _save_scale(request, uow, kb, user, patient_id, "sows", {})
    if failed:
        return failed
    target = f"/app/patients/{patient.id}" if user.role != "clinician" else f"/app/patients/{patient.id}/course"
    return redirect(f"{target}?recorded=sows#chart")
