"""Patient records and their course: scale assessments, plans, medication administrations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from withdrawal.service import audit, idempotency, records, schemas
from withdrawal.service.deps import Clinician, CurrentUser, KbDep, PatientId, SessionDep, patient_for
from withdrawal.service.idempotency import IdemKey
from withdrawal.service.models import MedicationAdministration, Patient, Plan, ScaleAssessment

router = APIRouter(prefix="/patients", tags=["patients"], responses=schemas.errors(400, 401, 403, 404, 422))
ERR: dict[int | str, dict[str, Any]] = {404: {"model": schemas.ErrorOut}, 422: {"model": schemas.ErrorOut}}
T = TypeVar("T")
WRITE: dict[int | str, dict[str, Any]] = {**ERR, 409: {"model": schemas.ErrorOut}}


@router.get("", response_model=list[schemas.PatientPublic])
def list_patients(
    session: SessionDep,
    user: CurrentUser,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=schemas.MAX_ID),
) -> Sequence[Patient]:
    """Clinicians see every record; a patient sees only their own."""
    q = select(Patient).order_by(Patient.id).limit(limit).offset(offset)
    if user.role != "clinician":
        q = q.where(Patient.id == user.patient_id)
    rows = session.scalars(q).all()
    for p in rows:
        audit.record(session, actor=user, action="read", resource="patient", resource_id=p.id, patient_id=p.id)
    session.commit()
    return rows


def _replayed(session: SessionDep, model: type[T], rid: int) -> T:
    """The resource an earlier request with the same Idempotency-Key created (its retry's answer)."""
    row = session.get(model, rid)
    if row is None:  # the resource the key created is gone: the key names nothing now
        raise HTTPException(409, "the resource this Idempotency-Key created no longer exists; use a new key")
    return row


@router.post("", response_model=schemas.PatientPublic, status_code=201, responses=WRITE)
def create_patient(
    body: schemas.PatientCreate, session: SessionDep, user: Clinician, kb: KbDep, key: IdemKey = None
) -> Patient:
    """Create a record from the version-1 input or a FHIR R4 Bundle."""
    scope = "POST /patients"
    if (rid := idempotency.seen(session, user, key, scope, body)) is not None:
        return _replayed(session, Patient, rid)
    row = records.create_patient(session=session, body=body, user=user, kb=kb)
    audit.record(session, actor=user, action="create", resource="patient", resource_id=row.id, patient_id=row.id)
    idempotency.remember(session, user, key, scope, body, "patient", row.id)
    if (rid := idempotency.commit(session, user, key, scope, body)) is not None:
        return _replayed(session, Patient, rid)
    return row


@router.get("/{patient_id}", response_model=schemas.PatientPublic, responses=ERR)
def read_patient(patient_id: PatientId, session: SessionDep, user: CurrentUser) -> Patient:
    row = patient_for(session, user, patient_id, action="read", resource="patient")
    audit.record(session, actor=user, action="read", resource="patient", resource_id=row.id, patient_id=row.id)
    session.commit()
    return row


@router.put("/{patient_id}", response_model=schemas.PatientPublic, responses=ERR)
def update_patient(
    patient_id: PatientId, body: schemas.PatientUpdate, session: SessionDep, user: Clinician, kb: KbDep
) -> Patient:
    row = patient_for(session, user, patient_id, action="update", resource="patient")
    records.update_patient(patient=row, body=body, kb=kb)
    audit.record(session, actor=user, action="update", resource="patient", resource_id=row.id, patient_id=row.id)
    session.commit()
    return row


@router.get("/{patient_id}/assessments", response_model=list[schemas.ScaleAssessmentPublic], responses=ERR)
def list_assessments(patient_id: PatientId, session: SessionDep, user: CurrentUser) -> Sequence[ScaleAssessment]:
    patient_for(session, user, patient_id, action="read", resource="assessment")
    rows = session.scalars(
        select(ScaleAssessment).where(ScaleAssessment.patient_id == patient_id).order_by(ScaleAssessment.recorded_at)
    ).all()
    audit.record(session, actor=user, action="read", resource="assessment", patient_id=patient_id)
    session.commit()
    return rows


@router.post(
    "/{patient_id}/assessments", response_model=schemas.ScaleAssessmentPublic, status_code=201, responses=WRITE
)
def add_assessment(
    patient_id: PatientId,
    body: schemas.ScaleAssessmentCreate,
    session: SessionDep,
    user: CurrentUser,
    kb: KbDep,
    key: IdemKey = None,
) -> ScaleAssessment:
    """Record a COWS (clinicians) or a SOWS (clinicians, or the patient for themselves)."""
    patient = patient_for(session, user, patient_id, action="create", resource="assessment")
    if body.scale == "cows" and user.role != "clinician":
        raise HTTPException(403, "the COWS is scored by a clinician")
    scope = f"POST /patients/{patient_id}/assessments"
    if (rid := idempotency.seen(session, user, key, scope, body)) is not None:
        return _replayed(session, ScaleAssessment, rid)
    row = records.add_scale(session=session, patient=patient, body=body, user=user, kb=kb)
    audit.record(session, actor=user, action="create", resource="assessment", resource_id=row.id, patient_id=patient_id)
    idempotency.remember(session, user, key, scope, body, "assessment", row.id)
    if (rid := idempotency.commit(session, user, key, scope, body)) is not None:
        return _replayed(session, ScaleAssessment, rid)
    return row


@router.get("/{patient_id}/plans", response_model=list[schemas.PlanPublic], responses=ERR)
def list_plans(patient_id: PatientId, session: SessionDep, user: CurrentUser) -> Sequence[Plan]:
    patient_for(session, user, patient_id, action="read", resource="plan")
    rows = session.scalars(select(Plan).where(Plan.patient_id == patient_id).order_by(Plan.id)).all()
    audit.record(session, actor=user, action="read", resource="plan", patient_id=patient_id)
    session.commit()
    return rows


@router.post("/{patient_id}/plans", response_model=schemas.PlanPublic, status_code=201, responses=WRITE)
def create_plan(
    patient_id: PatientId, body: schemas.PlanCreate, session: SessionDep, user: Clinician, kb: KbDep,
    key: IdemKey = None,
) -> Plan:
    """Assess the stored record (with its latest COWS) and keep the answer as the active plan."""
    patient = patient_for(session, user, patient_id, action="create", resource="plan")
    scope = f"POST /patients/{patient_id}/plans"
    if (rid := idempotency.seen(session, user, key, scope, body)) is not None:
        return _replayed(session, Plan, rid)
    row = records.make_plan(session=session, patient=patient, body=body, user=user, kb=kb)
    audit.record(session, actor=user, action="create", resource="plan", resource_id=row.id, patient_id=patient_id)
    idempotency.remember(session, user, key, scope, body, "plan", row.id)
    if (rid := idempotency.commit(session, user, key, scope, body)) is not None:
        return _replayed(session, Plan, rid)
    return row


@router.get("/{patient_id}/administrations", response_model=list[schemas.AdministrationPublic], responses=ERR)
def list_administrations(
    patient_id: PatientId, session: SessionDep, user: CurrentUser
) -> Sequence[MedicationAdministration]:
    patient_for(session, user, patient_id, action="read", resource="administration")
    rows = session.scalars(
        select(MedicationAdministration)
        .where(MedicationAdministration.patient_id == patient_id)
        .order_by(MedicationAdministration.at)
    ).all()
    audit.record(session, actor=user, action="read", resource="administration", patient_id=patient_id)
    session.commit()
    return rows


@router.post(
    "/{patient_id}/administrations", response_model=schemas.AdministrationPublic, status_code=201, responses=WRITE
)
def add_administration(
    patient_id: PatientId,
    body: schemas.AdministrationCreate,
    session: SessionDep,
    user: Clinician,
    kb: KbDep,
    key: IdemKey = None,
) -> MedicationAdministration:
    """Record a dose given or a supply dispensed."""
    patient = patient_for(session, user, patient_id, action="create", resource="administration")
    scope = f"POST /patients/{patient_id}/administrations"
    if (rid := idempotency.seen(session, user, key, scope, body)) is not None:
        return _replayed(session, MedicationAdministration, rid)
    row = records.add_administration(session=session, patient=patient, body=body, user=user, kb=kb)
    audit.record(
        session, actor=user, action="create", resource="administration", resource_id=row.id, patient_id=patient_id
    )
    idempotency.remember(session, user, key, scope, body, "administration", row.id)
    if (rid := idempotency.commit(session, user, key, scope, body)) is not None:
        return _replayed(session, MedicationAdministration, rid)
    return row
