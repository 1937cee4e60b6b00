"""Management plan: ranked options with reasons, adjuncts, monitoring, resources.

Guideline first-line options (buprenorphine, methadone) come first unless the patient
cannot have them (an antagonist on board, an allergy); tramadol is shown as an off-label
option only where the screen does not contraindicate it, and is ranked below the alpha-2
agonists. Every option and adjunct is screened for this patient with the knowledge base's
option and adjunct rules, and timing takes every opioid the patient has on board.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import OptionNote, Resource, Statement, Treatment
from withdrawal.patient import Patient
from withdrawal.plan.regimen import TaperDay, tramadol_taper
from withdrawal.plan.stage import CourseStatus, course_status
from withdrawal.plan.timing import objective_gate
from withdrawal.safety.interactions import tramadol_interactions
from withdrawal.safety.matching import Facts, facts_for, fires
from withdrawal.safety.screen import Finding, ScreenResult, evaluate, level_rank
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
    findings: tuple[Finding, ...] = ()
    """This option screened for this patient, in the shape of the tramadol findings."""


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
    status: Literal["offered", "caution", "not_for_this_patient"] = "offered"
    reason: str | None = None
    reason_sources: tuple[str, ...] = ()


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
    regimen_withheld: str | None = None
    """Why no tramadol schedule is given (avoid or contraindicated), or None."""
    override: str | None = None
    """The clinician's reason for asking for a schedule despite ``avoid``; recorded with the answer."""
    option_notes: tuple[tuple[str, tuple[OptionNote, ...]], ...] = ()
    """The option notes whose conditions hold for this patient, by treatment id (excluded options
    included): evaluated once here, read by the start pathway."""


def _notes(t: Treatment, facts: Facts, kb: KnowledgeBase) -> tuple[list[OptionNote], bool]:
    """The option notes whose conditions hold for this patient, and whether one puts it first."""
    hits = [n for n in kb.care.option_notes if t.id in n.treatments and fires(n.when, facts) is not None]
    return hits, any(n.first for n in hits)


def option_findings(treatment_id: str, facts: Facts, kb: KnowledgeBase) -> tuple[Finding, ...]:
    """The option rules of ``care.yaml`` that hold for this patient and this option.

    The option's own drug is not an interaction with itself (methadone is serotonergic and
    QT-prolonging, but a patient on methadone is not warned about methadone with methadone).
    """
    own = kb.treatment(treatment_id).drug
    p = facts.patient
    if own and (own in p.active_drugs or own in p.stopped_drugs):
        p = replace(
            p,
            active_drugs=p.active_drugs - {own},
            stopped_drugs={d: v for d, v in p.stopped_drugs.items() if d != own},
        )
        facts = replace(facts, patient=p)
    return evaluate((r for r in kb.care.option_rules if treatment_id in r.treatments), facts)


def exclusions(
    patient: Patient, screen: ScreenResult, kb: KnowledgeBase, facts: Facts | None = None
) -> tuple[Excluded, ...]:
    """The options this patient cannot have: an allergy to the drug, an excluding option rule
    (an antagonist on board), or tramadol contraindicated.

    Its own function because a CDS order check needs it (may it propose
    buprenorphine instead?) without the rest of the plan.
    """
    facts = facts or facts_for(patient, kb)
    out: list[Excluded] = []
    for t in sorted(kb.care.treatments, key=lambda t: t.base_rank):
        blocking = [
            r for r in kb.care.option_rules if r.exclude and t.id in r.treatments and fires(r.when, facts) is not None
        ]
        if t.drug and t.drug in patient.allergy_drugs:
            out.append(Excluded(t.id, t.name, ("Allergy recorded.",), t.sources))
        elif blocking:
            out.append(Excluded(
                t.id, t.name, tuple(f"{r.message} {r.action}" for r in blocking),
                tuple(dict.fromkeys(s for r in blocking for s in r.sources)),
            ))
        elif t.id == "tramadol" and screen.verdict == "contraindicated":
            blocking_findings = [f for f in screen.findings if f.level == "contraindicated"]
            # each reason cites what supports it: the contraindication's own sources, not the option's trials
            out.append(Excluded(
                t.id, t.name, tuple(f.message for f in blocking_findings),
                tuple(dict.fromkeys(s for f in blocking_findings for s in f.sources)),
            ))
    return tuple(out)


def _regimen_withheld(screen: ScreenResult, override: str | None) -> str | None:
    """Why no ready tramadol schedule is printed, or None when one may be."""
    if screen.verdict == "contraindicated":
        return "No tramadol schedule: tramadol is contraindicated for this patient."
    if screen.verdict == "avoid" and not override:
        return (
            "No tramadol schedule: tramadol is to be avoided for this patient. A clinician who still "
            "chooses it can ask for the schedule with an override reason, which is recorded."
        )
    return None


