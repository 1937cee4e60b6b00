"""The record generator's Procedures come from the vocabulary (the conditions it records by a procedure
code: the post-tonsillectomy contraindication's), not from codes typed again: every vocabulary procedure
code is drawn, each one reads back through the mapper as its condition, and the generator's one unknown
procedure reads as no condition. (The bulk screen reads Procedures through the same ``condition_entries``;
``tests/population/test_differential.py`` holds the two paths equal on generated records.)"""

from __future__ import annotations

import random
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from withdrawal.fhir import codes
from withdrawal.fhir.generate import RecordGenerator
from withdrawal.fhir.mapping import concept_conditions
from withdrawal.knowledge.loader import KnowledgeBase, default_kb

KB = default_kb()
AS_OF = date(2026, 1, 1)


def _condition_of(concept: object) -> tuple[str, ...]:
    return concept_conditions(concept, KB, procedure=True)


def test_the_contraindications_procedures_are_the_vocabularys(kb: KnowledgeBase) -> None:
    gen = RecordGenerator(kb, AS_OF, random.Random(0))
    rule = next(r for r in kb.tramadol.rules if r.code == "adolescent_post_tonsillectomy")
    keys = {k for m in rule.when for k in m.conditions_any}
    prefixes = [p for k in sorted(keys) for p in kb.conditions[k].icd10pcs]
    assert prefixes and [c[:len(p)] for c, p in zip(gen._pcs, prefixes, strict=True)] == prefixes
    assert set(gen._procedure_sct) == {s for k in keys for s in kb.conditions[k].snomed}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_a_generated_procedure_reads_as_its_vocabulary_condition(seed: int) -> None:
    gen = RecordGenerator(KB, AS_OF, random.Random(seed))
    by_code = {code: cond for cond in KB.conditions.values() if cond.icd10pcs
               for code in (*cond.snomed, *(g for g in gen._pcs if g.startswith(cond.icd10pcs)))}
    for _ in range(20):
        res = gen.procedure({"reference": "Patient/p"})
        coding = res["code"]["coding"][0]
        got = _condition_of(res["code"])
        known = by_code.get(coding["code"])
        if known is not None:
            assert got == (known.key,), coding
        elif coding.get("display"):
            # an unknown code whose display names a tonsillectomy: named as not screened, never read as it
            assert got == (f"procedure not screened: SNOMED {coding['code']}: {coding['display']}",), coding
        else:
            assert got == (coding["code"],), coding  # the unknown one is listed under its code, no condition
            assert coding["system"] in (codes.SNOMED, *codes.ICD10PCS)
