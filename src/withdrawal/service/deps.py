"""Typed dependencies: the request's unit of work (session and audit), the current user, settings and the KB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

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


class UnitOfWork:
    """One request's transaction: its writes and their audit rows commit together, once, or not at all.

    Handlers add writes to :attr:`session` and audit rows with :meth:`audit`; the request commits
    once, after the handler has returned (:func:`unit_of_work`). If the handler raises, everything
    is rolled back, audit rows included, so a failed write leaves no trace of itself, except
    :meth:`refuse` rows: a denied access or a failed login is recorded however the request ends.

    Audit rows join the session only at the commit, so a page that only reads takes no write lock
    (SQLite has one writer) until then.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: list[tuple[dict[str, Any], bool]] = []  # (audit row, kept if the request fails)

    def audit(
        self,
        *,
        actor: User | str,
        action: str,
        resource: str,
        resource_id: object = None,
        patient_id: int | None = None,
        outcome: str = "ok",
        reason: str | None = None,
    ) -> None:
        """An audit row committed with this request's writes (and lost with them)."""
        row = {"actor": actor, "action": action, "resource": resource, "resource_id": resource_id,
               "patient_id": patient_id, "outcome": outcome, "reason": reason, "at": utcnow()}
        self._rows.append((row, False))

    def refuse(
        self,
        *,
        actor: User | str,
        action: str,
        resource: str,
        patient_id: int | None = None,
        outcome: str = "denied",
    ) -> None:
        """An audit row of a refusal: written even when the request then fails (the refusal is the fact)."""
        row = {"actor": actor, "action": action, "resource": resource, "patient_id": patient_id, "outcome": outcome,
               "at": utcnow()}
        self._rows.append((row, True))

    def rollback(self) -> None:
        """Drop the writes and audit rows so far (a form shown again with its errors); refusals stay."""
        self.session.rollback()
        self._rows = [(row, kept) for row, kept in self._rows if kept]

    def commit(self) -> None:
        """Commit the writes with their audit rows.

        Called by :func:`unit_of_work` when the handler returns; a handler calls it itself only
        where it must answer according to the outcome (an ``Idempotency-Key`` whose concurrent
        twin won: :func:`withdrawal.service.idempotency.commit`).
        """
        # NOTE: a fresh AuditEntry each time: a row flushed and rolled back keeps its id, and refusals
        # are added again after a rollback.
        self.session.add_all([audit.entry(**row) for row, _ in self._rows])
        self.session.commit()
        self._rows.clear()

    def fail(self) -> None:
        """The request failed: roll everything back, then write its refusals alone."""
        self.rollback()
        if self._rows:
            self.commit()


@contextmanager
def unit_of_work(sessions: Callable[[], Session]) -> Iterator[UnitOfWork]:
    """A unit of work on a new session: committed when the block ends, rolled back if it raises.

    Outside a FastAPI dependency too (a route that runs its work in a thread of its own).
    """
    session = sessions()
    uow = UnitOfWork(session)
    try:
        yield uow
    except BaseException:
        uow.fail()
        raise
    else:
        uow.commit()
    finally:
        session.close()


def get_uow(request: Request) -> Iterator[UnitOfWork]:
    """The request's unit of work (see :data:`UowDep`)."""
    with unit_of_work(request.app.state.sessions) as uow:
        yield uow


UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
"""One unit of work per request. ``scope="function"``: it commits when the handler has returned and
its answer has been serialised, but before anything is sent, so the client never sees an answer
whose writes were not committed (a commit that fails is a 500); the default scope would commit after
the response had gone."""


# NOTE: async so that FastAPI calls them on the event loop; a plain ``def`` dependency
# costs a round trip through the thread pool on every request.
async def get_session(uow: UowDep) -> Session:
    """The unit of work's session (committed once with it)."""
    return uow.session


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


def patient_for(uow: UnitOfWork, user: User, patient_id: int, *, action: str, resource: str) -> Patient:
    """The patient record if this user may see it; otherwise 404, the denial audited (:meth:`UnitOfWork.refuse`).

    A patient user asking for another record gets 404, so record ids cannot be probed; an id
    out of the id columns' range names no record (404, not a database overflow).
    """
    # NOTE: a web page's path id is any integer; one beyond the id columns' range overflows the database (500).
    in_range = 1 <= patient_id <= MAX_ID
    patient = uow.session.get(Patient, patient_id) if in_range else None
    allowed = patient is not None and (user.role == "clinician" or user.patient_id == patient_id)
    if not allowed:
        uow.refuse(actor=user, action=action, resource=resource, patient_id=patient_id if in_range else None)
        raise HTTPException(404, "patient not found")
    assert patient is not None
    return patient
