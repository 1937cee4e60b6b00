"""The typical-patient concentration curves of a tramadol taper (the simulator's model, for a chart)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.patient import Patient
from withdrawal.plan.plan import Plan
from withdrawal.plan.regimen import doses_timeline
from withdrawal.plan.simulation import STRONG_INHIBITOR_CLASS, remaining_course_h

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
    from withdrawal.pk.closed_form import concentrations, tramadol_modes
    from withdrawal.pk.models import tramadol_defaults
    from withdrawal.pk.params import Patient as PkPatient
    from withdrawal.pk.params import adjust_for_patient, check_phenotype, load_tramadol

    data = load_tramadol()
    notes: list[str] = []
    ph = check_phenotype(phenotype)
    if ph is None:
        ph = "normal"
        notes.append("CYP2D6 phenotype unknown: simulated as normal metabolizer")
    inhibitors = kb.drug_class_members.get(STRONG_INHIBITOR_CLASS, frozenset())
    d = patient.data
    adj = adjust_for_patient(PkPatient(ph, bool(patient.drugs_within(7) & inhibitors), d.creatinine_clearance_ml_min,
                                       d.child_pugh, d.age_years), data)
    notes += adj.assumptions
    doses = doses_timeline(plan.tramadol_regimen)
    last = max(t for t, _ in doses)
    course_h = max(remaining_course_h(patient, kb), last + 24.0)
    p = {k: np.array([v]) for k, v in tramadol_defaults().items()}
    p["MCL"][:], p["MF"][:], p["MCLM"][:] = adj.cl_mult, adj.m1_formation_mult, adj.m1_clearance_mult
    hours = np.arange(0.0, course_h + STEP_H / 2, STEP_H)
    ct, cm = concentrations(tramadol_modes(p, "ir"), doses, hours)
    since = d.opioid.hours_since_last_use if d.opioid and d.opioid.hours_since_last_use else 0.0
    tl = kb.timeline(d.opioid.substance if d.opioid else "heroin") or kb.timeline("heroin")
    marks: list[tuple[float, float, str]] = []
    if tl is not None and tl.peak_h is not None:
        marks.append((tl.peak_h.low - since, tl.peak_h.high - since, "expected withdrawal peak"))
    return Curves(
        hours=hours, m1=cm[0], tramadol=ct[0], threshold=data.m1_threshold.value,
        threshold_sources=tuple(data.m1_threshold.sources), dose_times_h=tuple(t for t, _ in doses),
        phenotype_used=adj.phenotype_used,
        assumptions=(*notes, "typical patient (no between-subject variability); immediate-release doses",
                     f"threshold {data.m1_threshold.value:g} ng/mL is an analgesia anchor, not a validated "
                     "withdrawal-relief level"),
        course_marks=tuple(marks),
    )
