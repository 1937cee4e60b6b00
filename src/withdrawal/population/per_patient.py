"""The bulk screen's outputs computed for one patient: the reference the engines are tested against.

:class:`PatientEvaluator` runs the per-patient :func:`~withdrawal.safety.screen_tramadol` on the
knowledge base the bulk screen applies (``compiler.bulk_kb``), evaluates the population flags by
screening with a knowledge base whose rules are the flags' tests, and computes the MME and the
option findings. The synthetic export's ground truth and the differential tests use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Level, Rule
from withdrawal.patient import PatientIn, resolve
from withdrawal.population.compiler import bulk_kb, option_treatments
from withdrawal.population.flags import FLAGS, FindingTest, Flag, FlagTest, HighMmeTest, check_flags, flag_tests
from withdrawal.population.mme import MmeTable, mg_per_day_to_mme
from withdrawal.safety import screen_tramadol


@dataclass(frozen=True)
class PatientScreen:
    verdict: Level
    codes: tuple[str, ...]
    flags: Mapping[str, bool]
    mme: float
    tramadol_active: bool
    options: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Per option with option rules (``care.yaml``): the sorted codes of its findings."""


def patient_mme(data: PatientIn, kb: KnowledgeBase, table: MmeTable) -> float:
    """MME/day of the active medications with a daily dose, rounded to 3 decimals."""
    total = 0.0
    for med in data.medications:
        if med.status != "active" or med.dose_mg_per_day is None:
            continue
        single = resolve(PatientIn(age_years=0, medications=(med,)), kb)
        for drug in sorted(single.active_drugs):
            total += mg_per_day_to_mme(drug, med.dose_mg_per_day, table)
    return round(total, 3)


def _tests_kb(kb: KnowledgeBase, flags: Sequence[Flag]) -> KnowledgeBase:
    """A knowledge base whose rules are the flags' matches tests, for the per-patient screen."""
    rules = tuple(
        Rule(id=code, code=code, level="caution", category="population", when=t.matches,
             message="population flag test", action="none", sources=("pop_cdc_2022",),
             verification="verified_secondary")
        for code, t in flag_tests(flags)
    )
    return dataclasses.replace(kb, tramadol=kb.tramadol.model_copy(update={"rules": rules}))


class PatientEvaluator:
    """Screen one ``PatientIn`` with the KB rules and the population flags."""

    def __init__(self, kb: KnowledgeBase, table: MmeTable, flags: Sequence[Flag] = FLAGS) -> None:
        check_flags(kb, flags)
        kb = bulk_kb(kb)
        self.kb, self.table, self.flags = kb, table, tuple(flags)
        self._tests_kb = _tests_kb(kb, self.flags)
        self._codes = {id(t): code for code, t in flag_tests(self.flags)}

    def __call__(self, data: PatientIn) -> PatientScreen:
        patient = resolve(data, self.kb)
        result = screen_tramadol(patient, self.kb)
        fired_tests = set(screen_tramadol(patient, self._tests_kb).codes)
        codes = set(result.codes)
        mme = patient_mme(data, self.kb, self.table)

        def holds(t: FlagTest) -> bool:
            if isinstance(t, FindingTest):
                return t.code in codes
            if isinstance(t, HighMmeTest):
                return mme >= self.table.threshold
            return self._codes[id(t)] in fired_tests

        flags = {}
        for f in self.flags:
            flags[f.id] = (
                all(holds(t) for t in f.all_of)
                and (not f.any_of or any(holds(t) for t in f.any_of))
                and not any(holds(t) for t in f.none_of)
            )
        from withdrawal.plan.plan import option_findings
        from withdrawal.safety.matching import facts_for

        facts = facts_for(patient, self.kb)
        options = {t: tuple(sorted({f.code for f in option_findings(t, facts, self.kb)}))
                   for t in option_treatments(self.kb)}
        return PatientScreen(
            verdict=result.verdict,
            codes=tuple(sorted(codes)),
            flags=flags,
            mme=mme,
            tramadol_active="tramadol" in patient.active_drugs,
            options=options,
        )
