"""A SNOMED CT condition code the knowledge base does not know, whose display or text names a screened
condition by its words ('Tonic-clonic epilepsy', 'Epilepsy with partial seizures', 'Status epilepticus'), is
named as not screened: an incomplete screen (caution or above), never a clean one. It was listed as out of
scope and the screen came out acceptable. Named, not mapped: the code is not read as the condition. Per patient
(``fhir.to_patient``) and in the bulk screen (``facts.condition_map``: the mapper's ``concept_conditions``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from withdrawal.assess import assess_patient
from withdrawal.fhir import codes, reading
from withdrawal.fhir.mapping import to_patient
from withdrawal.knowledge.loader import default_kb
from withdrawal.population.facts import condition_map

AS_OF = date(2025, 6, 1)


def _record(concept: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"resourceType": "Patient", "id": "p", "birthDate": "1980-03-04", "gender": "male"},
            {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p"},
             "clinicalStatus": {"coding": [{"code": "active"}]}, "code": concept}]


def _sct(code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": codes.SNOMED, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], **({"text": text} if text else {})}


NAMING = [
    (_sct("352818000", "Tonic-clonic epilepsy"), "SNOMED 352818000: Tonic-clonic epilepsy"),
    (_sct("230456007", "Status epilepticus (disorder)"), "SNOMED 230456007: Status epilepticus (disorder)"),
    (_sct("313307000", "Epilepsy with partial seizures"), "SNOMED 313307000: Epilepsy with partial seizures"),
    (_sct("313307000", text="Epilepsy with partial seizures"), "SNOMED 313307000: Epilepsy with partial seizures"),
    # a coding's display names it though the text does not
    (_sct("352818000", "Tonic-clonic epilepsy", text="TC seizure d/o"), "SNOMED 352818000: TC seizure d/o"),
    (_sct("62106007", "Concussion with no loss of consciousness"),
     "SNOMED 62106007: Concussion with no loss of consciousness"),
]


@pytest.mark.parametrize(("concept", "named"), NAMING)
def test_an_unknown_code_whose_text_names_a_screened_condition_is_not_screened(concept: dict[str, Any],
                                                                             named: str) -> None:
    kb = default_kb()
    p = to_patient(_record(concept), kb, as_of=AS_OF).patient
    a = assess_patient(p, kb, simulate=False)
    assert a.patient.unresolved == (f"condition: {named}",)
    assert "seizure_disorder" not in a.patient.conditions  # named, not mapped
    assert a.screen.verdict in {"caution", "avoid", "contraindicated"} and "incomplete_screen" in a.screen.codes
    [(_, _, keys, unresolved)] = condition_map([(json.dumps(concept), 0)], kb)
    assert keys == frozenset() and unresolved


def test_status_epilepticus_in_words_is_a_seizure_disorder() -> None:
    """ICD-10-CM codes status epilepticus under G40 epilepsy (G40.901): the words are a synonym."""
    kb = default_kb()
    p = to_patient(_record({"text": "Status epilepticus"}), kb, as_of=AS_OF).patient
    screen = assess_patient(p, kb, simulate=False).screen
    assert "seizure_risk" in screen.codes and screen.verdict in {"avoid", "contraindicated"}


CLEAN = [
    _sct("38341003", "Hypertensive disorder, systemic arterial (disorder)"),
    _sct("714628002", "Prediabetes"),  # one word: not "diabetes"
    _sct("8517006", "Ex-smoker (finding)"),  # nicotine dependence: no rule reads it
    _sct("233678006", "Childhood asthma"),  # asthma not recorded as acute or severe: no rule reads it
    _sct("162864005", "Body mass index 30+ - obesity (finding)"),
    _sct("444814009", "Viral sinusitis (disorder)"),
]


@pytest.mark.parametrize("concept", CLEAN)
def test_an_unknown_code_naming_no_screened_condition_stays_clean(concept: dict[str, Any]) -> None:
    kb = default_kb()
    p = to_patient(_record(concept), kb, as_of=AS_OF).patient
    a = assess_patient(p, kb, simulate=False)
    assert a.patient.unresolved == () and a.screen.verdict == "acceptable" and a.screen.codes == ()
    [(_, _, keys, unresolved)] = condition_map([(json.dumps(concept), 0)], kb)
    assert keys == frozenset() and not unresolved


def test_the_words_name_only_conditions_the_rules_read() -> None:
    kb = default_kb()
    assert kb.condition_named("Tonic-clonic epilepsy") == "seizure_disorder"
    assert kb.condition_named("Acute exacerbation of severe asthma") == "acute_severe_asthma"
    assert kb.condition_named("Epileptic") is None and kb.condition_named("Fitsum") is None
    assert kb.condition_named("Ex-smoker") is None and kb.condition_named("Anxiety state") is None
    assert reading.reading_of("Condition", "unknown code", "text naming a screened condition") == "unresolved"
