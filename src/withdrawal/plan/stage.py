"""Where the patient stands on the expected withdrawal course."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Timeline
from withdrawal.patient import Patient

Stage = Literal["not_yet", "early", "peak", "resolving", "resolved", "unknown"]


@dataclass(frozen=True)
class CourseStatus:
    substance: str | None
    hours_since_last_use: float | None
    stage: Stage
    summary: str
    onset_h: tuple[float, float] | None
    peak_h: tuple[float, float] | None
    duration_days: tuple[float, float] | None
    ease_after_h: float | None
    note: str | None
    sources: tuple[str, ...]
    verification: str | None


def _stage(hours: float, t: Timeline) -> Stage:
    assert t.onset_h and t.peak_h and t.duration_days
    if hours < t.onset_h.low:
        return "not_yet"
    if hours < t.peak_h.low:
        return "early"
    if hours <= t.peak_h.high:
        return "peak"
    if hours <= t.duration_days.high * 24:
        return "resolving"
    return "resolved"


def _summary(stage: Stage, hours: float, t: Timeline) -> str:
    assert t.onset_h and t.peak_h and t.duration_days
    onset = f"{t.onset_h.low:g}-{t.onset_h.high:g} h"
    peak = f"{t.peak_h.low:g}-{t.peak_h.high:g} h"
    days = f"{t.duration_days.low:g}-{t.duration_days.high:g} days"
    until_peak_end = max(t.peak_h.high - hours, 0)
    texts: dict[Stage, str] = {
        "not_yet": f"Withdrawal not expected yet: it usually starts {onset} after the last use.",
        "early": (
            f"Early withdrawal: symptoms build towards a peak at {peak}; "
            f"they should begin to ease in about {until_peak_end:g} h."
        ),
        "peak": (
            f"Peak withdrawal ({peak} after last use): symptoms should begin to ease within about {until_peak_end:g} h."
        ),
        "resolving": f"Past the peak: acute symptoms usually settle by {days} after last use.",
        "resolved": (
            f"The acute course ({days}) should be over; lasting craving, poor sleep "
            "and low mood are common and need ongoing care."
        ),
        "unknown": "",
    }
    return texts[stage]


def course_status(patient: Patient, kb: KnowledgeBase) -> CourseStatus:
    """Stage of withdrawal from the opioid used and the hours since last use."""
    opioid = patient.data.opioid
    substance = opioid.substance if opioid else None
    hours = opioid.hours_since_last_use if opioid else None
    timeline = kb.timeline(substance) if substance else None
    if timeline is None or hours is None or not (timeline.onset_h and timeline.peak_h and timeline.duration_days):
        why = (
            timeline.note
            if timeline and timeline.note and hours is not None
            else "Give the opioid used and the hours since last use to place the course."
        )
        return CourseStatus(
            substance=substance,
            hours_since_last_use=hours,
            stage="unknown",
            summary=why,
            onset_h=None,
            peak_h=None,
            duration_days=None,
            ease_after_h=None,
            note=timeline.note if timeline else None,
            sources=timeline.sources if timeline else (),
            verification=timeline.verification if timeline else None,
        )
    stage = _stage(hours, timeline)
    assert timeline.onset_h and timeline.peak_h and timeline.duration_days
    return CourseStatus(
        substance=substance,
        hours_since_last_use=hours,
        stage=stage,
        summary=_summary(stage, hours, timeline),
        onset_h=(timeline.onset_h.low, timeline.onset_h.high),
        peak_h=(timeline.peak_h.low, timeline.peak_h.high),
        duration_days=(timeline.duration_days.low, timeline.duration_days.high),
        ease_after_h=timeline.peak_h.high,
        note=timeline.note,
        sources=timeline.sources,
        verification=timeline.verification,
    )
