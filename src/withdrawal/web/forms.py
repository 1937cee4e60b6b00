"""Clinician forms to patient data: the new-patient form and the dose form.

Only the shape is checked here (a number is a number, a line is an entry); the
clinical validation is the patient model's own (``parse_patient``), whose errors
name the field, so the web pages and the API refuse the same things.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from withdrawal.knowledge.models import ChildPugh, Phenotype, Setting, Sex, Substance

# The choices are the patient model's own, so the form offers exactly what it accepts.
SUBSTANCES: tuple[str, ...] = get_args(Substance)
PHENOTYPES: tuple[str, ...] = get_args(Phenotype)
SEXES: tuple[str, ...] = get_args(Sex)
SETTINGS: tuple[str, ...] = get_args(Setting)
CHILD_PUGH: tuple[str, ...] = get_args(ChildPugh)
MAX_LINES = 50


def _text(form: Mapping[str, Any], name: str, limit: int = 200) -> str:
    return str(form.get(name) or "").strip()[:limit]


def _lines(form: Mapping[str, Any], name: str) -> list[str]:
    raw = str(form.get(name) or "")[:20_000]
    return [line.strip() for line in raw.splitlines() if line.strip()][:MAX_LINES]


def _number(text: str, field: str, label: str, errors: dict[str, str]) -> float | None:
    if not text:
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        errors[field] = f"{label}: enter a number (got {text[:20]!r})"
        return None
    if value != value or value in (float("inf"), float("-inf")):
        errors[field] = f"{label}: enter a number (got {text[:20]!r})"
        return None
    return value


def _choice(form: Mapping[str, Any], name: str, allowed: tuple[str, ...], errors: dict[str, str]) -> str | None:
    value = _text(form, name)
    if not value:
        return None
    if value not in allowed:
        errors[name] = f"{name}: choose one of {', '.join(allowed)}"
        return None
    return value


def _named_number(line: str, field: str, label: str, errors: dict[str, str]) -> tuple[str, float | None]:
    """``name`` or ``name, number``: the part after the last comma is the number."""
    name, sep, rest = line.rpartition(",")
    if not sep:
        return line, None
    value = _number(rest.strip(), field, f"{label} ({line[:40]})", errors)
    return name.strip(), value


def patient_from_form(form: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(display name, patient input version 1, error per form field) from the new-patient form."""
    errors: dict[str, str] = {}
    name = _text(form, "display_name")
    if not name:
        errors["display_name"] = "display_name: a name or initials to find the patient by"
    data: dict[str, Any] = {}
    age_text = _text(form, "age_years", 10)
    age = _number(age_text, "age_years", "age_years", errors)
    if age_text == "":
        errors["age_years"] = "age_years: needed (whole years, 0-120)"
    elif age is not None:
        if age != int(age):
            errors["age_years"] = "age_years: whole years, 0-120"
        else:
            data["age_years"] = int(age)
    for field, allowed in (("sex", SEXES), ("setting", SETTINGS), ("cyp2d6_phenotype", PHENOTYPES),
                           ("child_pugh", CHILD_PUGH)):
        if (value := _choice(form, field, allowed, errors)) is not None:
            data[field] = value
    data["pregnant"] = form.get("pregnant") == "on"
    data["breastfeeding"] = form.get("breastfeeding") == "on"
    crcl = _number(_text(form, "creatinine_clearance_ml_min", 20), "creatinine_clearance_ml_min",
                   "creatinine_clearance_ml_min", errors)
    if crcl is not None:
        data["creatinine_clearance_ml_min"] = crcl
    substance = _choice(form, "substance", SUBSTANCES, errors)
    hours = _number(_text(form, "hours_since_last_use", 20), "hours_since_last_use", "hours_since_last_use", errors)
    if substance is not None:
        data["opioid"] = {"substance": substance, **({"hours_since_last_use": hours} if hours is not None else {})}
    elif hours is not None:
        errors["substance"] = "substance: say which opioid the hours since last use refer to"
    data["conditions"] = _lines(form, "conditions")
    data["allergies"] = _lines(form, "allergies")
    meds: list[dict[str, Any]] = []
    for line in _lines(form, "current_medications"):
        drug, dose = _named_number(line, "current_medications", "current_medications: daily dose in mg", errors)
        meds.append({"name": drug, "status": "active", **({"dose_mg_per_day": dose} if dose is not None else {})})
    for line in _lines(form, "stopped_medications"):
        drug, days = _named_number(line, "stopped_medications", "stopped_medications: days since stopped", errors)
        meds.append({"name": drug, "status": "stopped", **({"days_since_stopped": days} if days is not None else {})})
    data["medications"] = meds
    return name, data, errors


