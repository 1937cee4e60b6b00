"""One patient's tramadol course for the management plan: onset and coverage of M1.

Pure and fast (closed form, typical values, no variability): the plan calls it per option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from withdrawal.errors import InputError
from withdrawal.pk.closed_form import concentrations, tramadol_modes
from withdrawal.pk.models import tramadol_defaults
from withdrawal.pk.params import Patient, Phenotype, adjust_for_patient, check_phenotype, load_tramadol

STEP_H = 0.05


@dataclass(frozen=True)
class RegimenSummary:
    """Simulated typical-patient exposure for a regimen (exploratory, see ``assumptions``)."""

    onset_h: float | None  # first time M1 >= threshold; None if never within the course
    coverage_fraction: float  # share of course_hours with M1 >= threshold
    peak_tramadol_ng_ml: float  # tramadol base
    peak_m1_ng_ml: float
    phenotype_used: Phenotype
    threshold_ng_ml: float
    threshold_source: str
    course_hours: float
    assumptions: tuple[str, ...]


@dataclass(frozen=True)
class TypicalCurves:
    """Typical-patient tramadol (base) and M1 concentrations on a regular time grid."""

    times_h: NDArray[np.float64]
    tramadol_ng_ml: NDArray[np.float64]
    m1_ng_ml: NDArray[np.float64]
    phenotype_used: Phenotype
    assumptions: tuple[str, ...]


def typical_curves(
    *,
    phenotype: str | None,
    strong_cyp2d6_inhibitor: bool,
    crcl_ml_min: float | None,
    child_pugh: str | None,
    age_years: int,
    doses: list[tuple[float, float]],
    course_hours: float,
    step_h: float = STEP_H,
) -> TypicalCurves:
    """Concentrations for IR doses ``(time_h, dose_mg HCl)``; an unknown phenotype is simulated as normal."""
    data = load_tramadol()
    notes: list[str] = []
    ph = check_phenotype(phenotype)
    if ph is None:
        ph = "normal"
        notes.append("CYP2D6 phenotype unknown: simulated as normal metabolizer")
    adj = adjust_for_patient(Patient(ph, strong_cyp2d6_inhibitor, crcl_ml_min, child_pugh, age_years), data)
    notes += adj.assumptions
    p = {k: np.array([v]) for k, v in tramadol_defaults().items()}
    p["MCL"][:], p["MF"][:], p["MCLM"][:] = adj.cl_mult, adj.m1_formation_mult, adj.m1_clearance_mult
    times = np.arange(0.0, course_hours + step_h / 2, step_h)
    ct, cm = concentrations(tramadol_modes(p, "ir"), doses, times)
    return TypicalCurves(times, ct[0], cm[0], adj.phenotype_used, tuple(notes))


def summarise_regimen(
    *,
    phenotype: str | None,
    strong_cyp2d6_inhibitor: bool,
    crcl_ml_min: float | None,
    child_pugh: str | None,
    age_years: int,
    doses: list[tuple[float, float]],
    course_hours: float,
    m1_threshold_ng_ml: float | None = None,
) -> RegimenSummary:
    """Onset and coverage of M1 above a threshold for IR doses ``(time_h, dose_mg HCl)``.

    An unknown phenotype (None) is simulated as normal and said so in the assumptions.
    """
    data = load_tramadol()
    if not (course_hours > 0 and math.isfinite(course_hours)) or course_hours > 24 * 90:
        raise InputError("course_hours", "must be > 0 and at most 90 days", value=course_hours)
    if not doses:
        raise InputError("doses", "at least one dose is needed", value=doses)
    for t, d in doses:
        if not (math.isfinite(t) and t >= 0 and math.isfinite(d) and 0 <= d <= 1000):
            raise InputError("doses", "each dose needs time_h >= 0 and 0-1000 mg", value=(t, d))
    curves = typical_curves(
        phenotype=phenotype,
        strong_cyp2d6_inhibitor=strong_cyp2d6_inhibitor,
        crcl_ml_min=crcl_ml_min,
        child_pugh=child_pugh,
        age_years=age_years,
        doses=doses,
        course_hours=course_hours,
    )
    notes = list(curves.assumptions)
    thr_q = data.m1_threshold
    thr = thr_q.value if m1_threshold_ng_ml is None else float(m1_threshold_ng_ml)
    if not (thr > 0 and math.isfinite(thr)):
        raise InputError("m1_threshold_ng_ml", "must be > 0", value=m1_threshold_ng_ml)
    source = ",".join(thr_q.sources) if m1_threshold_ng_ml is None else "user"
    times, ct, m1 = curves.times_h, curves.tramadol_ng_ml, curves.m1_ng_ml
    above = m1 >= thr
    onset = float(times[int(np.argmax(above))]) if above.any() else None
    notes += [
        "typical patient (no between-subject variability); immediate-release doses",
        "M1 elimination fitted to one study's mean M1 peak (Rouini 2009): exploratory",
        f"threshold {thr:g} ng/mL is an analgesia anchor ({source}), not a validated "
        "withdrawal-relief level",
    ]
    return RegimenSummary(
        onset_h=onset,
        coverage_fraction=float(above.mean()),
        peak_tramadol_ng_ml=float(ct.max()),
        peak_m1_ng_ml=float(m1.max()),
        phenotype_used=curves.phenotype_used,
        threshold_ng_ml=thr,
        threshold_source=source,
        course_hours=float(course_hours),
        assumptions=tuple(notes),
    )
