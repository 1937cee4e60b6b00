"""The clinician's patients: the list, a new or edited record (with the review of entries the knowledge
base did not recognise), one patient's assessment with its plan and override, and a patient's own home
(their diary)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from withdrawal.assess import Assessment
from withdrawal.errors import InputError
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.service import records, schemas, summaries
from withdrawal.service.config import Settings
from withdrawal.service.deps import KbDep, SettingsDep, UnitOfWork, UowDep
from withdrawal.service.models import Patient, User, utcnow
from withdrawal.web import answer, forms
from withdrawal.web.course import course_ctx, crisis
from withdrawal.web.pages import home_for, open_patient, posted, redirect, render, require_clinician, require_user

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
SUMMARY_MAX_AGE = timedelta(minutes=15)
SUMMARY_AGED_PER_LOAD = 5
"""Of a page's summaries older than 15 minutes, the 5 oldest are recomputed on each load (time-dependent
alerts); at about 10 ms each, a page stays well under 100 ms."""


# --- the list -----------------------------------------------------------------------------


def patient_list(uow: UnitOfWork, kb: KnowledgeBase, settings: Settings, user: User, page: str) -> dict[str, Any]:
    """One page of patients by name, read from their stored summaries (``service/summaries.py``): no patient
    is re-assessed here unless their summary is missing, was made with another knowledge-base version, or
    is among the oldest (:data:`SUMMARY_AGED_PER_LOAD`)."""
    session = uow.session
    total = session.scalar(select(func.count()).select_from(Patient)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    number = int(page) if page.isdigit() and len(page) < 9 else 1  # a malformed page number is the first page
    number = min(max(1, number), pages)
    listed = list(session.scalars(select(Patient).order_by(Patient.display_name, Patient.id)
                                  .offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    stored = summaries.ensure(session, listed, kb, settings.thresholds(), max_age=SUMMARY_MAX_AGE,
                              aged_budget=SUMMARY_AGED_PER_LOAD)
    rows = []
    for p in listed:
        s = stored[p.id]
        uow.audit(actor=user, action="read", resource="patient", resource_id=p.id, patient_id=p.id)
        opioid = p.data.get("opioid") or {}
        rows.append({"patient": p, "summary": s, "verdict": s.verdict, "alerts": s.alerts,
                     "substance": opioid.get("substance"), "age": p.data.get("age_years")})
    band_labels = {b.key: b.label for b in kb.scales["cows"].bands}
    return {"rows": rows, "band_labels": band_labels, "page": number, "pages": pages, "total": total,
            "page_size": PAGE_SIZE}


@router.get("/app/patients", response_class=HTMLResponse)
def patients(request: Request, uow: UowDep, kb: KbDep, settings: SettingsDep, page: str = "1") -> Response:
    user = require_user(request, uow.session)
    if user.role != "clinician":
        return redirect(home_for(user))
    return render(request, "patients.html", patient_list(uow, kb, settings, user, page), user=user)


# --- a new or edited record ---------------------------------------------------------------

_PATIENT_FORM_CHOICES = {"sexes": forms.SEXES, "settings": forms.SETTINGS, "substances": forms.SUBSTANCES,
                         "phenotypes": forms.PHENOTYPES, "child_pugh": forms.CHILD_PUGH}
_NEW = {"heading": "New patient", "form_action": "/app/patients/new", "submit_label": "Create and assess",
        **_PATIENT_FORM_CHOICES}
REVIEW_FIELDS = ("conditions", "current_medications", "stopped_medications", "allergies")


def _edit_ctx(patient: Patient) -> dict[str, Any]:
    return {"heading": f"Edit {patient.display_name}", "form_action": f"/app/patients/{patient.id}/edit",
            "submit_label": "Save and assess", "patient": patient, **_PATIENT_FORM_CHOICES}


def _apply_review(form: dict[str, str]) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """The form with the clinician's choices for entries the knowledge base did not recognise
    (use a suggestion, remove, keep as typed) applied; and the entries already reviewed."""
    reviewed: set[tuple[str, str]] = set()
    if form.get("review") != "1":
        return form, reviewed
    keep_all = form.get("action") == "save_anyway"
    for i in range(forms.MAX_LINES * len(REVIEW_FIELDS)):
        entry, field = form.get(f"fix-{i}-entry"), form.get(f"fix-{i}-field")
        if entry is None or field is None:
            break
        if field not in REVIEW_FIELDS:
            continue
        reviewed.add((field, entry))
        choice = "keep" if keep_all else form.get(f"fix-{i}", "keep")
        if choice == "remove":
            form = answer.replace_entry(form, field, entry, None)
        elif choice.startswith("use:") and choice[4:].strip():
            form = answer.replace_entry(form, field, entry, choice[4:].strip()[:200])
    return form, reviewed


def _pending_review(form: dict[str, str], data: dict[str, Any], kb: KnowledgeBase,
                    reviewed: set[tuple[str, str]]) -> list[answer.Unrecognised]:
    """Entries not recognised that the clinician has not seen yet ("save anyway" saves them as typed)."""
    if form.get("action") == "save_anyway":
        return []
    return [u for u in answer.unrecognised_entries(data, kb) if (u.field, u.entry) not in reviewed]


def create_from_form(uow: UnitOfWork, kb: KnowledgeBase, user: User, posted_form: dict[str, str]
                     ) -> tuple[Patient | None, dict[str, Any]]:
    """The new patient, or None and the form's context to show again (errors, or entries to review)."""
    form, reviewed = _apply_review(posted_form)
    name, data, errors = forms.patient_from_form(form)
    if not errors and (pending := _pending_review(form, data, kb, reviewed)):
        return None, {"values": form, "errors": {}, "review": pending}
    if not errors:
        try:
            patient = records.create_patient(session=uow.session, user=user, kb=kb,
                                             body=schemas.PatientCreate(display_name=name, data=data))
        except InputError as exc:
            errors[forms.form_field(exc.field)] = str(exc)
        else:
            uow.audit(actor=user, action="create", resource="patient", resource_id=patient.id,
                      patient_id=patient.id)
            return patient, {}
    uow.rollback()
    return None, {"values": form, "errors": errors}


