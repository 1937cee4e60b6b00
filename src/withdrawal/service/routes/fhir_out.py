"""FHIR out: the COWS and SOWS Questionnaires, and the results as a transaction Bundle.

``POST /fhir/writeback`` assesses the patient (version-1 JSON or a FHIR Bundle, COWS/SOWS
QuestionnaireResponses included) and answers with a transaction Bundle the EHR can post: the
scores as Observations, the tramadol findings as DetectedIssues and the plan (with the
buprenorphine start pathway) as a CarePlan, validated against FHIR R4 before it is sent.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import JSONResponse

from withdrawal.fhir.questionnaire import questionnaire
from withdrawal.fhir.writeback import writeback_bundle
from withdrawal.pathway import build_pathway
from withdrawal.service import schemas
from withdrawal.service.deps import Clinician, KbDep, UowDep, current_user
from withdrawal.service.models import utcnow
from withdrawal.service.routes.pathway import EXAMPLE, assess_at_bedside

router = APIRouter(prefix="/fhir", tags=["fhir"], responses=schemas.errors(400, 401, 422))
FHIR_JSON = "application/fhir+json"


class FhirJSONResponse(JSONResponse):
    """JSON with the FHIR media type (named in the OpenAPI document by :data:`FHIR_OK`)."""

    media_type = FHIR_JSON


FHIR_OK: dict[int | str, dict[str, Any]] = {
    200: {"description": "A FHIR R4 resource", "content": {FHIR_JSON: {"schema": {"type": "object"}}}}
}


@router.get("/Questionnaire/{scale}", responses=FHIR_OK, dependencies=[Depends(current_user)])
def get_questionnaire(
    kb: KbDep,
    scale: Literal["cows", "sows"] = Path(description="cows or sows"),
) -> FhirJSONResponse:
    """The FHIR R4 Questionnaire of COWS or SOWS: items, answer options with their scores."""
    return FhirJSONResponse(questionnaire(kb.scales[scale], kb.version))


@router.post("/writeback", responses={**FHIR_OK, **schemas.errors(403)})
def writeback(
    uow: UowDep,
    user: Clinician,
    kb: KbDep,
    body: Any = Body(..., description="Patient input format version 1, or a FHIR R4 Bundle.", examples=[EXAMPLE]),
    pathway: Literal["buprenorphine"] | None = Query(
        None, description="Add the start pathway to the CarePlan (only 'buprenorphine')."
    ),
) -> FhirJSONResponse:
    """A validated FHIR R4 transaction Bundle: score Observations, DetectedIssues and a CarePlan."""
    a, reading, patient_ref = assess_at_bedside(body, kb)
    bundle = writeback_bundle(
        a,
        build_pathway(a, pathway) if pathway else None,
        patient_ref=patient_ref,
        now=utcnow(),
        derived_from=reading.sources if reading else None,
    )
    uow.audit(actor=user, action="fhir_writeback", resource="stateless")
    return FhirJSONResponse(bundle)
