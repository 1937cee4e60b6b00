"""The clinician's tools: the PK simulator of a patient's taper, the interaction checker and the evidence."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.safety.interactions import check_interactions
from withdrawal.service import records
from withdrawal.service.deps import KbDep, SessionDep, UowDep
from withdrawal.service.models import Patient
from withdrawal.web import answer
from withdrawal.web.charts import concentration_chart
from withdrawal.web.pages import open_patient, render, require_clinician

router = APIRouter(include_in_schema=False)

PHENOTYPES = ("poor", "intermediate", "normal", "ultrarapid")


def simulator_ctx(result: Any, patient: Patient, kb: KnowledgeBase, phenotype: str | None) -> dict[str, Any]:
    """The typical-patient curves of the proposed taper for the chosen (else the recorded) CYP2D6 phenotype."""
    from withdrawal.web.pk_view import curves

    recorded_ph = result.patient.data.cyp2d6_phenotype
    chosen = phenotype if phenotype in PHENOTYPES else recorded_ph
    c = curves(result.patient, result.plan, kb, chosen)
    chart = None
    if c is not None:
        chart = concentration_chart(
            hours=c.hours, m1=c.m1, tramadol=c.tramadol, threshold=c.threshold, dose_times_h=c.dose_times_h,
            course_marks=c.course_marks,
            title=f"Simulated M1 and tramadol for the proposed taper, {c.phenotype_used} metabolizer",
        )
    return {
        "patient": patient, "a": result.to_dict(), "curves": c, "chart": chart, "phenotypes": PHENOTYPES,
        # the menu shows the phenotype simulated (normal when none is recorded or chosen), never another one
        "chosen": c.phenotype_used if c is not None else chosen, "recorded_ph": recorded_ph,
    }


@router.get("/app/patients/{patient_id}/simulator", response_class=HTMLResponse)
def simulator(patient_id: int, request: Request, uow: UowDep, kb: KbDep, phenotype: str | None = None) -> Response:
    user = require_clinician(request, uow.session)
    patient = open_patient(uow, user, patient_id, action="read", resource="plan")
    result = records.assess_record(uow.session, patient, kb)
    return render(request, "simulator.html", simulator_ctx(result, patient, kb, phenotype), user=user)


@router.get("/app/interactions", response_class=HTMLResponse)
def interactions(request: Request, session: SessionDep, kb: KbDep, drugs: str = "") -> Response:
    user = require_clinician(request, session)
    names = [n.strip() for n in re.split(r"[,\n;]+", drugs[:2000]) if n.strip()][:30]
    report = check_interactions(names, kb) if names else None
    return render(request, "interactions.html", {
        "drugs": drugs[:2000], "report": report, "drug_names": {d: kb.drugs[d].name for d in kb.drugs},
        "suggest": lambda text: answer.suggestions(text, "drug", kb)}, user=user)


@cache
def _evidence() -> tuple[Any, str]:
    import tempfile

    from withdrawal.evidence.summary import build_summary, tramadol_forest

    summary = build_summary()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "forest.svg"
        tramadol_forest(summary, path)
        svg = path.read_text(encoding="utf-8")
    return summary, svg


@router.get("/app/evidence", response_class=HTMLResponse)
def evidence(request: Request, session: SessionDep, kb: KbDep) -> Response:
    user = require_clinician(request, session)
    summary, _ = _evidence()
    return render(request, "evidence.html", {"summary": summary, "points": kb.care.evidence_summary}, user=user)


@router.get("/app/evidence/forest.svg")
def forest_svg(request: Request, session: SessionDep) -> Response:
    require_clinician(request, session)
    _, svg = _evidence()
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600",
                                                              "X-Content-Type-Options": "nosniff"})
