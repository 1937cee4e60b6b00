"""Patient records and their course: scale assessments, plans, medication administrations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from withdrawal.service import idempotency, records, schemas
from withdrawal.service.deps import Clinician, CurrentUser, KbDep, PatientId, UnitOfWork, UowDep, patient_for
from withdrawal.service.idempotency import IdemKey
from withdrawal.service.models import MedicationAdministration, Patient, Plan, ScaleAssessment

router = APIRouter(prefix="/patients", tags=["patients"], responses=schemas.errors(400, 401, 403, 404, 422))
ERR: dict[int | str, dict[str, Any]] = {404: {"model": schemas.ErrorOut}, 422: {"model": schemas.ErrorOut}}
T = TypeVar("T")
R = TypeVar("R", Patient, ScaleAssessment, Plan, MedicationAdministration)
WRITE: dict[int | str, dict[str, Any]] = {**ERR, 409: {"model": schemas.ErrorOut}}


@router.get("", response_model=list[schemas.PatientPublic])
def list_patients(
    uow: UowDep,
    user: CurrentUser,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=schemas.MAX_ID),
) -> Sequence[Patient]:
    """Clinicians see every record; a patient sees only their own."""
    q = select(Patient).order_by(Patient.id).limit(limit).offset(offset)
    if user.role != "clinician":
        q = q.where(Patient.id == user.patient_id)
    rows = uow.session.scalars(q).all()
    for p in rows:
        uow.audit(actor=user, action="read", resource="patient", resource_id=p.id, patient_id=p.id)
    return rows


def _replayed(uow: UnitOfWork, model: type[T], rid: int) -> T:
    """The resource an earlier request with the same Idempotency-Key created (its retry's answer)."""
    row = uow.session.get(model, rid)
    if row is None:  # the resource the key created is gone: the key names nothing now
        raise HTTPException(409, "the resource this Idempotency-Key created no longer exists; use a new key")
    return row


def _create(
    uow: UnitOfWork, user: Any, key: str | None, body: Any, *, scope: str, model: type[R], resource: str,
    make: Callable[[], R], patient_id: int | None = None,
) -> R:
    """One create under an Idempotency-Key: a retry gets the first answer, the create is audited, and a
    concurrent request with the same key that committed first wins (its row is the answer)."""
    if (rid := idempotency.seen(uow.session, user, key, scope, body)) is not None:
        return _replayed(uow, model, rid)
    row = make()
    uow.audit(actor=user, action="create", resource=resource, resource_id=row.id,
              patient_id=row.id if patient_id is None else patient_id)
    idempotency.remember(uow.session, user, key, scope, body, resource, row.id)
    if (rid := idempotency.commit(uow, user, key, scope, body)) is not None:
        return _replayed(uow, model, rid)
    return row


@router.post("", response_model=schemas.PatientPublic, status_code=201, responses=WRITE)
def create_patient(
    body: schemas.PatientCreate, uow: UowDep, user: Clinician, kb: KbDep, key: IdemKey = None
) -> Patient:
    """Create a record from the version-1 input or a FHIR R4 Bundle."""
    return _create(
        uow, user, key, body, scope="POST /patients", model=Patient, resource="patient",
        make=lambda: records.create_patient(session=uow.session, body=body, user=user, kb=kb),
    )


@router.get("/{patient_id}", response_model=schemas.PatientPublic, responses=ERR)
def read_patient(patient_id: PatientId, uow: UowDep, user: CurrentUser) -> Patient:
    row = patient_for(uow, user, patient_id, action="read", resource="patient")
    uow.audit(actor=user, action="read", resource="patient", resource_id=row.id, patient_id=row.id)
    return row


@router.put("/{patient_id}", response_model=schemas.PatientPublic, responses=ERR)
def update_patient(
    patient_id: PatientId, body: schemas.PatientUpdate, uow: UowDep, user: Clinician, kb: KbDep
) -> Patient:
    row = patient_for(uow, user, patient_id, action="update", resource="patient")
    records.update_patient(patient=row, body=body, kb=kb)
    uow.audit(actor=user, action="update", resource="patient", resource_id=row.id, patient_id=row.id)
    return row


@router.get("/{patient_id}/assessments", response_model=list[schemas.ScaleAssessmentPublic], responses=ERR)
def list_assessments(patient_id: PatientId, uow: UowDep, user: CurrentUser) -> Sequence[ScaleAssessment]:
    patient_for(uow, user, patient_id, action="read", resource="assessment")
    rows = uow.session.scalars(
        select(ScaleAssessment).where(ScaleAssessment.patient_id == patient_id).order_by(ScaleAssessment.recorded_at)
    ).all()
    uow.audit(actor=user, action="read", resource="assessment", patient_id=patient_id)
    return rows


@router.post(
    "/{patient_id}/assessments", response_model=schemas.ScaleAssessmentPublic, status_code=201, responses=WRITE
)
def add_assessment(
    patient_id: PatientId,
    body: schemas.ScaleAssessmentCreate,
    uow: UowDep,
    user: CurrentUser,
    kb: KbDep,
    key: IdemKey = None,
) -> ScaleAssessment:
    """Record a COWS (clinicians) or a SOWS (clinicians, or the patient for themselves)."""
    patient = patient_for(uow, user, patient_id, action="create", resource="assessment")
    if body.scale == "cows" and user.role != "clinician":
        raise HTTPException(403, "the COWS is scored by a clinician")
    return _create(
        uow, user, key, body, scope=f"POST /patients/{patient_id}/assessments", model=ScaleAssessment,
        resource="assessment", patient_id=patient_id,
        make=lambda: records.add_scale(session=uow.session, patient=patient, body=body, user=user, kb=kb),
    )


@router.get("/{patient_id}/plans", response_model=list[schemas.PlanPublic], responses=ERR)
def list_plans(patient_id: PatientId, uow: UowDep, user: CurrentUser) -> Sequence[Plan]:
    patient_for(uow, user, patient_id, action="read", resource="plan")
    rows = uow.session.scalars(select(Plan).where(Plan.patient_id == patient_id).order_by(Plan.id)).all()
    uow.audit(actor=user, action="read", resource="plan", patient_id=patient_id)
    return rows


@router.post("/{patient_id}/plans", response_model=schemas.PlanPublic, status_code=201, responses=WRITE)
def create_plan(
    patient_id: PatientId, body: schemas.PlanCreate, uow: UowDep, user: Clinician, kb: KbDep,
    key: IdemKey = None,
) -> Plan:
    """Assess the stored record (with its latest COWS) and keep the answer as the active plan."""
    patient = patient_for(uow, user, patient_id, action="create", resource="plan")
    return _create(
        uow, user, key, body, scope=f"POST /patients/{patient_id}/plans", model=Plan, resource="plan",
        patient_id=patient_id,
        make=lambda: records.make_plan(session=uow.session, patient=patient, body=body, user=user, kb=kb),
    )


@router.get("/{patient_id}/administrations", response_model=list[schemas.AdministrationPublic], responses=ERR)
def list_administrations(
    patient_id: PatientId, uow: UowDep, user: CurrentUser
) -> Sequence[MedicationAdministration]:
    patient_for(uow, user, patient_id, action="read", resource="administration")
    rows = uow.session.scalars(
        select(MedicationAdministration)
        .where(MedicationAdministration.patient_id == patient_id)
        .order_by(MedicationAdministration.at)
    ).all()
    uow.audit(actor=user, action="read", resource="administration", patient_id=patient_id)
    return rows


@router.post(
    "/{patient_id}/administrations", response_model=schemas.AdministrationPublic, status_code=201, responses=WRITE
)
def add_administration(
    patient_id: PatientId,
    body: schemas.AdministrationCreate,
    uow: UowDep,
    user: Clinician,
    kb: KbDep,
    key: IdemKey = None,
) -> MedicationAdministration:
    """Record a dose given or a supply dispensed."""
    patient = patient_for(uow, user, patient_id, action="create", resource="administration")
    return _create(
        uow, user, key, body, scope=f"POST /patients/{patient_id}/administrations",
        model=MedicationAdministration, resource="administration", patient_id=patient_id,
        make=lambda: records.add_administration(session=uow.session, patient=patient, body=body, user=user, kb=kb),
    )
