"""A patient's course: scores and doses over time (the chart), the dose form with its order checks, and
the printable handout. The diary on a patient's own home page is built here too (:func:`course_ctx`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from withdrawal.errors import InputError
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.monitoring import ScaleRecord, crisis_signal
from withdrawal.service import records, schemas
from withdrawal.service.config import Settings
from withdrawal.service.deps import KbDep, UnitOfWork, UowDep
from withdrawal.service.limits import stored_window
from withdrawal.service.models import MedicationAdministration, Patient, ScaleAssessment, User, aware, utcnow
from withdrawal.web import answer, forms
from withdrawal.web.charts import DoseMark, Point, course_chart
from withdrawal.web.pages import open_patient, posted, redirect, render, require_clinician, require_user

router = APIRouter(include_in_schema=False)


def crisis(rows: list[ScaleAssessment], patient: Patient, kb: KnowledgeBase, settings: Settings
           ) -> dict[str, Any] | None:
    """Why the patient's own report is at crisis level (the clinician's alert says the same), or None."""
    scores = [ScaleRecord("sows", r.total, r.items, aware(r.recorded_at)) for r in rows if r.scale == "sows"]
    ideation = any(kb.lookup_condition(str(c)) == "suicidal_ideation" for c in patient.data.get("conditions") or ())
    return crisis_signal(scores, settings.thresholds(), suicidal_ideation=ideation)


def course_ctx(session: Session, patient: Patient, kb: KnowledgeBase, *, show_cows: bool) -> dict[str, Any]:
    """The course chart and its rows: COWS too for a clinician (``show_cows``), SOWS only on the diary."""
    # Rows outside the time bounds (stored before they existed) are left out: one SOWS dated 9999 made
    # this page a 500 for good.
    start, end = stored_window(utcnow())
    rows = session.scalars(select(ScaleAssessment).where(ScaleAssessment.patient_id == patient.id,
                                                         ScaleAssessment.recorded_at.between(start, end))
                           .order_by(ScaleAssessment.recorded_at, ScaleAssessment.id)).all()
    doses = session.scalars(select(MedicationAdministration)
                            .where(MedicationAdministration.patient_id == patient.id,
                                   MedicationAdministration.at.between(start, end))
                            .order_by(MedicationAdministration.at)).all()
    cows_scale = kb.scales["cows"]
    cows = [Point(aware(r.recorded_at), r.total, r.band or "") for r in rows if r.scale == "cows"]
    sows = [Point(aware(r.recorded_at), r.total) for r in rows if r.scale == "sows"]
    marks = [DoseMark(aware(d.at), d.drug, d.dose_mg) for d in doses if d.kind == "administration"]
    chart = course_chart(cows=cows if show_cows else [], sows=sows, doses=marks, cows_scale=cows_scale,
                         sows_max=kb.scales["sows"].total_max, show_cows=show_cows, width=760 if show_cows else 440,
                         title=f"Withdrawal scores over time for {patient.display_name}")
    band_labels = {b.key: b.label for b in cows_scale.bands}
    return {"chart": chart, "score_rows": [r for r in rows if show_cows or r.scale == "sows"], "doses": doses,
            "band_labels": band_labels, "show_cows": show_cows}


def handout_ctx(session: Session, patient: Patient) -> dict[str, Any]:
    """The active plan, its first option and the SOWS diary within the time bounds."""
    plan = records.active_plan(session, patient.id)
    start, end = stored_window(utcnow())
    sows_rows = session.scalars(select(ScaleAssessment).where(
        ScaleAssessment.patient_id == patient.id, ScaleAssessment.scale == "sows",
        ScaleAssessment.recorded_at.between(start, end)).order_by(ScaleAssessment.recorded_at)).all()
    options = (plan.result.get("options") if plan else None) or []
    first = options[0].get("name") if options and isinstance(options[0], dict) else None
    return {"patient": patient, "plan": plan, "first_option": first, "sows_rows": sows_rows, "printed": utcnow()}


@router.get("/app/patients/{patient_id}/handout", response_class=HTMLResponse)
def handout(patient_id: int, request: Request, uow: UowDep) -> Response:
    """The patient's plan and SOWS diary as a printable handout (print stylesheet; the PDF in docs/img is
    Chromium's print of this page), in the reader's language, with the crisis resources."""
    user = require_user(request, uow.session)
    patient = open_patient(uow, user, patient_id, action="read", resource="plan")
    return render(request, "handout.html", handout_ctx(uow.session, patient), user=user)


@router.get("/app/patients/{patient_id}/course", response_class=HTMLResponse)
def course(patient_id: int, request: Request, uow: UowDep, kb: KbDep, recorded: str | None = None) -> Response:
    user = require_user(request, uow.session)
    patient = open_patient(uow, user, patient_id, action="read", resource="trends")
    if user.role != "clinician":
        return redirect(f"/app/patients/{patient.id}#chart")
    ctx = course_ctx(uow.session, patient, kb, show_cows=True)
    return render(request, "course.html", {"patient": patient, "recorded": recorded, "dose_values": {},
                                           "dose_errors": {}, **ctx}, user=user)


def _dose_checks(session: Session, patient: Patient, kb: KnowledgeBase, fields: dict[str, Any], at: datetime,
                 override: str, errors: dict[str, str]) -> bool:
    """Order checks for a tramadol dose, as an EHR makes them: refused when tramadol is contraindicated
    for the patient; an override reason needed when it is to be avoided, or when the dose takes the last
    24 hours above the patient's limit. Errors are added by field; True when an override is used."""
    ids = kb.resolve_drug_name(fields["drug"]) if fields["drug"] else ()
    if fields["drug"] and len(ids) != 1:
        sug = answer.suggestions(fields["drug"], "drug", kb)
        errors["drug"] = (f"drug: “{fields['drug'][:60]}” " + ("names more than one ingredient: record each one"
                          if ids else "is not recognised") + (f" (did you mean {' or '.join(sug)}?)" if sug else "")
                          + ": enter one medicine by generic or brand name")
        return False
    if ids != ("tramadol",):
        return False
    result = records.assess_record(session, patient, kb)
    first = answer.first_screen(result.to_dict(), ())
    verdict, limit = result.screen.verdict, result.screen.max_daily_dose_mg
    if verdict == "contraindicated":
        errors["drug"] = f"drug: tramadol is contraindicated for this patient and cannot be recorded: {first.reason}"
        return False
    why: list[str] = []
    if verdict == "avoid":
        why.append(f"tramadol is to be avoided for this patient: {first.reason}")
    dose = fields["dose_mg"]
    if fields["kind"] == "administration" and dose is not None:
        start, _ = stored_window(utcnow())
        given = session.scalars(select(MedicationAdministration).where(
            MedicationAdministration.patient_id == patient.id, MedicationAdministration.drug == "tramadol",
            MedicationAdministration.kind == "administration",
            MedicationAdministration.at > max(start, at - timedelta(hours=24)),
            MedicationAdministration.at <= at + timedelta(hours=24))).all()
        window = sum(d.dose_mg for d in given if abs((aware(d.at) - at).total_seconds()) < 86400)
        if window + dose > limit:
            why.append(f"{window + dose:g} mg of tramadol within 24 hours is above this patient's limit of "
                       f"{limit} mg a day" + (f" ({window:g} mg already recorded)" if window else ""))
    if not why:
        return False
    if len(override) < 10:
        errors["override_reason"] = ("override_reason: " + "; and ".join(why) + ". To record it anyway, give your "
                                     "clinical reason (at least 10 characters; kept in the audit log).")
        return False
    return True