def update_from_form(uow: UnitOfWork, kb: KnowledgeBase, patient: Patient, posted_form: dict[str, str]
                     ) -> dict[str, Any] | None:
    """Apply the edit; or the form's context to show again (errors, or entries to review)."""
    form, reviewed = _apply_review(posted_form)
    name, edited, errors = forms.patient_from_form(form)
    if not errors and (pending := _pending_review(form, edited, kb, reviewed)):
        return {"values": form, "errors": {}, "review": pending}
    if not errors:
        try:
            records.update_patient(patient=patient, kb=kb, body=schemas.PatientUpdate(
                display_name=name, data=forms.merge_edit(patient.data, edited)))
        except InputError as exc:
            errors[forms.form_field(exc.field)] = str(exc)
    if errors:
        uow.rollback()
        return {"values": form, "errors": errors}
    return None


@router.get("/app/patients/new", response_class=HTMLResponse)
def new_patient_form(request: Request, uow: UowDep) -> Response:
    user = require_clinician(request, uow.session)
    return render(request, "patient_form.html", {"values": {}, "errors": {}, **_NEW}, user=user)


@router.post("/app/patients/new", response_class=HTMLResponse)
async def new_patient_submit(request: Request, uow: UowDep, kb: KbDep) -> Response:
    user = require_clinician(request, uow.session)
    patient, again = create_from_form(uow, kb, user, await posted(request))
    if patient is None:
        return render(request, "patient_form.html", {**again, **_NEW}, user=user,
                      status=200 if again.get("review") else 422)
    return redirect(f"/app/patients/{patient.id}?recorded=patient")


@router.get("/app/patients/{patient_id}/edit", response_class=HTMLResponse)
def edit_patient_form(patient_id: int, request: Request, uow: UowDep) -> Response:
    user = require_clinician(request, uow.session)
    patient = open_patient(uow, user, patient_id, action="read", resource="patient")
    values = forms.form_from_patient(patient.display_name, patient.data)
    return render(request, "patient_form.html", {"values": values, "errors": {}, **_edit_ctx(patient)}, user=user)


@router.post("/app/patients/{patient_id}/edit", response_class=HTMLResponse)
async def edit_patient_submit(patient_id: int, request: Request, uow: UowDep, kb: KbDep) -> Response:
    user = require_clinician(request, uow.session)
    form = await posted(request)
    patient = open_patient(uow, user, patient_id, action="update", resource="patient")
    again = update_from_form(uow, kb, patient, form)
    if again is not None:
        return render(request, "patient_form.html", {**again, **_edit_ctx(patient)}, user=user,
                      status=200 if again.get("review") else 422)
    return redirect(f"/app/patients/{patient.id}?recorded=edit")


# --- one patient --------------------------------------------------------------------------


