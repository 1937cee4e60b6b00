"""Request and response bodies of the REST API, one model per role of the data."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from withdrawal.service.limits import Timestamp

MAX_ID = 2**31 - 1
"""Row ids are ``INTEGER`` columns, 32-bit on PostgreSQL: a larger number can name no record
(and PostgreSQL refuses it as out of range, which was a 500)."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class UserPublic(_Out):
    id: int
    username: str
    role: Literal["clinician", "patient"]
    patient_id: int | None


class UserCreate(_In):
    """A new account; patient accounts are linked to one patient record."""

    username: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=12, max_length=200)
    role: Literal["clinician", "patient"]
    patient_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class PatientCreate(_In):
    """A patient record: a display name, an optional external id and the clinical data.

    ``data`` is the patient input format (version 1), or a FHIR R4 Bundle that is
    mapped onto it.
    """

    display_name: str = Field(min_length=1, max_length=200)
    external_id: str | None = Field(default=None, max_length=200)
    data: dict[str, Any]


class PatientUpdate(_In):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    data: dict[str, Any] | None = None


class PatientPublic(_Out):
    id: int
    display_name: str
    external_id: str | None
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ScaleAssessmentCreate(_In):
    scale: Literal["cows", "sows"]
    items: dict[str, int]
    recorded_at: Timestamp | None = Field(
        default=None, description="When it was scored (default now): from 2000-01-01 to now, 5 min clock skew allowed."
    )


class ScaleAssessmentPublic(_Out):
    id: int
    patient_id: int
    scale: str
    total: int
    band: str | None
    items: dict[str, int]
    recorded_at: datetime
    recorded_by: int
    kb_version: str


class PlanCreate(_In):
    """Ask for a plan from the stored record (and its latest COWS)."""

    note: str | None = Field(default=None, max_length=4000)
    taper: bool = Field(default=False, description="The plan is a tramadol taper (enables the stalled-taper alert).")


class PlanPublic(_Out):
    id: int
    patient_id: int
    status: str
    taper: bool
    note: str | None
    tramadol_verdict: str
    tramadol_max_daily_mg: int
    result: dict[str, Any]
    kb_version: str
    created_at: datetime
    created_by: int


class AdministrationCreate(_In):
    drug: str = Field(min_length=1, max_length=100, description="Generic or brand name, resolved to an ingredient.")
    dose_mg: float = Field(gt=0, le=100_000)
    kind: Literal["administration", "dispense"] = "administration"
    days_supply: float | None = Field(default=None, gt=0, le=365)
    at: Timestamp | None = Field(
        default=None, description="When it was given (default now): from 2000-01-01 to now, 5 min clock skew allowed."
    )


class AdministrationPublic(_Out):
    id: int
    patient_id: int
    drug: str
    dose_mg: float
    kind: str
    days_supply: float | None
    at: datetime
    recorded_by: int


class TrendPointOut(BaseModel):
    recorded_at: datetime
    total: int
    band: str | None


class TrendsOut(BaseModel):
    patient_id: int
    cows: list[TrendPointOut]
    sows: list[TrendPointOut]
    tramadol_daily_mg: dict[str, float]


class AlertOut(BaseModel):
    code: str
    level: Literal["info", "warning", "critical"]
    title: str
    message: str
    action: str
    evidence: dict[str, Any]
    sources: list[str]
    verification: str
    threshold_basis: Literal["kb", "setting"]
    settings: list[str]


class AlertsOut(BaseModel):
    patient_id: int
    alerts: list[AlertOut]
    sources: dict[str, dict[str, Any]]


class AuditOut(_Out):
    id: int
    at: datetime
    user_id: int | None
    actor: str
    action: str
    resource: str
    resource_id: str | None
    patient_id: int | None
    outcome: str


class ErrorItem(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    detail: str | list[ErrorItem]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses``: these status codes answer with :class:`ErrorOut` (never FastAPI's default 422 body).

    400 is a body that cannot be decoded at all (FastAPI's own answer), 422 one that
    is decoded but invalid.
    """
    return {code: {"model": ErrorOut} for code in codes}
