"""``POST /pathway/buprenorphine``: the buprenorphine start pathway for one patient; nothing is stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from withdrawal.assess import Assessment, assess_patient
from withdrawal.fhir import is_fhir
from withdrawal.fhir.mapping import resources_of
from withdrawal.fhir.questionnaire import BedsideReading, read_bedside
from withdrawal.intake import read_patient
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.pathway import build_pathway
from withdrawal.service import schemas
from withdrawal.service.deps import Clinician, KbDep, UowDep
from withdrawal.service.models import utcnow

router = APIRouter(tags=["pathway"], responses=schemas.errors(400, 401, 403, 422))

EXAMPLE = {
    "age_years": 27,
    "opioid": {"substance": "fentanyl", "hours_since_last_use": 6},
    "medications": [{"name": "alprazolam"}],
    "setting": "outpatient",
}


def assess_at_bedside(body: Any, kb: KnowledgeBase) -> tuple[Assessment, BedsideReading | None, str | None]:
    """Assess version-1 JSON, or a FHIR Bundle with its COWS/SOWS responses and last opioid use.

    Also gives what was read at the bedside and the ``Patient/<id>`` reference of a FHIR patient.
    """
    now = utcnow()
    a = assess_patient(read_patient(body, kb, now=now), kb)
    if not is_fhir(body):
        return a, None, None
    resources = resources_of(body)
    patients = [r for r in resources if r.get("resourceType") == "Patient" and isinstance(r.get("id"), str)]
    pid = patients[0]["id"] if len(patients) == 1 else None
    return a, read_bedside(resources, kb, now=now, patient_id=pid), f"Patient/{pid}" if pid else None


@router.post("/pathway/buprenorphine", responses={422: {"model": schemas.ErrorOut}})
def buprenorphine_pathway(
    uow: UowDep,
    user: Clinician,
    kb: KbDep,
    body: Any = Body(
        ...,
        description="Patient input format version 1, or a FHIR R4 Bundle (COWS/SOWS QuestionnaireResponses or "
        "scored Observations and the hours since the last opioid are read too).",
        examples=[EXAMPLE],
    ),
) -> dict[str, Any]:
    """The buprenorphine start pathway: which start, schedule, COWS rechecks, hand-off and a chart note."""
    a, _, _ = assess_at_bedside(body, kb)
    pathway = build_pathway(a)
    uow.audit(actor=user, action="pathway", resource="stateless")
    return {
        "kb_version": kb.version,
        "pathway": pathway.to_dict(),
        "sources": {
            sid: {**kb.sources[sid].model_dump(mode="json", exclude_none=True), "link": kb.sources[sid].link}
            for sid in pathway.sources
        },
    }
