"""Patient input (format version 1): validation errors name the field; nothing is dropped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from withdrawal.assess import assess
from withdrawal.errors import InputError, WithdrawalError
from withdrawal.knowledge.loader import default_kb
from withdrawal.patient import parse_patient, resolve

KB = default_kb()


def p(**changes: Any) -> dict[str, Any]:
    return {"age_years": 40, "opioid": {"substance": "heroin", "hours_since_last_use": 20}, **changes}


@pytest.mark.parametrize(
    ("raw", "field", "mention"),
    [
        ({"sex": "male"}, "age_years", "required"),
        (p(age_years=121), "age_years", "120"),
        (p(age_years="forty"), "age_years", "integer"),
        (p(sex="M"), "sex", "female"),
        (p(opioid={"substance": "kratom", "hours_since_last_use": 5}), "opioid.substance", "heroin"),
        (p(opioid={"substance": "heroin", "hours_since_last_use": -1}), "opioid.hours_since_last_use", "0"),
        (p(child_pugh="D"), "child_pugh", "'A'"),
        (p(cyp2d6_phenotype="extensive"), "cyp2d6_phenotype", "ultrarapid"),
        (p(setting="home"), "setting", "inpatient"),
        (p(medications=[{"status": "active"}]), "medications[0]", "name or an rxnorm"),
        (p(medications=[{"name": "x", "status": "paused"}]), "medications[0].status", "stopped"),
        (p(medications=[{"name": "x", "rxnorm": "abc"}]), "medications[0].rxnorm", "pattern"),
        (p(conditions="epilepsy"), "conditions", "tuple"),
        (p(creatinine_clearance_ml_min=-5), "creatinine_clearance_ml_min", "0"),
        (p(favourite_colour="blue"), "favourite_colour", "unknown field"),
    ],
)
def test_bad_input_names_the_field(raw: dict[str, Any], field: str, mention: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_patient(raw)
    assert exc.value.field == field
    assert mention in str(exc.value)


def test_not_an_object() -> None:
    with pytest.raises(InputError, match="patient"):
        parse_patient([1, 2])


def test_wrapper_with_patient_key_is_accepted() -> None:
    assert parse_patient({"patient": p()}).age_years == 40


def test_names_match_case_insensitively_on_generic_or_brand() -> None:
    patient = resolve(parse_patient(p(medications=[{"name": "ZOLOFT"}, {"name": "Fluoxetine"}])), KB)
    assert patient.active_drugs == {"sertraline", "fluoxetine"}


def test_rxnorm_ingredient_code_matches() -> None:
    patient = resolve(parse_patient(p(medications=[{"rxnorm": "4493"}])), KB)
    assert patient.active_drugs == {"fluoxetine"}


def test_product_description_finds_its_ingredients() -> None:
    name = "Acetaminophen 325 MG / oxyCODONE Hydrochloride 5 MG Oral Tablet"
    patient = resolve(parse_patient(p(medications=[{"name": name}])), KB)
    assert patient.active_drugs == {"acetaminophen", "oxycodone"}


def test_unrecognised_items_are_reported_not_dropped() -> None:
    raw = p(
        medications=[{"name": "Zzzmadeup"}, {"rxnorm": "99999999"}],
        conditions=["bad_knee", "G40.909"],
        allergies=["penicillin"],
    )
    patient = resolve(parse_patient(raw), KB)
    assert set(patient.unrecognised) == {"Zzzmadeup", "rxnorm:99999999", "bad_knee", "penicillin"}
    assert patient.conditions == {"seizure_disorder"}


def test_unknown_rxnorm_falls_back_to_the_name() -> None:
    patient = resolve(parse_patient(p(medications=[{"rxnorm": "99999999", "name": "Klonopin"}])), KB)
    assert patient.active_drugs == {"clonazepam"}
    assert patient.unrecognised == ()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
FIELDS = ["age_years", "sex", "opioid", "conditions", "medications", "allergies", "cows", "pregnant",
          "creatinine_clearance_ml_min", "child_pugh", "cyp2d6_phenotype", "setting"]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
def test_arbitrary_json_is_assessed_or_refused_cleanly(fields: dict[str, Any]) -> None:
    raw = {"age_years": 30, **fields}
    try:
        result = assess(raw, KB)
    except WithdrawalError as exc:
        assert ":" in str(exc)  # "field: message"
        return
    json.dumps(result.to_dict())


def test_a_seven_letter_word_is_free_text_not_a_procedure_code(kb: Any) -> None:
    """ICD-10-PCS codes have 7 characters with a digit; a misspelt 7-letter word ("seizurs") is free
    text the vocabulary does not know, so it raises the incomplete screen instead of being set aside."""
    from withdrawal.assess import assess_patient

    a = assess_patient(parse_patient({"version": 1, "age_years": 29, "conditions": ["seizurs", "0DTJ4ZZ"]}), kb)
    assert "condition: seizurs" in a.patient.unresolved
    assert "seizurs" not in a.to_dict()["out_of_scope"]
