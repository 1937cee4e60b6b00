"""Evaluate the knowledge base's ``Match`` conditions against one patient.

Shared by the safety screen, the dose limits and the plan's option notes, so that a
condition written in the data means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Match
from withdrawal.patient import Patient


@dataclass(frozen=True)
class Facts:
    patient: Patient
    kb: KnowledgeBase
    before_onset: bool | None

    def drug_hits(self, m: Match) -> list[str]:
        pool = self.patient.drugs_within(m.stopped_within_days)
        hits = [d for d in m.drugs_any if d in pool]
        for cls in m.drug_classes_any:
            members = self.kb.drug_class_members.get(cls, frozenset())
            hits.extend(d for d in pool & members if d not in hits)
        return hits


def before_withdrawal_onset(patient: Patient, kb: KnowledgeBase) -> bool | None:
    """True when the last use is more recent than the earliest expected onset."""
    opioid = patient.data.opioid
    if opioid is None or opioid.hours_since_last_use is None:
        return None
    timeline = kb.timeline(opioid.substance)
    if timeline is None or timeline.onset_h is None:
        return None
    return opioid.hours_since_last_use < timeline.onset_h.low


def match_triggers(m: Match, f: Facts) -> list[str] | None:
    """Triggers when every set field of the match holds, else None."""
    p, data = f.patient, f.patient.data
    triggers: list[str] = []
    if m.age_below is not None:
        if not data.age_years < m.age_below:
            return None
        triggers.append(f"age {data.age_years}")
    if m.age_above is not None:
        if not data.age_years > m.age_above:
            return None
        triggers.append(f"age {data.age_years}")
    if m.age_at_least is not None:
        if not data.age_years >= m.age_at_least:
            return None
        triggers.append(f"age {data.age_years}")
    if m.pregnant is not None:
        if p.pregnant != m.pregnant:
            return None
        triggers.append("pregnant")
    if m.breastfeeding is not None:
        if data.breastfeeding != m.breastfeeding:
            return None
        triggers.append("breastfeeding")
    if m.conditions_any:
        hit = [c for c in m.conditions_any if c in p.conditions]
        if not hit:
            return None
        triggers.extend(hit)
    if m.drugs_any or m.drug_classes_any:
        drugs = f.drug_hits(m)
        if not drugs:
            return None
        triggers.extend(drugs)
    if m.allergy_drugs_any:
        hit = [d for d in m.allergy_drugs_any if d in p.allergy_drugs]
        if not hit:
            return None
        triggers.extend(f"allergy: {d}" for d in hit)
    if m.cyp2d6_phenotype_in:
        if data.cyp2d6_phenotype not in m.cyp2d6_phenotype_in:
            return None
        triggers.append(f"CYP2D6 {data.cyp2d6_phenotype}")
    if m.crcl_below is not None:
        crcl = data.creatinine_clearance_ml_min
        if crcl is None or not crcl < m.crcl_below:
            return None
        # the measure the value was read from: an eGFR is not named as a clearance
        triggers.append(f"eGFR {crcl:g} mL/min/1.73 m2" if data.renal_measure == "egfr" else f"CrCl {crcl:g} mL/min")
    if m.child_pugh_in:
        if data.child_pugh not in m.child_pugh_in:
            return None
        triggers.append(f"Child-Pugh {data.child_pugh}")
    if m.substance_in:
        if data.opioid is None or data.opioid.substance not in m.substance_in:
            return None
        triggers.append(f"withdrawal from {data.opioid.substance}")
    if m.setting_in:
        if data.setting not in m.setting_in:
            return None
        triggers.append(f"setting {data.setting}")
    if m.last_use_within_h is not None:
        if data.opioid is None:
            return None
        last = data.opioid.hours_since_last_use
        if last is not None and not last < m.last_use_within_h:
            return None
        triggers.append(f"last {data.opioid.substance} use {last:g} h ago" if last is not None
                        else f"last {data.opioid.substance} use: time unknown")
    if m.unresolved is not None:
        if bool(p.unresolved) != m.unresolved:
            return None
        triggers.extend(p.unresolved)
    if m.gestational_weeks_at_least is not None:
        weeks = p.gestational_weeks
        if not p.pregnant or (weeks is not None and weeks < m.gestational_weeks_at_least):
            return None
        triggers.append(f"pregnant, {weeks:g} weeks" if weeks is not None else "pregnant, gestational age unknown")
    if m.before_withdrawal_onset is not None:
        if f.before_onset is None or f.before_onset != m.before_withdrawal_onset:
            return None
        hours = data.opioid.hours_since_last_use if data.opioid else None
        triggers.append(f"last use {hours:g} h ago" if hours is not None else "recent use")
    return triggers


def fires(matches: Iterable[Match], facts: Facts) -> list[str] | None:
    fired: list[str] | None = None
    for m in matches:
        t = match_triggers(m, facts)
        if t is not None:
            fired = (fired or []) + [x for x in t if x not in (fired or [])]
    return fired


def facts_for(patient: Patient, kb: KnowledgeBase) -> Facts:
    """The patient's facts, with the withdrawal-onset test precomputed."""
    return Facts(patient, kb, before_withdrawal_onset(patient, kb))
