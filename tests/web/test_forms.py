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


def _drug_names() -> list[str]:
    from withdrawal.knowledge.loader import default_kb

    return sorted(d.name for d in default_kb().vocabulary.drugs if "," not in d.name)


numbers = st.one_of(st.integers(0, 300).map(float), st.integers(0, 3000).map(lambda n: n / 10))
medication = st.one_of(
    st.builds(lambda n, d: {"name": n, "status": "active", **({"dose_mg_per_day": d} if d is not None else {})},
              st.sampled_from(_drug_names()), st.none() | numbers),
    st.builds(lambda n, d: {"name": n, "status": "stopped", **({"days_since_stopped": d} if d is not None else {})},
              st.sampled_from(_drug_names()), st.none() | numbers),
    st.builds(lambda c: {"rxnorm": c, "status": "active"}, st.sampled_from(["10689", "36437", "8123"])),
)
stored_records = st.fixed_dictionaries(
    {"age_years": st.integers(0, 120), "conditions": st.lists(st.sampled_from(["G40.909", "sleep_apnea", "I10"])),
     "allergies": st.lists(st.sampled_from(["penicillin", "sulfa"])), "medications": st.lists(medication, max_size=4),
     "pregnant": st.booleans(), "breastfeeding": st.booleans(), "weight_kg": st.sampled_from([60.0, 82.5])},
    optional={"sex": st.sampled_from(["female", "male"]), "setting": st.sampled_from(["inpatient", "outpatient"]),
              "creatinine_clearance_ml_min": numbers, "cyp2d6_phenotype": st.sampled_from(["poor", "ultrarapid"]),
              "child_pugh": st.sampled_from(["A", "C"]),
              "opioid": st.builds(lambda s, h: {"substance": s, **({"hours_since_last_use": h} if h else {})},
                                  st.sampled_from(["heroin", "fentanyl"]), st.none() | numbers)},
)


@settings(max_examples=200, deadline=None)
@given(stored_records)
def test_editing_without_changes_keeps_the_record(stored: dict[str, Any]) -> None:
    """Open the edit form on a stored record and save it unchanged: the same patient, weight and codes kept."""
    from withdrawal.web.forms import form_from_patient, merge_edit

    name, edited, errors = patient_from_form(form_from_patient("P", stored))
    assert errors == {} and name == "P"

    def canonical(data: dict[str, Any]) -> dict[str, Any]:  # the form lists current, then stopped medications
        out = parse_patient(data).model_dump()
        out["medications"] = sorted(out["medications"], key=repr)
        return out

    assert canonical(merge_edit(stored, edited)) == canonical(stored)


def test_edit_drops_what_the_clinician_cleared_and_keeps_codes() -> None:
    from withdrawal.web.forms import form_from_patient, merge_edit

    stored = {"age_years": 50, "sex": "male", "opioid": {"substance": "heroin"}, "weight_kg": 70.0,
              "medications": [{"name": "Ultram", "rxnorm": "10689", "status": "active"}]}
    form = form_from_patient("P", stored)
    form.pop("sex")
    form.pop("substance")
    form["current_medications"] += "\nsertraline, 100"
    _, edited, errors = patient_from_form(form)
    merged = merge_edit(stored, edited)
    assert errors == {} and "sex" not in merged and "opioid" not in merged and merged["weight_kg"] == 70.0
    assert merged["medications"] == [{"name": "Ultram", "status": "active", "rxnorm": "10689"},
                                     {"name": "sertraline", "status": "active", "dose_mg_per_day": 100.0}]
