"""Management plan: ranked options with reasons, adjuncts, monitoring, resources.

Guideline first-line options (buprenorphine, methadone) always come first and
always appear; tramadol is shown as an off-label option only where the screen
does not contraindicate it, and is ranked below the alpha-2 agonists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import OptionNote, Resource, Statement, Treatment
from withdrawal.patient import Patient
from withdrawal.plan.course import CourseStatus, course_status
from withdrawal.plan.regimen import TaperDay, tramadol_taper
from withdrawal.safety.interactions import tramadol_interactions
from withdrawal.safety.matching import Facts, facts_for, fires
from withdrawal.safety.screen import ScreenResult, level_rank
from withdrawal.scales.scoring import ScaleScore

Status = Literal["recommended", "available", "not_advised"]


@dataclass(frozen=True)
class Option:
    treatment: str
    rank: int
    name: str
    role: str
    status: Status
    off_label: bool
    summary: str
    reasons: tuple[str, ...]
    dosing: str
    timing: str | None
    cautions: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Excluded:
    treatment: str
    name: str
    reasons: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class AdjunctAdvice:
    symptom: str
    drug: str
    dose: str
    interacts_with_tramadol: bool
    interaction: str | None
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    course: CourseStatus
    options: tuple[Option, ...]
    excluded: tuple[Excluded, ...]
    tramadol_regimen: tuple[TaperDay, ...] | None
    adjuncts: tuple[AdjunctAdvice, ...]
    monitoring: tuple[Statement, ...]
    naloxone: Statement
    resources: tuple[Resource, ...]
    evidence: tuple[Statement, ...]
    notes: tuple[Statement, ...]


def _statement(kb: KnowledgeBase, sid: str) -> Statement:
    for group in (kb.care.statements, kb.care.monitoring, kb.care.evidence_summary):
        for s in group:
            if s.id == sid:
                return s
    raise KeyError(sid)


def _buprenorphine_timing(patient: Patient, cows: ScaleScore | None, kb: KnowledgeBase) -> str | None:
    t = kb.treatment("buprenorphine")
    opioid = patient.data.opioid
    timeline = kb.timeline(opioid.substance) if opioid else None
    threshold = t.start_cows_min
    cows_text = f"COWS {threshold} or more" if threshold is not None else "objective withdrawal"
    if "buprenorphine" in patient.active_drugs:
        return None
    if not (opioid and timeline and timeline.buprenorphine_wait_h):
        return f"Start once objective withdrawal is present ({cows_text})."
    wait = timeline.buprenorphine_wait_h
    hours = opioid.hours_since_last_use
    if hours is None:
        return (
            f"Start at least {wait.low:g}-{wait.high:g} h after the last {opioid.substance} use and once {cows_text}."
        )
    if hours < wait.low:
        return (
            f"Not yet: wait until at least {wait.low:g} h after the last {opioid.substance} use "
            f"(about {wait.low - hours:g} h from now) and {cows_text}."
        )
    if cows is None:
        return f"Time since last use allows it: start when {cows_text} (score COWS now)."
    if threshold is not None and cows.total >= threshold:
        return f"Can start now: {hours:g} h since last use and COWS {cows.total}."
    return (
        f"{hours:g} h since last use but COWS {cows.total} is below {threshold}: "
        "re-score in 1-2 h and start when withdrawal is objective."
    )


def _notes(t: Treatment, facts: Facts, kb: KnowledgeBase) -> tuple[list[OptionNote], bool]:
    """The option notes whose conditions hold for this patient, and whether one puts it first."""
    hits = [n for n in kb.care.option_notes if t.id in n.treatments and fires(n.when, facts) is not None]
    return hits, any(n.first for n in hits)


def exclusions(patient: Patient, screen: ScreenResult, kb: KnowledgeBase) -> tuple[Excluded, ...]:
    """The options this patient cannot have: an allergy to the drug, or tramadol contraindicated.

    Its own function because a CDS order check needs it (may it propose
    buprenorphine instead?) without the rest of the plan.
    """
    out: list[Excluded] = []
    for t in sorted(kb.care.treatments, key=lambda t: t.base_rank):
        if t.drug and t.drug in patient.allergy_drugs:
            out.append(Excluded(t.id, t.name, ("Allergy recorded.",), t.sources))
        elif t.id == "tramadol" and screen.verdict == "contraindicated":
            blocking = [f.message for f in screen.findings if f.level == "contraindicated"]
            out.append(Excluded(t.id, t.name, tuple(blocking), t.sources))
    return tuple(out)


def build_plan(patient: Patient, screen: ScreenResult, cows: ScaleScore | None, kb: KnowledgeBase) -> Plan:
    """Rank every option for this patient and gather what goes with them."""
    facts = facts_for(patient, kb)
    ranked: list[tuple[int, int, Option]] = []
    excluded = exclusions(patient, screen, kb)
    gone = {e.treatment for e in excluded}
    regimen: tuple[TaperDay, ...] | None = None
    for t in sorted(kb.care.treatments, key=lambda t: t.base_rank):
        if t.id in gone:
            continue
        notes, first = _notes(t, facts, kb)
        reasons = [t.summary, *(n.text for n in notes)]
        sources = list(dict.fromkeys([*t.sources, *(s for n in notes for s in n.sources)]))
        status: Status = "recommended" if t.role == "first_line" else "available"
        timing = _buprenorphine_timing(patient, cows, kb) if t.id == "buprenorphine" else None
        dosing = t.dosing
        if t.id == "tramadol":
            regimen = tramadol_taper(screen.dose_limit, kb.care.tramadol_taper)
            dosing = (
                f"{t.dosing} For this patient: at most {screen.max_daily_dose_mg} mg a day, "
                f"every {screen.dose_limit.interval_h} h ({screen.dose_limit.reason})"
            )
            if level_rank(screen.verdict) >= level_rank("avoid"):
                status = "not_advised"
                reasons += [f.message for f in screen.findings if f.level == "avoid"]
            elif screen.verdict == "caution":
                reasons += [f.message for f in screen.findings if f.level == "caution"]
        option = Option(
            treatment=t.id,
            rank=0,
            name=t.name,
            role=t.role,
            status=status,
            off_label=t.role == "off_label" or t.id == "clonidine",
            summary=t.summary,
            reasons=tuple(reasons),
            dosing=dosing,
            timing=timing,
            cautions=t.cautions,
            sources=tuple(sources),
        )
        # Not-advised options go last; an agonist the patient already takes goes first.
        ranked.append((1 if status == "not_advised" else 0, 0 if first else 1, option))
    ranked.sort(key=lambda r: (r[0], r[1], kb.treatment(r[2].treatment).base_rank))
    ordered = [o for _, _, o in ranked]
    options = tuple(_with_rank(o, i + 1) for i, o in enumerate(ordered))
    return Plan(
        course=course_status(patient, kb),
        options=options,
        excluded=excluded,
        tramadol_regimen=regimen,
        adjuncts=_adjuncts(patient, kb),
        monitoring=kb.care.monitoring,
        naloxone=_statement(kb, "naloxone"),
        resources=_resources(patient, kb),
        evidence=kb.care.evidence_summary,
        notes=(_statement(kb, "decision_support"), _statement(kb, "cows_threshold")),
    )


def _with_rank(o: Option, rank: int) -> Option:
    return Option(**{**o.__dict__, "rank": rank})


def _adjuncts(patient: Patient, kb: KnowledgeBase) -> tuple[AdjunctAdvice, ...]:
    out = []
    for a in kb.care.adjuncts:
        if a.drug in patient.allergy_drugs:
            continue
        hits = tramadol_interactions(a.drug, kb)
        out.append(
            AdjunctAdvice(
                symptom=a.symptom,
                drug=kb.drugs[a.drug].name,
                dose=a.dose,
                interacts_with_tramadol=bool(hits),
                interaction="; ".join(f"{h.severity}: {h.effect}" for h in hits) or None,
                sources=a.sources,
            )
        )
    return tuple(out)


def _resources(patient: Patient, kb: KnowledgeBase) -> tuple[Resource, ...]:
    def key(r: Resource) -> tuple[int, int]:
        urgent = any(c in patient.conditions for c in r.first_when_conditions)
        return (0 if urgent else 1, r.order)

    return tuple(sorted(kb.care.resources, key=key))
