"""Tramadol safety screen: contraindications, interactions, populations, dose limits.

The rules are data (``knowledge/data/tramadol.yaml``); this module only
evaluates their matches against the patient's facts. The verdict is the
strictest finding; with no finding the verdict is ``acceptable``, which means
"no patient-specific reason against", never "recommended": tramadol stays an
off-label, second-line option for withdrawal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import LEVELS, DoseLimit, Level, Match, Rule, Statement
from withdrawal.patient import Patient

_RANK = {level: i for i, level in enumerate(LEVELS)}


def level_rank(level: Level) -> int:
    """Position of a verdict level in acceptable < caution < avoid < contraindicated."""
    return _RANK[level]


@dataclass(frozen=True)
class Finding:
    """One reason for care with tramadol, merged over the rules that share its code."""

    code: str
    level: Level
    category: str
    message: str
    action: str
    triggers: tuple[str, ...]
    rule_ids: tuple[str, ...]
    sources: tuple[str, ...]
    verification: str


@dataclass(frozen=True)
class DoseLimitResult:
    """The immediate-release ceiling that applies, and every limit considered."""

    max_daily_mg: int
    interval_h: int
    limit_id: str
    reason: str
    sources: tuple[str, ...]
    applicable: tuple[str, ...]


@dataclass(frozen=True)
class ScreenResult:
    verdict: Level
    findings: tuple[Finding, ...]
    dose_limit: DoseLimitResult
    off_label: Statement
    kb_version: str

    @property
    def max_daily_dose_mg(self) -> int:
        return self.dose_limit.max_daily_mg

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.findings)


@dataclass(frozen=True)
class _Facts:
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


def _match(m: Match, f: _Facts) -> list[str] | None:
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
        triggers.append(f"CrCl {crcl:g} mL/min")
    if m.child_pugh_in:
        if data.child_pugh not in m.child_pugh_in:
            return None
        triggers.append(f"Child-Pugh {data.child_pugh}")
    if m.substance_in:
        if data.opioid is None or data.opioid.substance not in m.substance_in:
            return None
        triggers.append(f"withdrawal from {data.opioid.substance}")
    if m.before_withdrawal_onset is not None:
        if f.before_onset is None or f.before_onset != m.before_withdrawal_onset:
            return None
        hours = data.opioid.hours_since_last_use if data.opioid else None
        triggers.append(f"last use {hours:g} h ago" if hours is not None else "recent use")
    return triggers


def _fires(matches: Iterable[Match], facts: _Facts) -> list[str] | None:
    fired: list[str] | None = None
    for m in matches:
        t = _match(m, facts)
        if t is not None:
            fired = (fired or []) + [x for x in t if x not in (fired or [])]
    return fired


def _merge(code: str, hits: list[tuple[Rule, list[str]]]) -> Finding:
    hits.sort(key=lambda h: -level_rank(h[0].level))
    top = hits[0][0]
    triggers: list[str] = []
    sources: list[str] = []
    for rule, t in hits:
        triggers.extend(x for x in t if x not in triggers)
        sources.extend(s for s in rule.sources if s not in sources)
    return Finding(
        code=code,
        level=top.level,
        category=top.category,
        message=top.message,
        action=top.action,
        triggers=tuple(triggers),
        rule_ids=tuple(r.id for r, _ in hits),
        sources=tuple(sources),
        verification=top.verification,
    )


def dose_limit(patient: Patient, kb: KnowledgeBase) -> DoseLimitResult:
    """Lowest applicable immediate-release daily maximum; the longest interval wins too."""
    facts = _Facts(patient, kb, None)
    applicable: list[DoseLimit] = [
        lim for lim in kb.tramadol.dose_limits if not lim.when or _fires(lim.when, facts)
    ]
    lowest = min(applicable, key=lambda lim: lim.max_daily_mg)
    interval = max(lim.interval_h or 0 for lim in applicable) or 6
    return DoseLimitResult(
        max_daily_mg=lowest.max_daily_mg,
        interval_h=interval,
        limit_id=lowest.id,
        reason=lowest.reason,
        sources=lowest.sources,
        applicable=tuple(lim.id for lim in applicable),
    )


def screen_tramadol(patient: Patient, kb: KnowledgeBase) -> ScreenResult:
    """Evaluate every rule; the verdict is the strictest finding."""
    facts = _Facts(patient, kb, before_withdrawal_onset(patient, kb))
    by_code: dict[str, list[tuple[Rule, list[str]]]] = {}
    for rule in kb.tramadol.rules:
        triggers = _fires(rule.when, facts)
        if triggers is not None:
            by_code.setdefault(rule.code, []).append((rule, triggers))
    findings = sorted(
        (_merge(code, hits) for code, hits in by_code.items()),
        key=lambda f: (-level_rank(f.level), f.code),
    )
    verdict: Level = findings[0].level if findings else "acceptable"
    return ScreenResult(
        verdict=verdict,
        findings=tuple(findings),
        dose_limit=dose_limit(patient, kb),
        off_label=kb.tramadol.off_label_statement,
        kb_version=kb.version,
    )
