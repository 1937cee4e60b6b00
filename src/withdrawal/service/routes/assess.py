"""``POST /assess``: one patient in, one cited answer out; nothing is stored."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Body, Query

from withdrawal.assess import assess_patient
from withdrawal.intake import read_patient
from withdrawal.service import schemas
from withdrawal.service.deps import Clinician, KbDep, UowDep

router = APIRouter(tags=["assess"], responses=schemas.errors(400, 401, 403, 422))

EXAMPLE = {
    "age_years": 34,
    "sex": "female",
    "opioid": {"substance": "heroin", "hours_since_last_use": 14},
    "medications": [{"name": "sertraline"}],
}


@router.post("/assess", responses={422: {"model": schemas.ErrorOut}})
def assess(
    uow: UowDep,
    user: Clinician,
    kb: KbDep,
    body: Any = Body(
        ..., description="Patient input format version 1, or a FHIR R4 Bundle / resource list.", examples=[EXAMPLE]
    ),
    override_reason: str | None = Query(
        None,
        min_length=1,
        max_length=500,
        pattern=r"^[^\x00]*$",
        description="A clinician's reason for a tramadol schedule although the verdict is 'avoid' "
        "(recorded in the audit log; never unlocks 'contraindicated').",
    ),
    as_of: date | None = Query(
        None,
        description="Read a FHIR record as of this date (YYYY-MM-DD; default today, UTC): ages, days since "
        "stopping and look-backs count to it, as `withdrawal population screen --as-of` does. Refused "
        "with a version-1 input, which states its facts as they are.",
    ),
    simulate: bool = Query(
        True, description="Include the exploratory PK simulation of a printed tramadol schedule."
    ),
) -> dict[str, Any]:
    """Assess one patient: withdrawal severity, tramadol safety, ranked options, resources, sources.

    Clinicians only (403 for patient accounts): the answer holds dosing schedules, and a
    patient gets their own record and plain information, never a self-treatment guide.
    """
    data = read_patient(body, kb, as_of)
    result = assess_patient(data, kb, simulate=simulate, override=override_reason).to_dict()
    action = "assess_override" if result["tramadol"]["override"] else "assess"
    uow.audit(actor=user, action=action, resource="stateless")
    return result