def form_field(path: str) -> str:
    """The form field that holds a patient-model field (an error's ``medications[2].name``, say)."""
    head = path.split(".", 1)[0].split("[", 1)[0]
    if head == "opioid":
        return "hours_since_last_use" if "hours" in path else "substance"
    if head == "medications":
        return "current_medications"
    return head


def dose_from_form(form: Mapping[str, Any]) -> tuple[dict[str, Any], float, dict[str, str]]:
    """(administration fields, hours ago, error per form field) from the dose form."""
    errors: dict[str, str] = {}
    drug = _text(form, "drug", 100)
    if not drug:
        errors["drug"] = "drug: the medicine given (generic or brand name)"
    dose = _number(_text(form, "dose_mg", 20), "dose_mg", "dose_mg", errors)
    if dose is None and "dose_mg" not in errors:
        errors["dose_mg"] = "dose_mg: needed, in mg"
    elif dose is not None and not 0 < dose <= 100_000:
        errors["dose_mg"] = "dose_mg: more than 0 and at most 100000 mg"
    kind = _choice(form, "kind", ("administration", "dispense"), errors) or "administration"
    hours = _number(_text(form, "hours_ago", 20), "hours_ago", "hours_ago", errors) or 0.0
    if not 0 <= hours <= 72:
        errors["hours_ago"] = "hours_ago: between 0 (now) and 72"
    return {"drug": drug, "dose_mg": dose, "kind": kind}, hours, errors


def _fmt(value: float) -> str:
    return f"{value:g}"


def form_from_patient(display_name: str, data: Mapping[str, Any]) -> dict[str, str]:
    """The new-patient form's fields filled from a stored record (patient format version 1), for editing."""
    form: dict[str, str] = {"display_name": display_name, "age_years": str(data.get("age_years", ""))}
    for field in ("sex", "setting", "cyp2d6_phenotype", "child_pugh"):
        if data.get(field) is not None:
            form[field] = str(data[field])
    for flag in ("pregnant", "breastfeeding"):
        if data.get(flag):
            form[flag] = "on"
    if data.get("creatinine_clearance_ml_min") is not None:
        form["creatinine_clearance_ml_min"] = _fmt(float(data["creatinine_clearance_ml_min"]))
    opioid = data.get("opioid") or {}
    if opioid.get("substance"):
        form["substance"] = str(opioid["substance"])
        if opioid.get("hours_since_last_use") is not None:
            form["hours_since_last_use"] = _fmt(float(opioid["hours_since_last_use"]))
    form["conditions"] = "\n".join(str(c) for c in data.get("conditions") or ())
    form["allergies"] = "\n".join(str(a) for a in data.get("allergies") or ())
    current, stopped = [], []
    for med in data.get("medications") or ():
        name = med.get("name") or f"rxnorm:{med.get('rxnorm')}"
        if med.get("status") == "stopped":
            days = med.get("days_since_stopped")
            stopped.append(name if days is None else f"{name}, {_fmt(float(days))}")
        else:
            dose = med.get("dose_mg_per_day")
            current.append(name if dose is None else f"{name}, {_fmt(float(dose))}")
    form["current_medications"] = "\n".join(current)
    form["stopped_medications"] = "\n".join(stopped)
    return form


def merge_edit(stored: Mapping[str, Any], edited: Mapping[str, Any]) -> dict[str, Any]:
    """The edited fields over the stored record, keeping what the form does not show.

    The form shows no body weight, no scale answers and no RxNorm codes: those stay as
    stored. A medication line that names a stored medication keeps its code; a line
    ``rxnorm:NNN`` (a stored medication that had only a code) stays a code.
    """
    out = {**stored, **{k: v for k, v in edited.items() if k != "medications"}}
    if "opioid" not in edited:
        out.pop("opioid", None)
    for field in ("sex", "setting", "cyp2d6_phenotype", "child_pugh", "creatinine_clearance_ml_min"):
        if field not in edited:
            out.pop(field, None)
    codes = {(m.get("name"), m.get("status", "active")): m.get("rxnorm")
             for m in stored.get("medications") or () if m.get("name") and m.get("rxnorm")}
    meds = []
    for med in edited.get("medications") or ():
        name = med["name"]
        if name.startswith("rxnorm:") and name[7:].isdigit():
            meds.append({**{k: v for k, v in med.items() if k != "name"}, "rxnorm": name[7:]})
            continue
        code = codes.get((name, med["status"]))
        meds.append({**med, "rxnorm": code} if code else med)
    out["medications"] = meds
    return out