def build_plan(
    patient: Patient,
    screen: ScreenResult,
    cows: ScaleScore | None,
    kb: KnowledgeBase,
    *,
    override: str | None = None,
) -> Plan:
    """Rank every option for this patient and gather what goes with them.

    ``override`` is a clinician's reason for a tramadol schedule despite an ``avoid`` verdict;
    it never unlocks one for ``contraindicated``.
    """
    facts = facts_for(patient, kb)
    ranked: list[tuple[int, int, Option]] = []
    excluded = exclusions(patient, screen, kb, facts)
    gone = {e.treatment for e in excluded}
    withheld = _regimen_withheld(screen, override)
    regimen: tuple[TaperDay, ...] | None = None
    fired: list[tuple[str, tuple[OptionNote, ...]]] = []
    for t in sorted(kb.care.treatments, key=lambda t: t.base_rank):
        notes, first = _notes(t, facts, kb)
        fired.append((t.id, tuple(notes)))
        if t.id in gone:
            continue
        findings = option_findings(t.id, facts, kb)
        reasons = [t.summary, *(n.text for n in notes)]
        sources = list(dict.fromkeys([
            *t.sources, *(s for n in notes for s in n.sources), *(s for f in findings for s in f.sources)
        ]))
        status: Status = "recommended" if t.role == "first_line" else "available"
        if any(level_rank(f.level) >= level_rank("avoid") for f in findings):
            status = "not_advised"
        gate = objective_gate(t, patient, cows, kb) if t.start_cows_min is not None else None
        timing = gate.text if gate else None
        if gate and gate.sources:
            sources = list(dict.fromkeys([*sources, *gate.sources]))
        dosing = t.dosing
        if any(f.code == "age_below_label" for f in findings):
            dosing = "Adult doses do not apply at this age; dose with a paediatric or adolescent specialist."
        if t.id == "tramadol":
            findings = screen.findings
            if withheld is None:
                regimen = tramadol_taper(screen.dose_limit, kb.care.tramadol_taper)
                dosing = (
                    f"{t.dosing} For this patient: at most {screen.max_daily_dose_mg} mg a day, "
                    f"every {screen.dose_limit.interval_h} h ({screen.dose_limit.reason})"
                )
                if override:
                    dosing += f" Schedule given on a clinician's override: {override}"
            else:
                dosing = withheld
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
            findings=findings,
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
        adjuncts=_adjuncts(facts, kb),
        monitoring=kb.care.monitoring,
        naloxone=kb.statement("naloxone"),
        resources=_resources(patient, kb),
        evidence=kb.care.evidence_summary,
        notes=(kb.statement("decision_support"), kb.statement("cows_threshold")),
        regimen_withheld=withheld,
        override=override if screen.verdict == "avoid" else None,
        option_notes=tuple(fired),
    )


def _with_rank(o: Option, rank: int) -> Option:
    return Option(**{**o.__dict__, "rank": rank})


def _adjuncts(facts: Facts, kb: KnowledgeBase) -> tuple[AdjunctAdvice, ...]:
    """Every adjunct, screened like a drug: offered, offered with a caution, or not for this
    patient with the reason (never silently offered, never silently dropped)."""
    out = []
    for a in kb.care.adjuncts:
        hits = tramadol_interactions(a.drug, kb)
        rules = [r for r in kb.care.adjunct_rules if a.id in r.adjuncts and fires(r.when, facts) is not None]
        blocking = [r for r in rules if r.status == "not_for_this_patient"]
        chosen = blocking or rules
        reason = " ".join(r.reason for r in chosen) or None
        reason_sources = tuple(dict.fromkeys(s for r in chosen for s in r.sources))
        status: Literal["offered", "caution", "not_for_this_patient"] = (
            "not_for_this_patient" if blocking else "caution" if rules else "offered"
        )
        if a.drug in facts.patient.allergy_drugs:
            status, reason, reason_sources = "not_for_this_patient", "Allergy recorded.", ()
        out.append(
            AdjunctAdvice(
                symptom=a.symptom,
                drug=kb.drugs[a.drug].name,
                dose=a.dose if status != "not_for_this_patient" else "",
                interacts_with_tramadol=bool(hits),
                interaction="; ".join(f"{h.level}: {h.message}" for h in hits) or None,
                sources=a.sources,
                status=status,
                reason=reason,
                reason_sources=reason_sources,
            )
        )
    return tuple(out)


def _resources(patient: Patient, kb: KnowledgeBase) -> tuple[Resource, ...]:
    def key(r: Resource) -> tuple[int, int]:
        urgent = any(c in patient.conditions for c in r.first_when_conditions)
        return (0 if urgent else 1, r.order)

    return tuple(sorted(kb.care.resources, key=key))
