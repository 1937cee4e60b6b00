"""Link from the plan to the PK simulator: onset and coverage of the proposed taper.

Exploratory: a typical patient of the given CYP2D6 phenotype, with the patient's
kidney and liver function, age and CYP2D6 inhibitors, given the plan's tramadol taper;
the M1 threshold is an analgesia anchor, not a validated withdrawal-relief level.
"""

from __future__ import annotations

from typing import Any

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.patient import Patient
from withdrawal.plan.plan import Plan
from withdrawal.plan.regimen import doses_timeline

STRONG_INHIBITOR_CLASS = "cyp2d6_inhibitor_strong"


def remaining_course_h(patient: Patient, kb: KnowledgeBase) -> float:
    """Hours from now to the upper end of the acute course (the whole course if unknown)."""
    opioid = patient.data.opioid
    timeline = kb.timeline(opioid.substance if opioid else "heroin")
    if timeline is None or timeline.duration_days is None:
        timeline = kb.timeline("heroin")
    assert timeline is not None and timeline.duration_days is not None
    total = timeline.duration_days.high * 24
    since = opioid.hours_since_last_use if opioid and opioid.hours_since_last_use else 0.0
    return max(total - since, 24.0)  # NOTE: at least a day is simulated (display choice, not a clinical fact)


def patient_pk_inputs(patient: Patient, kb: KnowledgeBase, phenotype: str | None = None) -> dict[str, Any]:
    """The patient's covariates for the PK model; ``phenotype`` overrides the recorded one."""
    # NOTE: how long a stopped inhibitor still acts is not in the sources: active ones only.
    inhibitors = kb.drug_class_members.get(STRONG_INHIBITOR_CLASS, frozenset())
    data = patient.data
    return {
        "phenotype": phenotype or data.cyp2d6_phenotype,
        "strong_cyp2d6_inhibitor": bool(patient.active_drugs & inhibitors),
        "crcl_ml_min": data.creatinine_clearance_ml_min,
        "child_pugh": data.child_pugh,
        "age_years": data.age_years,
    }


def simulate_for_plan(patient: Patient, plan: Plan, kb: KnowledgeBase) -> dict[str, Any] | None:
    """Simulated M1 onset and coverage of the plan's tramadol taper, or None without one."""
    if not plan.tramadol_regimen:
        return None
    from withdrawal.pk.typical_patient import summarise_regimen  # NumPy cost only when simulating

    course_h = remaining_course_h(patient, kb)
    s = summarise_regimen(
        **patient_pk_inputs(patient, kb),
        doses=doses_timeline(plan.tramadol_regimen),
        course_hours=course_h,
    )
    onset = (
        f"M1 reaches {s.threshold_ng_ml:g} ng/mL about {s.onset_h:.1f} h after the first dose"
        if (s.onset_h is not None)
        else f"M1 never reaches {s.threshold_ng_ml:g} ng/mL"
    )
    summary = (
        f"{onset}; it stays above it for {s.coverage_fraction:.0%} of the remaining "
        f"{course_h:.0f} h of the expected course (phenotype simulated: {s.phenotype_used}; "
        f"peaks tramadol {s.peak_tramadol_ng_ml:.0f}, M1 {s.peak_m1_ng_ml:.0f} ng/mL)."
    )
    sources = [x for x in s.threshold_source.split(",") if x and x != "user"]
    return {
        "exploratory": True,
        "summary": summary,
        "onset_h": s.onset_h,
        "coverage_fraction": s.coverage_fraction,
        "course_hours": course_h,
        "peak_tramadol_ng_ml": s.peak_tramadol_ng_ml,
        "peak_m1_ng_ml": s.peak_m1_ng_ml,
        "phenotype_used": s.phenotype_used,
        "threshold_ng_ml": s.threshold_ng_ml,
        "assumptions": list(s.assumptions),
        "sources": sources,
    }
