"""Typed dependencies: the database session, the current user, settings and the KB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.service import audit
from withdrawal.service.config import Settings
from withdrawal.service.models import Patient, User, utcnow
from withdrawal.service.schemas import MAX_ID
from withdrawal.service.security import user_for_token

bearer = HTTPBearer(auto_error=False, description="Token from POST /auth/token")


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; routes commit, anything left uncommitted is rolled back."""
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


# NOTE: async so that FastAPI calls them on the event loop; a plain ``def`` dependency
# costs a round trip through the thread pool on every request.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_kb(request: Request) -> KnowledgeBase:
    kb: KnowledgeBase = request.app.state.kb
    return kb


SessionDep = Annotated[Session, Depends(get_session)]
PatientId = Annotated[int, Path(ge=1, le=MAX_ID, description="Patient record id")]
"""A path id within the id columns' range: a larger one is a 422, never a database overflow (500)."""
SettingsDep = Annotated[Settings, Depends(get_settings)]
KbDep = Annotated[KnowledgeBase, Depends(get_kb)]


def current_user(session: SessionDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
    user = user_for_token(session, creds.credentials, utcnow())
    if user is None:
        raise HTTPException(401, "invalid or expired token", headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def clinician(user: CurrentUser) -> User:
    if user.role != "clinician":
        raise HTTPException(403, "clinicians only")
    return user


Clinician = Annotated[User, Depends(clinician)]


def patient_for(session: Session, user: User, patient_id: int, *, action: str, resource: str) -> Patient:
    """The patient record if this user may see it; the denial is audited too.

    A patient user asking for another record gets 404, so record ids cannot be probed; an id
    out of the id columns' range names no record (404, not a database overflow).
    """
    # NOTE: a web page's path id is any integer; one beyond the id columns' range overflows the database (500).
    in_range = 1 <= patient_id <= MAX_ID
    patient = session.get(Patient, patient_id) if in_range else None
    allowed = patient is not None and (user.role == "clinician" or user.patient_id == patient_id)
    if not allowed:
        audit.record(
            session, actor=user, action=action, resource=resource, patient_id=patient_id if in_range else None,
            outcome="denied",
        )
        session.commit()
        raise HTTPException(404, "patient not found")
    assert patient is not None
    return patient
