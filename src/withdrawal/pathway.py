"""The buprenorphine start pathway for one patient: which start, how, the rechecks and the hand-off.

Built on the assessment's own plan, so that it can never disagree with it: when the plan
excludes buprenorphine (naltrexone on board, an allergy) the pathway offers no start and says
why; the buprenorphine option's findings (the benzodiazepine boxed warning ...) are shown with
it; timing is the plan's, from every opioid on board (:mod:`withdrawal.plan.timing`). The
steps, schedules and thresholds are the knowledge base's (``pathway.yaml``), each with its
sources and verification mark; anything not read in its source is flagged as unverified.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from withdrawal.errors import InputError
from withdrawal.knowledge.models import (
    DoseSchedule,
    OptionNote,
    PathwayStep,
    Recheck,
    StartMethod,
)
from withdrawal.plan.timing import low_dose_first, opioids_on_board, still_taking
from withdrawal.safety.screen import Finding, level_rank

if TYPE_CHECKING:
    from withdrawal.assess import Assessment

PATHWAYS = ("buprenorphine",)
"""The pathways ``--pathway`` and the API accept."""

PathwayStatus = Literal["excluded", "already_on", "specialist", "available"]
StartRole = Literal["first", "alternative"]


@dataclass(frozen=True)
class Step:
    text: str
    sources: tuple[str, ...]
    verified: bool
    """False when the knowledge base marks it ``from_memory`` (shown as unverified)."""


@dataclass(frozen=True)
class Day:
    day: int
    buprenorphine: str
    full_agonist: str


@dataclass(frozen=True)
class Schedule:
    id: str
    name: str
    setting: str
    days: tuple[Day, ...]
    note: str
    sources: tuple[str, ...]
    verified: bool


@dataclass(frozen=True)
class Start:
    id: str
    name: str
    role: StartRole
    summary: str
    why: str
    now: str | None
    """For the standard start: the plan's timing (can it start now, or how long to wait)."""
    cows_min: int | None
    steps: tuple[Step, ...]
    schedules: tuple[Schedule, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class OnBoardView:
    name: str
    hours_since_last_dose: float | None
    still_taking: bool


@dataclass(frozen=True)
class RecheckView:
    when: str
    action: str
    sources: tuple[str, ...]
    verified: bool


@dataclass(frozen=True)
class Pathway:
    """The buprenorphine start pathway for one patient; field names are a public contract."""

    status: PathwayStatus
    headline: str
    not_screened: tuple[str, ...]
    excluded_reasons: tuple[str, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]
    on_board: tuple[OnBoardView, ...]
    cows_total: int | None
    cows_band: str | None
    starts: tuple[Start, ...]
    rechecks: tuple[RecheckView, ...]
    precipitated_withdrawal: tuple[Step, ...]
    handoff: tuple[Step, ...]
    alternatives: tuple[str, ...]
    chart_note: str
    sources: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _step(s: PathwayStep) -> Step:
    return Step(s.text, s.sources, s.verification != "from_memory")


def _schedule(s: DoseSchedule) -> Schedule:
    return Schedule(
        s.id,
        s.name,
        s.setting,
        tuple(Day(d.day, d.buprenorphine, d.full_agonist) for d in s.days),
        s.note,
        s.sources,
        s.verification != "from_memory",
    )


def _recheck(r: Recheck) -> RecheckView:
    return RecheckView(r.when, r.action, r.sources, r.verification != "from_memory")


def _other_agonist_notes(a: Assessment) -> tuple[OptionNote, ...]:
    """Notes of another agonist the patient already takes (methadone from a programme): a start is
    agreed with whoever doses it, so its option note goes with the pathway. The plan has already
    evaluated every option's notes for this patient; these are the ones that put such an option first."""
    kb, active = a.kb, a.patient.active_drugs
    fired = {
        n.id
        for treatment, notes in a.plan.option_notes
        if treatment != "buprenorphine" and kb.treatment(treatment).drug in active
        for n in notes
        if n.first
    }
    return tuple(n for n in kb.care.option_notes if n.id in fired)


def _start(method: StartMethod, role: StartRole, why: str, now: str | None, setting: str | None) -> Start:
    schedules = method.schedules
    if setting in ("inpatient", "outpatient"):
        # The schedule for the patient's setting first; the other stays visible.
        schedules = tuple(sorted(schedules, key=lambda s: s.setting != setting))
    return Start(
        id=method.id,
        name=method.name,
        role=role,
        summary=method.summary,
        why=why,
        now=now,
        cows_min=method.cows_min,
        steps=tuple(_step(s) for s in method.steps),
        schedules=tuple(_schedule(s) for s in schedules),
        sources=method.sources,
    )


def _mark(verified: bool) -> str:
    return "" if verified else " (unverified)"


def build_pathway(a: Assessment, pathway: str = "buprenorphine") -> Pathway:
    """The start pathway for the assessed patient. ``pathway`` must be one of :data:`PATHWAYS`."""
    if pathway not in PATHWAYS:
        raise InputError("pathway", "unknown pathway", value=pathway, allowed=PATHWAYS)
    kb = a.kb
    pk = kb.pathway
    plan = a.plan
    patient = a.patient
    excluded = next((e for e in plan.excluded if e.treatment == "buprenorphine"), None)
    option = next((o for o in plan.options if o.treatment == "buprenorphine"), None)
    findings = option.findings if option else ()
    notes = tuple(r for r in (option.reasons[1:] if option else ()))
    other_notes = _other_agonist_notes(a)
    notes += tuple(n.text for n in other_notes if n.text not in notes)
    board = opioids_on_board(patient, kb, for_buprenorphine=True)
    on_board = tuple(OnBoardView(o.name, o.hours, still_taking(o, a.patient)) for o in board)
    alternatives = tuple(o.name for o in plan.options if o.treatment != "buprenorphine" and o.status != "not_advised")
    starts: list[Start] = []
    status: PathwayStatus
    if excluded is not None:
        status = "excluded"
        headline = "No buprenorphine start: buprenorphine is excluded for this patient. " + " ".join(excluded.reasons)
    elif "buprenorphine" in patient.active_drugs:
        status = "already_on"
        headline = "The patient already takes buprenorphine: review and adjust the current dose; no new start."
    elif any(f.code == "age_below_label" for f in findings):
        status = "specialist"
        headline = (
            "Adult buprenorphine starts do not apply at this age: start with a paediatric or adolescent specialist."
        )
    else:
        status = "available"
        methods = {m.id: m for m in pk.starts}
        low_names = low_dose_first(list(board), a.patient, a.kb)
        now = option.timing if option else None
        setting = patient.data.setting
        if low_names:
            why_low = f"On board: {', '.join(sorted(set(low_names)))}. {pk.low_dose_first.reason}"
            starts.append(_start(methods["low_dose"], "first", why_low, None, setting))
            starts.append(
                _start(
                    methods["standard"],
                    "alternative",
                    "Only once the waits have passed and withdrawal is objective.",
                    now,
                    setting,
                )
            )
        else:
            starts.append(
                _start(
                    methods["standard"],
                    "first",
                    "Short-acting opioid only: start once withdrawal is objective.",
                    now,
                    setting,
                )
            )
            starts.append(
                _start(
                    methods["low_dose"],
                    "alternative",
                    "If waiting in withdrawal is not possible or not wanted.",
                    None,
                    setting,
                )
            )
        starts.append(
            _start(
                methods["high_dose_ed"],
                "alternative",
                "In an emergency department that follows a high-dose protocol.",
                None,
                setting,
            )
        )
        first = starts[0]
        because = f"{', '.join(sorted(set(low_names)))} on board" if low_names else "a short-acting opioid only"
        headline = f"Suggested: {first.name}, {because}."
    blocking = [f for f in findings if level_rank(f.level) >= level_rank("avoid")]
    if blocking and status == "available":
        headline += " Not advised as it stands: " + " ".join(f.message for f in blocking)
    cows = a.cows
    ids: list[str] = []
    for group in (
        *(s.sources for s in starts),
        *(st.sources for s in starts for st in s.steps),
        *(sc.sources for s in starts for sc in s.schedules),
        *(r.sources for r in pk.rechecks),
        *(s.sources for s in (*pk.precipitated_withdrawal, *pk.handoff)),
        *(f.sources for f in findings),
        excluded.sources if excluded else (),
        option.sources if option else (),
        *(n.sources for n in other_notes),
        pk.low_dose_first.sources if status == "available" else (),
        pk.chart_note_footer.sources,
    ):
        ids.extend(s for s in group if s not in ids)
    result = Pathway(
        status=status,
        headline=headline,
        not_screened=patient.unresolved,
        excluded_reasons=excluded.reasons if excluded else (),
        findings=findings,
        notes=notes,
        on_board=on_board,
        cows_total=cows.total if cows else None,
        cows_band=(cows.band_label or cows.band) if cows else None,
        starts=tuple(starts),
        rechecks=tuple(_recheck(r) for r in pk.rechecks) if status == "available" else (),
        precipitated_withdrawal=tuple(_step(s) for s in pk.precipitated_withdrawal) if status == "available" else (),
        handoff=tuple(_step(s) for s in pk.handoff if status == "available" or not s.after_start),
        alternatives=alternatives,
        chart_note="",
        sources=tuple(ids),
    )
    return _with_note(result, chart_note(result, a.kb.version, pk.chart_note_footer.text))


def _with_note(p: Pathway, note: str) -> Pathway:
    return Pathway(**{**p.__dict__, "chart_note": note})


def _board_text(p: Pathway) -> str:
    if not p.on_board:
        return "none recorded"
    parts = []
    for o in p.on_board:
        if o.still_taking:
            parts.append(f"{o.name} (still taking)")
        elif o.hours_since_last_dose is None:
            parts.append(f"{o.name} (time of last use not recorded)")
        else:
            parts.append(f"{o.name} (last {o.hours_since_last_dose:g} h ago)")
    return "; ".join(parts)


def chart_note(p: Pathway, kb_version: str, footer: str) -> str:
    """A short plain-text note the clinician can paste into the chart."""
    lines = [f"Buprenorphine start pathway (withdrawal decision support, knowledge base {kb_version})"]
    if p.not_screened:
        lines.append("NOT SCREENED (incomplete): " + "; ".join(p.not_screened))
    lines.append(f"Opioids on board: {_board_text(p)}")
    cows = f"{p.cows_total}/48 ({p.cows_band})" if p.cows_total is not None else "not recorded"
    lines.append(f"COWS: {cows}")
    lines.append(f"Assessment: {p.headline}")
    for f in p.findings:
        lines.append(f"Caution ({f.level}, {f.code}): {f.message} {f.action}")
    lines += [f"Note: {n}" for n in p.notes]
    if p.status == "available":
        first = p.starts[0]
        lines.append(f"Plan: {first.name}.")
        if first.now:
            lines.append(f"Timing: {first.now}")
        if first.schedules:
            s = first.schedules[0]
            lines.append(f"Schedule: {s.name}{_mark(s.verified)}:")
            lines += [f"  Day {d.day}: buprenorphine {d.buprenorphine}; full agonist: {d.full_agonist}" for d in s.days]
        for alt in p.starts[1:]:
            lines.append(f"Alternative: {alt.name}. {alt.why}" + (f" Timing: {alt.now}" if alt.now else ""))
        lines.append("COWS rechecks: " + " ".join(f"{r.when}: {r.action}{_mark(r.verified)}" for r in p.rechecks))
    elif p.alternatives:
        lines.append("Options instead: " + ", ".join(p.alternatives) + ".")
    lines.append("Hand-off: " + " ".join(f"{s.text}{_mark(s.verified)}" for s in p.handoff))
    lines.append(footer)
    return "\n".join(lines)