def result_ctx(uow: UnitOfWork, kb: KnowledgeBase, settings: Settings, user: User, patient: Patient, *,
               override: str | None = None) -> dict[str, Any]:
    """The assessment page's context: the assessment of the stored record, its active plan and alerts (the
    alerts' read audited)."""
    session = uow.session
    result: Assessment = records.assess_record(session, patient, kb, override=override)
    a = result.to_dict()
    plan = records.active_plan(session, patient.id)
    found, alert_sources = records.alerts(session=session, patient=patient, kb=kb,
                                          thresholds=settings.thresholds(), now=utcnow(), assessed=result)
    uow.audit(actor=user, action="read", resource="alerts", patient_id=patient.id)
    return {"patient": patient, "alerts": found, "alert_sources": alert_sources, "a": a, "result": result,
            "cows_row": records.latest_score(session, patient.id, "cows"), "first": answer.first_screen(a, found),
            "override_value": override or "", "plan": plan}


def _result_page(request: Request, uow: UnitOfWork, kb: KnowledgeBase, settings: Settings, user: User,
                 patient: Patient, *, override: str | None = None, status: int = 200, **shown: Any) -> Response:
    """The assessment page; ``shown``: what the page says besides (recorded, override_error, plan_error...)."""
    ctx = {"recorded": None, "override_error": None, "plan_error": None, "plan_note": "", **shown}
    return render(request, "result.html", {**ctx, **result_ctx(uow, kb, settings, user, patient, override=override)},
                  user=user, status=status)


@router.post("/app/patients/{patient_id}/plans", response_class=HTMLResponse)
async def plan_submit(patient_id: int, request: Request, uow: UowDep, kb: KbDep, settings: SettingsDep) -> Response:
    """Save the assessment shown as the patient's active plan (the API's ``POST /patients/{id}/plans``): the
    previous one is superseded, the plan's dose limit and taper feed the monitoring alerts."""
    user = require_clinician(request, uow.session)
    form = await posted(request)
    patient = open_patient(uow, user, patient_id, action="create", resource="plan")
    note = str(form.get("note") or "").strip()[:4000] or None
    try:
        row = records.make_plan(session=uow.session, patient=patient, user=user, kb=kb,
                                body=schemas.PlanCreate(note=note, taper=form.get("taper") == "1"))
    except InputError as exc:
        # Nothing is saved: the attempt is audited as invalid (not as a create), the page shown again as a read.
        uow.rollback()
        uow.audit(actor=user, action="create", resource="plan", patient_id=patient.id, outcome="invalid")
        uow.audit(actor=user, action="read", resource="patient", resource_id=patient.id, patient_id=patient.id)
        return _result_page(request, uow, kb, settings, user, patient, status=422, plan_note=note or "",
                            plan_error=str(exc))
    uow.audit(actor=user, action="create", resource="plan", resource_id=row.id, patient_id=patient.id)
    return redirect(f"/app/patients/{patient.id}?recorded=plan#h-plan")


@router.get("/app/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(patient_id: int, request: Request, uow: UowDep, kb: KbDep, settings: SettingsDep,
                 recorded: str | None = None) -> Response:
    """A clinician sees the assessment; a patient, their own diary (with help first at crisis level)."""
    user = require_user(request, uow.session)
    patient = open_patient(uow, user, patient_id, action="read", resource="patient")
    if user.role != "clinician":
        ctx = course_ctx(uow.session, patient, kb, show_cows=False)
        signal = crisis(ctx["score_rows"], patient, kb, settings)
        return render(request, "patient_home.html", {"patient": patient, "recorded": recorded,
                                                     "crisis_signal": signal, **ctx}, user=user)
    return _result_page(request, uow, kb, settings, user, patient, recorded=recorded)


@router.post("/app/patients/{patient_id}/override", response_class=HTMLResponse)
async def override_submit(patient_id: int, request: Request, uow: UowDep, kb: KbDep,
                          settings: SettingsDep) -> Response:
    """The tramadol schedule for a patient it is to be avoided for, with the clinician's reason: the same
    override as the API's ``override_reason`` (never for ``contraindicated``); the reason goes into the
    audit log only (a POST, so it is in no URL and no access log)."""
    user = require_clinician(request, uow.session)
    form = await posted(request)
    patient = open_patient(uow, user, patient_id, action="read", resource="patient")
    reason = " ".join(str(form.get("override_reason") or "").split())[:500]
    if len(reason) < 10:
        return _result_page(request, uow, kb, settings, user, patient, status=422,
                            override_error="override_reason: give your clinical reason (at least 10 characters; "
                                           "kept in the audit log).")
    uow.audit(actor=user, action="assess_override", resource="patient", resource_id=patient.id,
              patient_id=patient.id, outcome="override", reason=reason)
    return _result_page(request, uow, kb, settings, user, patient, override=reason)
