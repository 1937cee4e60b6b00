"""RxNorm ingredient codes added for the drugs of the 2026-12-04 vocabulary widening.

Each code below was recorded only because two public files agree on it, one of them stating
term type IN (see the drug's ``code_note`` in vocabulary.yaml):

- quetiapine 51272: rxnorm_ingredients_extract (davidanderson3/rxnorm-ingredients,
  web/data/Q.json, TTY IN) and us_core_allergy_substances (MayJuun/fhir,
  fhir_uscore/lib/resource_types/allergy_intolerance/allergy_intolerance.enums.dart).
- clozapine 2626: rxnorm_ingredients_extract (web/data/C.json, TTY IN) and cpic_schema
  (cpicpgx/cpic-schema, drug.sql at commit 97f9e3b).
- meperidine 6754: rxnorm_ingredients_extract (web/data/M.json, TTY IN),
  us_core_allergy_substances (allergy_intolerance.enums.dart) and opioid_mme_r4_codes
  (cqframework/opioid-mme-r4, input/cql/OMTKData.cql, ingredientCode).
- glyburide 4815: rxnorm_ingredients_extract (web/data/G.json, TTY IN), cpic_schema
  (drug.sql, named glibenclamide) and us_core_allergy_substances.
- rivaroxaban 1114195: rxnorm_ingredients_extract (web/data/R.json, TTY IN),
  us_core_allergy_substances and hadlock_medication_classes
  (Hadlock-Lab/COVID-19_vaccination_in_pregnancy, utilities/medications_cc_registry.py).
- heparin 5224: rxnorm_ingredients_extract (web/data/H.json, TTY IN),
  us_core_allergy_substances and hadlock_medication_classes.

Aripiprazole, aspirin, apixaban, amiodarone and amphetamine have codes in one or two of these
files, but the file that states the term type for names beginning with A (web/data/A.json) was
not available, so they carry no code.
"""

from __future__ import annotations

import pytest

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.patient import parse_patient, resolve


@pytest.mark.parametrize(
    ("code", "drug"),
    [
        ("51272", "quetiapine"),
        ("2626", "clozapine"),
        ("6754", "meperidine"),
        ("4815", "glyburide"),
        ("1114195", "rivaroxaban"),
        ("5224", "heparin"),
    ],
)
def test_a_medication_given_only_by_its_rxnorm_code_resolves(kb: KnowledgeBase, code: str, drug: str) -> None:
    patient = resolve(parse_patient({"age_years": 40, "medications": [{"rxnorm": code}]}), kb)
    assert patient.active_drugs == {drug}
    assert patient.unrecognised == ()


@pytest.mark.parametrize("drug", ["aripiprazole", "aspirin", "apixaban", "amiodarone", "amphetamine",
                                  "cocaine", "insulin", "kratom", "xylazine"])  # fmt: skip
def test_drugs_without_two_agreeing_sources_carry_no_code(kb: KnowledgeBase, drug: str) -> None:
    entry = next(d for d in kb.vocabulary.drugs if d.id == drug)
    assert entry.rxcui is None
    assert entry.code_note


def test_no_two_drugs_share_an_rxcui(kb: KnowledgeBase) -> None:
    owners: dict[str, list[str]] = {}
    for d in kb.vocabulary.drugs:
        if d.rxcui:
            owners.setdefault(d.rxcui, []).append(d.id)
    shared = {code: ids for code, ids in owners.items() if len(ids) > 1}
    assert shared == {}
    assert len(kb.drug_rxcui) == len(owners)
