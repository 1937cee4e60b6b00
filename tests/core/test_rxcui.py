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

Added later from the same files (see each drug's ``code_note``):

- butalbital 19860: rxnorm_ingredients_extract (web/data/B.json, TTY IN), opioid_mme_r4_codes
  (input/cql/ConversionFactorsTests.cql) and opioid_cds_r4 (OMTKLogicMK2019.cql, by ingredientCode).
- aspirin 1191: opioid_mme_r4_codes and opioid_cds_r4 give it as aspirin's ingredient code, agreeing
  with cpic_schema and us_core_allergy_substances (no stored file prints its term type).
- one file only, stating TTY IN (rxnorm_ingredients_extract web/data/<letter>.json at commit
  2810603): lofexidine 28863, rasagiline 134748, eletriptan 231049, ritonavir 85762, flurazepam 4501,
  clorazepate 2353, estazolam 4077, lisdexamfetamine 700810, methamphetamine 6816, phentermine 8152,
  cocaine 2653, cinacalcet 407990.

Alprazolam, aripiprazole, apixaban, amiodarone and amphetamine have codes in one or two of these
files, but the file that states the term type for names beginning with A (web/data/A.json) was
not available, so they carry no code; nor do heroin and St John's wort (not in the prescribable
RxNorm subset), insulin as such, kratom or xylazine.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from withdrawal.assess import assess_patient
from withdrawal.intake import read_patient
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.patient import parse_patient, resolve

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@pytest.mark.parametrize(
    ("code", "drug"),
    [
        ("51272", "quetiapine"),
        ("2626", "clozapine"),
        ("6754", "meperidine"),
        ("4815", "glyburide"),
        ("1114195", "rivaroxaban"),
        ("5224", "heparin"),
        ("19860", "butalbital"),
        ("1191", "aspirin"),
        ("28863", "lofexidine"),
        ("134748", "rasagiline"),
        ("231049", "eletriptan"),
        ("85762", "ritonavir"),
        ("4501", "flurazepam"),
        ("2353", "clorazepate"),
        ("4077", "estazolam"),
        ("700810", "lisdexamfetamine"),
        ("6816", "methamphetamine"),
        ("8152", "phentermine"),
        ("2653", "cocaine"),
        ("407990", "cinacalcet"),
    ],
)
def test_a_medication_given_only_by_its_rxnorm_code_resolves(kb: KnowledgeBase, code: str, drug: str) -> None:
    patient = resolve(parse_patient({"age_years": 40, "medications": [{"rxnorm": code}]}), kb)
    assert patient.active_drugs == {drug}
    assert patient.unrecognised == ()


@pytest.mark.parametrize("drug", ["alprazolam", "aripiprazole", "apixaban", "amiodarone", "amphetamine",
                                  "heroin", "st_johns_wort", "insulin", "kratom", "xylazine"])  # fmt: skip
def test_drugs_without_a_code_in_a_stored_source_carry_none(kb: KnowledgeBase, drug: str) -> None:
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


def _record_coded_only_by(code: str) -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "p", "birthDate": "1985-03-02", "gender": "male"}
    order = {
        "resourceType": "MedicationRequest",
        "id": "m",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "authoredOn": "2025-05-01",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
    }  # no text, no display
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}, {"resource": order}]}


@pytest.mark.parametrize(
    ("code", "drug", "finding", "verdict"),
    [
        ("2353", "clorazepate", "cns_depressant", "avoid"),
        ("19860", "butalbital", "cns_depressant", "avoid"),
        ("134748", "rasagiline", "maoi", "contraindicated"),
        ("85762", "ritonavir", "cyp3a4_inhibitor", "caution"),
        ("407990", "cinacalcet", "cyp2d6_inhibitor", "avoid"),
    ],
)
def test_an_ehr_order_coded_only_by_a_new_rxcui_gives_the_drugs_finding(
    kb: KnowledgeBase, code: str, drug: str, finding: str, verdict: str
) -> None:
    """A MedicationRequest that carries only the RxCUI is the drug, screened, not an unresolved medicine."""
    patient = read_patient(_record_coded_only_by(code), kb, date(2025, 6, 1))
    assert [(m.name, m.rxnorm) for m in patient.medications] == [(None, code)]
    assert resolve(patient, kb).active_drugs == {drug}
    answer = assess_patient(patient, kb).to_dict()
    assert answer["tramadol"]["verdict"] == verdict
    assert finding in [f["code"] for f in answer["tramadol"]["findings"]]
    assert answer["not_screened"] == []


@pytest.mark.parametrize("written", ["Tylenol #3", "Tylenol 3", "Tylenol No. 4", "TYLENOL #4 tablet"])
def test_tylenol_number_shorthand_is_codeine_with_acetaminophen(kb: KnowledgeBase, written: str) -> None:
    """'Tylenol #3' is acetaminophen with codeine: read as acetaminophen alone, the codeine (an opioid
    agonist beside tramadol) was missed and the screen came out clean; plain Tylenol stays acetaminophen."""
    found = kb.resolve_medication(None, written)
    assert set(found.drugs) == {"codeine", "acetaminophen"} and found.complete
    assert kb.resolve_medication(None, "Tylenol 500 mg").drugs == ("acetaminophen",)
