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
from withdrawal.knowledge.models import LEVELS, DoseLimit, Level, OptionRule, Rule, Statement
from withdrawal.patient import Patient
from withdrawal.safety.matching import Facts, facts_for, fires

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


AnyRule = Rule | OptionRule


def _merge(code: str, hits: list[tuple[AnyRule, list[str]]]) -> Finding:
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
        category=top.category if isinstance(top, Rule) else "option",
        message=top.message,
        action=top.action,
        triggers=tuple(triggers),
        rule_ids=tuple(r.id for r, _ in hits),
        sources=tuple(sources),
        verification=top.verification,
    )


def dose_limit(patient: Patient, kb: KnowledgeBase, release: str = "immediate") -> DoseLimitResult:
    """Lowest applicable daily maximum of the ``release`` form (immediate by default); the longest
    interval wins too. For extended release a maximum of 0 means the form is not for this patient."""
    facts = Facts(patient, kb, None)
    applicable: list[DoseLimit] = [lim for lim in kb.tramadol.dose_limits
                                   if lim.release == release and (not lim.when or fires(lim.when, facts))]
    lowest = min(applicable, key=lambda lim: lim.max_daily_mg)
    interval = max(lim.interval_h for lim in applicable if lim.interval_h is not None)  # load_kb ensures one
    return DoseLimitResult(
        max_daily_mg=lowest.max_daily_mg,
        interval_h=interval,
        limit_id=lowest.id,
        reason=lowest.reason,
        sources=lowest.sources,
        applicable=tuple(lim.id for lim in applicable),
    )


def evaluate(rules: Iterable[AnyRule], facts: Facts) -> tuple[Finding, ...]:
    """The findings of the rules that fire, merged by code, strictest first.

    Among findings of one level, an incomplete screen comes first: what could not be screened is
    named before what was.
    """
    by_code: dict[str, list[tuple[AnyRule, list[str]]]] = {}
    for rule in rules:
        triggers = fires(rule.when, facts)
        if triggers is not None:
            by_code.setdefault(rule.code, []).append((rule, triggers))
    return tuple(
        sorted(
            (_merge(code, hits) for code, hits in by_code.items()),
            key=lambda f: (-level_rank(f.level), f.category != "completeness", f.code),
        )
    )


def screen_tramadol(patient: Patient, kb: KnowledgeBase) -> ScreenResult:
    """Evaluate every rule; the verdict is the strictest finding."""
    findings = evaluate(kb.tramadol.rules, facts_for(patient, kb))
    verdict: Level = findings[0].level if findings else "acceptable"
    return ScreenResult(
        verdict=verdict,
        findings=findings,
        dose_limit=dose_limit(patient, kb),
        off_label=kb.tramadol.off_label_statement,
        kb_version=kb.version,
    )
