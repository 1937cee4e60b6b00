"""The typical-patient concentration curves of a tramadol taper (the simulator's model, for a chart)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.patient import Patient
from withdrawal.plan.plan import Plan
from withdrawal.plan.regimen import doses_timeline
from withdrawal.plan.simulation import patient_pk_inputs, remaining_course_h

STEP_H = 0.25


@dataclass(frozen=True)
class Curves:
    hours: np.ndarray
    m1: np.ndarray
    tramadol: np.ndarray
    threshold: float
    threshold_sources: tuple[str, ...]
    dose_times_h: tuple[float, ...]
    phenotype_used: str
    assumptions: tuple[str, ...]
    course_marks: tuple[tuple[float, float, str], ...]


def curves(patient: Patient, plan: Plan, kb: KnowledgeBase, phenotype: str | None) -> Curves | None:
    """M1 and tramadol over the taper (and the rest of the expected course), or None without a taper."""
    if not plan.tramadol_regimen:
        return None
    from withdrawal.pk.params import load_tramadol
    from withdrawal.pk.typical_patient import typical_curves

    data = load_tramadol()
    d = patient.data
    doses = doses_timeline(plan.tramadol_regimen)
    last = max(t for t, _ in doses)
    course_h = max(remaining_course_h(patient, kb), last + 24.0)
    c = typical_curves(**patient_pk_inputs(patient, kb, phenotype), doses=doses, course_hours=course_h, step_h=STEP_H)
    since = d.opioid.hours_since_last_use if d.opioid and d.opioid.hours_since_last_use else 0.0
    tl = kb.timeline(d.opioid.substance if d.opioid else "heroin") or kb.timeline("heroin")
    marks: list[tuple[float, float, str]] = []
    if tl is not None and tl.peak_h is not None:
        marks.append((tl.peak_h.low - since, tl.peak_h.high - since, "expected withdrawal peak"))
    return Curves(
        hours=c.times_h, m1=c.m1_ng_ml, tramadol=c.tramadol_ng_ml, threshold=data.m1_threshold.value,
        threshold_sources=tuple(data.m1_threshold.sources), dose_times_h=tuple(t for t, _ in doses),
        phenotype_used=c.phenotype_used,
        assumptions=(*c.assumptions, "typical patient (no between-subject variability); immediate-release doses",
                     f"threshold {data.m1_threshold.value:g} ng/mL is an analgesia anchor, not a validated "
                     "withdrawal-relief level"),
        course_marks=tuple(marks),
    )
