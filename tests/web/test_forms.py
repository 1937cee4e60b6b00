"""The clinician forms' parsing: entries to the patient format, errors named by form field, never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from withdrawal.errors import InputError
from withdrawal.patient import parse_patient
from withdrawal.web.forms import dose_from_form, form_field, patient_from_form

KEYS = ["display_name", "age_years", "sex", "setting", "cyp2d6_phenotype", "child_pugh", "pregnant",
        "breastfeeding", "creatinine_clearance_ml_min", "substance", "hours_since_last_use", "conditions",
        "allergies", "current_medications", "stopped_medications"]


def test_entries_become_the_patient_format() -> None:
    name, data, errors = patient_from_form({
        "display_name": " F. K. ", "age_years": "41", "sex": "female", "breastfeeding": "on", "substance": "heroin",
        "hours_since_last_use": "14", "conditions": "G40.909\n\nsleep_apnea", "current_medications":
        "tramadol, 200\nsertraline", "stopped_medications": "phenelzine, 5\nNardil", "allergies": "penicillin",
        "creatinine_clearance_ml_min": "25,5",
    })
    assert errors == {} and name == "F. K."
    assert data["age_years"] == 41 and data["breastfeeding"] is True and data["pregnant"] is False
    assert data["opioid"] == {"substance": "heroin", "hours_since_last_use": 14.0}
    assert data["conditions"] == ["G40.909", "sleep_apnea"]
    assert data["creatinine_clearance_ml_min"] == 25.5
    assert data["medications"] == [
        {"name": "tramadol", "status": "active", "dose_mg_per_day": 200.0},
        {"name": "sertraline", "status": "active"},
        {"name": "phenelzine", "status": "stopped", "days_since_stopped": 5.0},
        {"name": "Nardil", "status": "stopped"},  # no number: stopped today, the strict reading
    ]
    assert parse_patient(data).age_years == 41


def test_errors_name_the_form_field() -> None:
    _, _, errors = patient_from_form({"age_years": "41.5", "current_medications": "tramadol, lots",
                                      "hours_since_last_use": "3", "sex": "robot"})
    assert set(errors) == {"display_name", "age_years", "current_medications", "substance", "sex"}
    assert "female" in errors["sex"]  # the allowed values
    assert form_field("medications[2].days_since_stopped") == "current_medications"
    assert form_field("opioid.hours_since_last_use") == "hours_since_last_use"
    assert form_field("age_years") == "age_years"


def test_dose_form() -> None:
    fields, hours, errors = dose_from_form({"drug": "Ultram", "dose_mg": "50", "hours_ago": "1.5"})
    assert errors == {} and fields == {"drug": "Ultram", "dose_mg": 50.0, "kind": "administration"} and hours == 1.5
    _, _, errors = dose_from_form({"drug": "", "dose_mg": "0", "hours_ago": "100", "kind": "stolen"})
    assert set(errors) == {"drug", "dose_mg", "hours_ago", "kind"}


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), st.text(max_size=60)))
def test_any_entries_give_errors_or_data_the_model_judges(form: dict[str, Any]) -> None:
    _, data, errors = patient_from_form(form)
    if errors:
        return
    try:
        parse_patient(data)
    except InputError as exc:  # refused with the field named, never another exception
        assert form_field(exc.field)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["drug", "dose_mg", "hours_ago", "kind"]), st.text(max_size=30)))
def test_any_dose_entries_are_parsed_or_refused(form: dict[str, Any]) -> None:
    fields, hours, errors = dose_from_form(form)
    if not errors:
        assert fields["drug"] and 0 < fields["dose_mg"] <= 100_000 and 0 <= hours <= 72
