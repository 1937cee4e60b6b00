"""Demo data for the web pages (tests, screenshots), on top of ``withdrawal.service.demo.seed``.

Adds a patient for whom tramadol is contraindicated (an MAOI stopped 5 days ago), one with
a proposed taper for the simulator, a few days of SOWS and doses for the charts, and a second
patient account (``<demo patient username>2``, same password as the first) so that access
between patients can be shown. Idempotent. ``withdrawal.app.demo_app`` is the uvicorn factory:
``uvicorn --factory withdrawal.app:demo_app`` with the ``WITHDRAWAL_*`` settings in the
environment (demo passwords included).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.service import schemas
from withdrawal.service.config import Settings
from withdrawal.service.demo import KEPT, DemoCredentials, seed
from withdrawal.service.models import Patient, ScaleAssessment, User, utcnow
from withdrawal.service.records import add_administration, add_scale, create_patient
from withdrawal.service.security import hash_password

WEB_PATIENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("Demo patient D (MAOI stopped 5 days ago)", "demo-web-d", {
        "age_years": 45, "sex": "female", "opioid": {"substance": "heroin", "hours_since_last_use": 18},
        "medications": [{"name": "phenelzine", "status": "stopped", "days_since_stopped": 5}],
        "setting": "inpatient"}),
    ("Demo patient E (heroin, CYP2D6 intermediate)", "demo-web-e", {
        "age_years": 29, "sex": "male", "opioid": {"substance": "heroin", "hours_since_last_use": 14},
        "cyp2d6_phenotype": "intermediate", "setting": "outpatient"}),
]
SOWS_DAYS = (4, 3, 2, 1)
SOWS_LEVELS = (3, 3, 2, 1)


def _items(kb: KnowledgeBase, scale: str, level: int) -> dict[str, int]:
    return {i.id: max(s for s in i.allowed_scores if s <= level) for i in kb.scales[scale].items}


def seed_web(sessions: sessionmaker[Session], settings: Settings, kb: KnowledgeBase) -> DemoCredentials:
    """The service's demo data, then the extras the web pages show."""
    creds = seed(sessions, settings, kb)
    with sessions() as session:
        clinician = session.scalar(select(User).where(User.username == creds.clinician[0]))
        assert clinician is not None
        now = utcnow()
        for name, ext, data in WEB_PATIENTS:
            if session.scalar(select(Patient).where(Patient.external_id == ext)) is None:
                row = create_patient(session=session, user=clinician, kb=kb,
                                     body=schemas.PatientCreate(display_name=name, external_id=ext, data=data))
                for hours, level in ((26, 1), (3, 2)):
                    add_scale(session=session, patient=row, user=clinician, kb=kb, body=schemas.ScaleAssessmentCreate(
                        scale="cows", recorded_at=now - timedelta(hours=hours), items=_items(kb, "cows", level)))
        patient_user = session.scalar(select(User).where(User.username == creds.patient[0]))
        assert patient_user is not None and patient_user.patient_id is not None
        first = session.get(Patient, patient_user.patient_id)
        assert first is not None
        has_sows = session.scalar(select(ScaleAssessment.id).where(
            ScaleAssessment.patient_id == first.id, ScaleAssessment.scale == "sows").limit(1))
        if has_sows is None:
            for days, level in zip(SOWS_DAYS, SOWS_LEVELS, strict=True):
                add_scale(session=session, patient=first, user=patient_user, kb=kb, body=schemas.ScaleAssessmentCreate(
                    scale="sows", recorded_at=now - timedelta(days=days, hours=-1), items=_items(kb, "sows", level)))
            for days in (3, 2):
                add_administration(session=session, patient=first, user=clinician, kb=kb,
                                   body=schemas.AdministrationCreate(drug="buprenorphine", dose_mg=8.0,
                                                                     at=now - timedelta(days=days)))
        other = session.scalar(select(Patient).where(Patient.external_id == "demo-b"))
        second = f"{creds.patient[0]}2"
        fresh = creds.patient[1] != KEPT  # an existing patient account's password is not known here
        if fresh and other is not None and session.scalar(select(User).where(User.username == second)) is None:
            session.add(User(username=second, password_hash=hash_password(creds.patient[1]), role="patient",
                             patient_id=other.id, active=True, created_at=now))
        session.commit()
    return creds
