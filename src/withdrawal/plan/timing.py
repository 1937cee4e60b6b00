"""When an opioid-acting option may start: every opioid the patient has on board, and COWS.

Buprenorphine (and tramadol, which must not be stacked on an opioid that is still acting) start
only once withdrawal is objective: long enough after the last dose of *each* opioid on board
(the named substance, an active or recently stopped methadone, any other agonist) and at or
above the option's COWS threshold. The waits are the knowledge base's timelines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Range, Substance, Treatment
from withdrawal.patient import Patient
from withdrawal.scales.scoring import ScaleScore

_SUBSTANCES = frozenset(get_args(Substance))


@dataclass(frozen=True)
class OnBoard:
    """One opioid the patient has taken: ``hours`` since the last dose, None while still taken."""

    name: str
    hours: float | None
    wait: Range | None


def opioids_on_board(patient: Patient, kb: KnowledgeBase, *, for_buprenorphine: bool) -> list[OnBoard]:
    """The named substance and every full agonist among the medications (active or stopped)."""
    out: list[OnBoard] = []
    agonists = kb.drug_class_members.get("opioid_agonist", frozenset())

    def add(substance: str, hours: float | None) -> None:
        timeline = kb.timeline(substance if substance in _SUBSTANCES else "other")
        wait = None
        if timeline is not None:
            wait = timeline.buprenorphine_wait_h if for_buprenorphine else timeline.onset_h
        out.append(OnBoard(substance, hours, wait))

    opioid = patient.data.opioid
    if opioid is not None and opioid.substance != "buprenorphine":
        add(opioid.substance, opioid.hours_since_last_use)
    for drug in sorted(patient.active_drugs & agonists):
        if not (opioid and opioid.substance == drug):
            add(drug, None)
    for drug, days in sorted(patient.stopped_drugs.items()):
        if drug in agonists and drug not in patient.active_drugs:
            hours = days * 24.0
            if opioid and opioid.substance == drug and opioid.hours_since_last_use is not None:
                hours = min(hours, opioid.hours_since_last_use)
            out = [o for o in out if o.name != drug]
            add(drug, hours)
    return out


def still_taking(o: OnBoard, patient: Patient) -> bool:
    """An active medication with no last-dose time; the named substance with no hours is just unknown."""
    return o.hours is None and o.name in patient.active_drugs


def low_dose_first(board: list[OnBoard], patient: Patient, kb: KnowledgeBase) -> list[str]:
    """The opioids on board that put a low-dose start first, by the pathway data (``low_dose_first``)."""
    rule = kb.pathway.low_dose_first
    return [o.name for o in board if o.name in rule.substances or (rule.still_taking and still_taking(o, patient))]


@dataclass(frozen=True)
class Gate:
    """An option's timing text, and the sources of what it adds to the option's own."""

    text: str
    sources: tuple[str, ...] = ()
    """The sources of the pathway notes the text carries (``low_dose_first``, the below-threshold recheck)."""


def objective_gate(t: Treatment, patient: Patient, cows: ScaleScore | None, kb: KnowledgeBase) -> Gate | None:
    """The timing of an option with a COWS threshold (buprenorphine, tramadol)."""
    is_bup = t.id == "buprenorphine"
    if is_bup and "buprenorphine" in patient.active_drugs:
        return None  # already on it: the option note says to adjust the dose
    threshold = t.start_cows_min
    cows_text = f"COWS {threshold} or more" if threshold is not None else "objective withdrawal"
    board = opioids_on_board(patient, kb, for_buprenorphine=is_bup)
    first = kb.pathway.low_dose_first
    low = is_bup and bool(low_dose_first(board, patient, kb))
    low_dose = f" {first.timing_note}" if low else ""

    def gate(text: str, sources: tuple[str, ...] = ()) -> Gate:
        return Gate(text + low_dose, (*(first.sources if low else ()), *sources))

    waits: list[str] = []
    for o in board:
        if o.wait is None:
            continue
        if o.hours is None:
            # the same reading as the pathway's chart note: "still takes" only for an active medication
            said = f"the patient still takes {o.name}" if still_taking(o, patient) else (
                f"the time of the last {o.name} use is not recorded")
            waits.append(f"{said}: wait until at least {o.wait.low:g}-{o.wait.high:g} h after its last dose")
        elif o.hours < o.wait.low:
            waits.append(
                f"wait until at least {o.wait.low:g} h after the last {o.name} use "
                f"(about {o.wait.low - o.hours:g} h from now)"
            )
    label = "Standard start: not yet" if is_bup else "Not yet"
    if waits:
        return gate(f"{label}: {'; '.join(waits)}, and until {cows_text}.")
    known = [o for o in board if o.wait is not None and o.hours is not None]
    if not known:
        return gate(f"Start once objective withdrawal is present ({cows_text}).")
    hours = min(o.hours for o in known if o.hours is not None)
    if cows is None:
        return gate(f"Time since last use allows it: start when {cows_text} (score COWS now).")
    if threshold is not None and cows.total >= threshold:
        now = "Can start now" if is_bup else "Objective withdrawal present"
        return gate(f"{now}: {hours:g} h since last use and COWS {cows.total}.")
    below = kb.pathway.below_threshold
    return gate(f"{label}: {hours:g} h since last use but COWS {cows.total} is below {threshold}: "
                f"{below.timing_note}", below.sources)
