"""Service layer: the patient course kept over time, built on the domain functions.

Functions take keyword-only arguments and never commit: the route owns the
transaction (one request, one transaction).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from withdrawal import __version__
from withdrawal.assess import Assessment, assess_patient
from withdrawal.errors import InputError
from withdrawal.intake import read_patient
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.monitoring import Alert, DoseRecord, ScaleRecord, Thresholds, evaluate, trend
from withdrawal.monitoring.alerts import daily_totals
from withdrawal.patient import parse_patient
from withdrawal.scales import score
from withdrawal.service import schemas
from withdrawal.service.limits import stored_window
from withdrawal.service.models import (
    MedicationAdministration,
    Patient,
    Plan,
    ScaleAssessment,
    User,
    aware,
    utcnow,
)


def create_patient(*, session: Session, body: schemas.PatientCreate, user: User, kb: KnowledgeBase) -> Patient:
    data = read_patient(body.data, kb)
    if body.external_id and session.scalar(select(Patient).where(Patient.external_id == body.external_id)):
        raise InputError("external_id", "already used by another patient")
    now = utcnow()
    row = Patient(
        display_name=body.display_name,
        external_id=body.external_id,
        data=data.model_dump(mode="json"),
        created_by=user.id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def update_patient(*, patient: Patient, body: schemas.PatientUpdate, kb: KnowledgeBase) -> Patient:
    if body.data is not None:
        patient.data = read_patient(body.data, kb).model_dump(mode="json")
    if body.display_name is not None:
        patient.display_name = body.display_name
    patient.updated_at = utcnow()
    return patient


def add_scale(
    *, session: Session, patient: Patient, body: schemas.ScaleAssessmentCreate, user: User, kb: KnowledgeBase
) -> ScaleAssessment:
    result = score(body.items, kb.scales[body.scale])
    recorded = aware(body.recorded_at) if body.recorded_at else utcnow()
    row = ScaleAssessment(
        patient_id=patient.id,
        scale=body.scale,
        total=result.total,
        band=result.band,
        items=dict(result.items),
        recorded_at=recorded,
        recorded_by=user.id,
        kb_version=kb.version,
        software_version=__version__,
    )
    session.add(row)
    session.flush()
    return row


def latest_cows(session: Session, patient_id: int) -> ScaleAssessment | None:
    """The latest COWS within the time bounds: a row dated in the future (stored before the bound) is not "latest"."""
    return latest_score(session, patient_id, "cows")


def latest_score(session: Session, patient_id: int, scale: str) -> ScaleAssessment | None:
    start, end = stored_window(utcnow())
    return session.scalar(
        select(ScaleAssessment)
        .where(
            ScaleAssessment.patient_id == patient_id,
            ScaleAssessment.scale == scale,
            ScaleAssessment.recorded_at >= start,
            ScaleAssessment.recorded_at <= end,
        )
        .order_by(ScaleAssessment.recorded_at.desc(), ScaleAssessment.id.desc())
        .limit(1)
    )


def assess_record(session: Session, patient: Patient, kb: KnowledgeBase, *, override: str | None = None) -> Assessment:
    """Assess the stored record with its latest COWS (``override``: a clinician's reason for a tramadol
    schedule although the verdict is ``avoid``; never unlocks ``contraindicated``)."""
    data = dict(patient.data)
    cows = latest_cows(session, patient.id)
    if cows is not None:
        data["cows"] = dict(cows.items)
    return assess_patient(parse_patient(data), kb, override=override)


def active_plan(session: Session, patient_id: int) -> Plan | None:
    """The patient's active plan (the newest, should several ever be active)."""
    return session.scalar(select(Plan).where(Plan.patient_id == patient_id, Plan.status == "active")
                          .order_by(Plan.id.desc()).limit(1))