def record_dose(uow: UnitOfWork, kb: KnowledgeBase, user: User, patient: Patient, form: dict[str, str]
                ) -> tuple[bool, dict[str, str]]:
    """Record the form's dose (audited, with the override reason if one was needed): whether an override
    was used, and the errors by field (nothing recorded then but the refused attempt)."""
    fields, hours_ago, errors = forms.dose_from_form(form)
    override = " ".join(str(form.get("override_reason") or "").split())[:500]
    at = utcnow() - timedelta(hours=hours_ago)
    overridden = _dose_checks(uow.session, patient, kb, fields, at, override, errors)
    if not errors:
        try:
            body = schemas.AdministrationCreate(**fields, at=at)
            row = records.add_administration(session=uow.session, patient=patient, body=body, user=user, kb=kb)
        except InputError as exc:
            errors["drug"] = str(exc)
        except ValidationError as exc:
            errors["dose_mg"] = "dose_mg: " + exc.errors()[0]["msg"]
    if errors:
        uow.rollback()
        uow.audit(actor=user, action="create", resource="administration", patient_id=patient.id, outcome="invalid")
        uow.audit(actor=user, action="read", resource="trends", patient_id=patient.id)
        return False, errors
    uow.audit(actor=user, action="create", resource="administration", resource_id=row.id, patient_id=patient.id,
              outcome="override" if overridden else "ok", reason=override if overridden else None)
    return overridden, {}


@router.post("/app/patients/{patient_id}/doses", response_class=HTMLResponse)
async def dose_submit(patient_id: int, request: Request, uow: UowDep, kb: KbDep) -> Response:
    """Record a dose given (or dispensed): the course chart marks it, the monitoring alerts read it.

    Tramadol is checked as an order would be (:func:`_dose_checks`); an override reason is kept in
    the audit log, never in the application logs."""
    user = require_clinician(request, uow.session)
    form = await posted(request)
    patient = open_patient(uow, user, patient_id, action="create", resource="administration")
    overridden, errors = record_dose(uow, kb, user, patient, form)
    if errors:
        ctx = course_ctx(uow.session, patient, kb, show_cows=True)
        return render(request, "course.html", {"patient": patient, "recorded": None, "dose_values": form,
                                               "dose_errors": errors, **ctx}, user=user, status=422)
    return redirect(f"/app/patients/{patient.id}/course?recorded={'dose_override' if overridden else 'dose'}#chart")
