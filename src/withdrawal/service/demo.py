"""Demo accounts and patients for ``withdrawal serve --demo`` (idempotent)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.service import schemas
from withdrawal.service.config import Settings
from withdrawal.service.models import Patient, User, utcnow
from withdrawal.service.records import add_administration, add_scale, create_patient
from withdrawal.service.security import hash_password

DEMO_PATIENTS = [
    (
        "Demo patient A (heroin, outpatient)",
        "demo-a",
        {
            "age_years": 34,
            "sex": "female",
            "opioid": {"substance": "heroin", "hours_since_last_use": 16},
            "medications": [{"name": "sertraline"}],
            "setting": "outpatient",
        },
    ),
    (
        "Demo patient B (tramadol taper)",
        "demo-b",
        {
            "age_years": 52,
            "sex": "male",
            "opioid": {"substance": "tramadol", "hours_since_last_use": 10},
            "medications": [{"name": "tramadol", "dose_mg_per_day": 300}],
            "setting": "outpatient",
        },
    ),
    (
        "Demo patient C (seizure disorder)",
        "demo-c",
        {
            "age_years": 41,
            "sex": "male",
            "conditions": ["seizure_disorder"],
            "opioid": {"substance": "oxycodone", "hours_since_last_use": 20},
            "setting": "inpatient",
        },
    ),
]


@dataclass(frozen=True)
class DemoCredentials:
    clinician: tuple[str, str]
    patient: tuple[str, str]


KEPT = "(existing account: password unchanged)"


def _user(session: Session, username: str, password: str, role: str, patient_id: int | None) -> str:
    """Create the demo account; an existing account is left exactly as it is (never a password reset).

    Returns the password to print: the new one, or :data:`KEPT`.
    """
    if session.scalar(select(User).where(User.username == username)) is not None:
        return KEPT
    session.add(
        User(
            username=username,
            password_hash=hash_password(password),
            role=role,
            patient_id=patient_id,
            active=True,
            created_at=utcnow(),
        )
    )
    return password


def seed(sessions: sessionmaker[Session], settings: Settings, kb: KnowledgeBase) -> DemoCredentials:
    """Create the demo clinician, the demo patient account and demo patients (existing ones are kept)."""
    c_pw = settings.demo_clinician_password or secrets.token_urlsafe(12)
    p_pw = settings.demo_patient_password or secrets.token_urlsafe(12)
    with sessions() as session:
        c_pw = _user(session, settings.demo_clinician_username, c_pw, "clinician", None)
        session.flush()
        clinician = session.scalar(select(User).where(User.username == settings.demo_clinician_username))
        assert clinician is not None
        first: int | None = None
        for name, ext, data in DEMO_PATIENTS:
            row = session.scalar(select(Patient).where(Patient.external_id == ext))
            if row is None:
                row = create_patient(
                    session=session,
                    user=clinician,
                    kb=kb,
                    body=schemas.PatientCreate(display_name=name, external_id=ext, data=data),
                )
                now = utcnow()
                for hours, level in ((30, 0), (20, 1), (4, 2)):
                    add_scale(
                        session=session,
                        patient=row,
                        user=clinician,
                        kb=kb,
                        body=schemas.ScaleAssessmentCreate(
                            scale="cows",
                            recorded_at=now - timedelta(hours=hours),
                            items={
                                i.id: i.allowed_scores[min(level, len(i.allowed_scores) - 1)]
                                for i in kb.scales["cows"].items
                            },
                        ),
                    )
                if ext == "demo-b":
                    for day in (3, 2, 1):
                        add_administration(
                            session=session,
                            patient=row,
                            user=clinician,
                            kb=kb,
                            body=schemas.AdministrationCreate(
                                drug="tramadol", dose_mg=100.0, at=now - timedelta(days=day)
                            ),
                        )
            first = first or row.id
        p_pw = _user(session, settings.demo_patient_username, p_pw, "patient", first)
        session.commit()
    return DemoCredentials((settings.demo_clinician_username, c_pw), (settings.demo_patient_username, p_pw))