def make_plan(*, session: Session, patient: Patient, body: schemas.PlanCreate, user: User, kb: KnowledgeBase) -> Plan:
    """The stored record's assessment kept as the active plan; the previous one is superseded.

    A taper plan needs the tramadol schedule the plan prints: where none is printed (tramadol avoided
    or contraindicated) it is refused here, so the API, the pages and any later path refuse it alike."""
    result = assess_record(session, patient, kb)
    if body.taper and not result.plan.tramadol_regimen:
        raise InputError(
            "taper",
            f"there is no tramadol taper for this patient (verdict: {result.screen.verdict}); save the plan "
            "without it",
            value=True,
        )
    for old in session.scalars(select(Plan).where(Plan.patient_id == patient.id, Plan.status == "active")):
        old.status = "superseded"
    row = Plan(
        patient_id=patient.id,
        status="active",
        taper=body.taper,
        note=body.note,
        tramadol_verdict=result.screen.verdict,
        tramadol_max_daily_mg=result.screen.max_daily_dose_mg,
        result=result.to_dict(),
        kb_version=kb.version,
        software_version=__version__,
        created_by=user.id,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def add_administration(
    *, session: Session, patient: Patient, body: schemas.AdministrationCreate, user: User, kb: KnowledgeBase
) -> MedicationAdministration:
    ids = kb.resolve_drug_name(body.drug)
    if len(ids) != 1:
        raise InputError(
            "drug", "must name one known ingredient" if ids else "not recognised", value=body.drug, allowed=ids or None
        )
    row = MedicationAdministration(
        patient_id=patient.id,
        drug=ids[0],
        dose_mg=body.dose_mg,
        kind=body.kind,
        days_supply=body.days_supply,
        at=aware(body.at) if body.at else utcnow(),
        recorded_by=user.id,
    )
    session.add(row)
    session.flush()
    return row


def _course(session: Session, patient_id: int) -> tuple[list[ScaleRecord], list[DoseRecord]]:
    """Scores and doses within the time bounds (rows stored before the bounds existed are skipped)."""
    start, end = stored_window(utcnow())
    scores = [
        ScaleRecord("cows" if a.scale == "cows" else "sows", a.total, a.items, aware(a.recorded_at))
        for a in session.scalars(
            select(ScaleAssessment).where(
                ScaleAssessment.patient_id == patient_id,
                ScaleAssessment.recorded_at >= start,
                ScaleAssessment.recorded_at <= end,
            )
        )
    ]
    doses = [
        DoseRecord(
            m.drug, m.dose_mg, aware(m.at), "dispense" if m.kind == "dispense" else "administration", m.days_supply
        )
        for m in session.scalars(
            select(MedicationAdministration).where(
                MedicationAdministration.patient_id == patient_id,
                MedicationAdministration.at >= start,
                MedicationAdministration.at <= end,
            )
        )
    ]
    return scores, doses


def trends(*, session: Session, patient: Patient, kb: KnowledgeBase) -> schemas.TrendsOut:
    scores, doses = _course(session, patient.id)

    def pts(scale: str) -> list[schemas.TrendPointOut]:
        return [
            schemas.TrendPointOut(recorded_at=p.recorded_at, total=p.total, band=p.band)
            for p in trend(scores, scale, kb)
        ]

    daily = {d.isoformat(): v for d, v in sorted(daily_totals(doses, "tramadol").items())}
    return schemas.TrendsOut(patient_id=patient.id, cows=pts("cows"), sows=pts("sows"), tramadol_daily_mg=daily)


def alerts(
    *, session: Session, patient: Patient, kb: KnowledgeBase, thresholds: Thresholds, now: datetime,
    assessed: Assessment | None = None,
) -> tuple[list[Alert], dict[str, dict[str, Any]]]:
    """The course's alerts and their sources; ``assessed``: the stored record's assessment when the caller has it."""
    scores, doses = _course(session, patient.id)
    plan = active_plan(session, patient.id)
    assessed = assessed or assess_record(session, patient, kb)
    limit = plan.tramadol_max_daily_mg if plan else assessed.screen.max_daily_dose_mg
    found = evaluate(
        scores=scores,
        doses=doses,
        kb=kb,
        thresholds=thresholds,
        tramadol_max_daily_mg=limit,
        taper_active=bool(plan and plan.taper),
        now=now,
        suicidal_ideation="suicidal_ideation" in assessed.patient.conditions,
    )
    cited = {s for a in found for s in a.sources}
    sources = {
        sid: {**kb.sources[sid].model_dump(mode="json", exclude_none=True), "link": kb.sources[sid].link}
        for sid in sorted(cited)
    }
    return found, sources
