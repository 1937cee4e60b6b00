"""Trends and monitoring alerts per patient; the audit log for clinicians."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from withdrawal.service import records, schemas
from withdrawal.service.deps import Clinician, CurrentUser, KbDep, PatientId, SettingsDep, UowDep, patient_for
from withdrawal.service.models import AuditEntry, utcnow

router = APIRouter(tags=["monitoring"], responses=schemas.errors(401, 403, 404, 422))
ERR: dict[int | str, dict[str, Any]] = {404: {"model": schemas.ErrorOut}}


@router.get("/patients/{patient_id}/trends", response_model=schemas.TrendsOut, responses=ERR)
def trends(patient_id: PatientId, uow: UowDep, user: CurrentUser, kb: KbDep) -> schemas.TrendsOut:
    """COWS and SOWS totals over time with their bands, and tramadol given per day."""
    patient = patient_for(uow, user, patient_id, action="read", resource="trends")
    out = records.trends(session=uow.session, patient=patient, kb=kb)
    uow.audit(actor=user, action="read", resource="trends", patient_id=patient_id)
    return out


@router.get("/patients/{patient_id}/alerts", response_model=schemas.AlertsOut, responses=ERR)
def alerts(
    patient_id: PatientId, uow: UowDep, user: CurrentUser, kb: KbDep, settings: SettingsDep
) -> schemas.AlertsOut:
    """Monitoring alerts at this moment, most severe first, with their sources."""
    patient = patient_for(uow, user, patient_id, action="read", resource="alerts")
    found, sources = records.alerts(
        session=uow.session, patient=patient, kb=kb, thresholds=settings.thresholds(), now=utcnow()
    )
    uow.audit(actor=user, action="read", resource="alerts", patient_id=patient_id)
    return schemas.AlertsOut(
        patient_id=patient_id, alerts=[schemas.AlertOut.model_validate(a.to_dict()) for a in found], sources=sources
    )


@router.get("/audit", response_model=list[schemas.AuditOut])
def audit_log(
    uow: UowDep,
    user: Clinician,
    patient_id: int | None = Query(None, ge=1, le=schemas.MAX_ID),
    limit: int = Query(200, ge=1, le=5000),
) -> Sequence[AuditEntry]:
    """Who read or wrote what, and when (newest first)."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if patient_id is not None:
        q = q.where(AuditEntry.patient_id == patient_id)
    rows = uow.session.scalars(q).all()
    uow.audit(actor=user, action="read", resource="audit_log", patient_id=patient_id)
    return rows
