"""Log in for a bearer token; who am I; accounts (clinicians create them)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy import select

from withdrawal.service import schemas
from withdrawal.service.deps import Clinician, CurrentUser, SettingsDep, UowDep
from withdrawal.service.models import Patient, User, utcnow
from withdrawal.service.security import (
    authenticate,
    hash_password,
    issue_token,
    login_actor,
    login_throttled,
    revoke_token,
)

router = APIRouter(tags=["auth"])


@router.get("/health", tags=["auth"], summary="Liveness (no data, no authentication)")
async def health() -> dict[str, str]:
    # NOTE: async, so it answers on the event loop even when every pool thread is busy.
    return {"status": "ok"}


@router.post("/auth/token", response_model=schemas.TokenOut, responses=schemas.errors(400, 401, 422, 429))
def login(body: schemas.LoginIn, request: Request, uow: UowDep, settings: SettingsDep) -> schemas.TokenOut:
    """Exchange a username and password for a bearer token (429 after too many failed tries)."""
    now = utcnow()
    session = uow.session
    client = request.client.host if request.client else None
    actor = login_actor(body.username, client)
    if login_throttled(
        session, body.username, client, now, settings.login_max_failures, settings.login_window_minutes
    ):
        uow.refuse(actor=actor, action="login", resource="user", outcome="throttled")
        raise HTTPException(
            429,
            "too many failed logins for this username; try again later",
            headers={"Retry-After": str(60 * settings.login_window_minutes)},
        )
    user = authenticate(session, body.username, body.password)
    if user is None:
        uow.refuse(actor=actor, action="login", resource="user", outcome="denied")
        raise HTTPException(401, "wrong username or password")
    token, expires = issue_token(session, user, timedelta(minutes=settings.token_ttl_minutes), now)
    uow.audit(actor=user, action="login", resource="user", resource_id=user.id)
    return schemas.TokenOut(access_token=token, expires_at=expires)


@router.post("/auth/logout", status_code=204, responses=schemas.errors(401))
def logout(request: Request, uow: UowDep, user: CurrentUser) -> Response:
    """Revoke the bearer token this request carries."""
    _, _, token = request.headers.get("authorization", "").partition(" ")
    revoke_token(uow.session, token.strip())
    uow.audit(actor=user, action="logout", resource="user", resource_id=user.id)
    return Response(status_code=204)


@router.get("/auth/me", response_model=schemas.UserPublic, responses=schemas.errors(401))
def me(user: CurrentUser) -> User:
    return user


@router.post(
    "/users", response_model=schemas.UserPublic, status_code=201, responses=schemas.errors(400, 401, 403, 409, 422)
)
def create_user(body: schemas.UserCreate, uow: UowDep, user: Clinician) -> User:
    """Create an account; a patient account must name the patient record it may see."""
    session = uow.session
    if body.role == "patient" and (body.patient_id is None or session.get(Patient, body.patient_id) is None):
        raise HTTPException(422, [{"field": "patient_id", "message": "a patient account needs an existing patient_id"}])
    if body.role == "clinician" and body.patient_id is not None:
        raise HTTPException(422, [{"field": "patient_id", "message": "only patient accounts are linked to a patient"}])
    if session.scalar(select(User).where(User.username == body.username)):
        raise HTTPException(409, "username taken")
    new = User(
        username=body.username,
        password_hash=hash_password(body.password),
        role=body.role,
        patient_id=body.patient_id,
        active=True,
        created_at=utcnow(),
    )
    session.add(new)
    session.flush()
    uow.audit(actor=user, action="create", resource="user", resource_id=new.id, patient_id=body.patient_id)
    return new
