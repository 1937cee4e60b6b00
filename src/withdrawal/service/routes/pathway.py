"""``POST /pathway/buprenorphine``: the buprenorphine start pathway for one patient; nothing is stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from withdrawal.assess import Assessment, assess_patient
from withdrawal.fhir import is_fhir
from withdrawal.fhir.questionnaire import BedsideReading
from withdrawal.intake import read_fhir_record, read_patient
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
    if not is_fhir(body):
        return assess_patient(read_patient(body, kb), kb), None, None
    record = read_fhir_record(body, kb, now=utcnow())
    return assess_patient(record.patient, kb), record.reading, (
        f"Patient/{record.patient_id}" if record.patient_id else None
    )


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
