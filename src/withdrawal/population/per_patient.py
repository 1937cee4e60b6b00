"""The bulk screen's outputs computed for one patient: the reference the engines are tested against.

:class:`PatientEvaluator` runs the per-patient :func:`~withdrawal.safety.screen_tramadol` on the
knowledge base the bulk screen applies (``compiler.bulk_kb``), evaluates the population flags'
match tests with the screen's own matcher, and computes the MME and the option findings. The
synthetic export's ground truth and the differential tests use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Level
from withdrawal.patient import PatientIn, resolve
from withdrawal.population.compiler import bulk_kb, option_treatments
from withdrawal.population.flags import FindingTest, FlagTest, HighMmeTest
from withdrawal.population.mme import MmeTable, mg_per_day_to_mme
from withdrawal.safety import screen_tramadol
from withdrawal.safety.matching import facts_for, fires


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
        for drug in sorted(kb.resolve_medication(med.rxnorm, med.name).drugs):
            total += mg_per_day_to_mme(drug, med.dose_mg_per_day, table)
    return round(total, 3)


class PatientEvaluator:
    """Screen one ``PatientIn`` with the KB rules and the population flags."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = bulk_kb(kb)
        self.table, self.flags = kb.mme, kb.population_flags

    def __call__(self, data: PatientIn) -> PatientScreen:
        from withdrawal.plan.plan import option_findings

        patient = resolve(data, self.kb)
        result = screen_tramadol(patient, self.kb)
        facts = facts_for(patient, self.kb)
        codes = set(result.codes)
        mme = patient_mme(data, self.kb, self.table)

        def holds(t: FlagTest) -> bool:
            if isinstance(t, FindingTest):
                return t.code in codes
            if isinstance(t, HighMmeTest):
                return mme >= self.table.threshold
            return fires(t.matches, facts) is not None

        flags = {}
        for f in self.flags:
            flags[f.id] = (
                all(holds(t) for t in f.all_of)
                and (not f.any_of or any(holds(t) for t in f.any_of))
                and not any(holds(t) for t in f.none_of)
            )
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
