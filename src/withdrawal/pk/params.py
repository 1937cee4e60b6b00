"""Tramadol/M1 parameters for one patient, from the knowledge base's cited PK data.

The data (``knowledge/data/pk/tramadol.yaml``) is part of the one knowledge base: validated and
citation-checked with everything else at load, so a number cannot enter the model without provenance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from withdrawal.errors import InputError, KnowledgeBaseError
from withdrawal.knowledge.models import Phenotype
from withdrawal.knowledge.pk import PHENOTYPES, TramadolData

if TYPE_CHECKING:
    from withdrawal.knowledge.models import Timeline

__all__ = ["PHENOTYPES", "Adjusted", "Patient", "Phenotype", "TramadolData", "WithdrawalCourse", "adjust_for_patient",
           "check_phenotype", "load_tramadol", "withdrawal_course"]

CHILD_PUGH = ("A", "B", "C")


def load_tramadol() -> TramadolData:
    """The tramadol parameters of the packaged knowledge base (loaded and checked with it, once)."""
    from withdrawal.knowledge.loader import default_kb

    return default_kb().pk


@dataclass(frozen=True)
class WithdrawalCourse:
    """The withdrawal course the simulator plots and covers, from the core knowledge base."""

    substance: str
    onset_h: tuple[float, float]
    peak_h: tuple[float, float]
    duration_days: tuple[float, float]
    sources: tuple[str, ...]

    @property
    def default_course_h(self) -> float:
        """Default coverage window: the upper end of the acute course, in hours."""
        return self.duration_days[1] * 24.0


def withdrawal_course(substance: str = "heroin") -> WithdrawalCourse:
    """The withdrawal timeline of ``substance`` from the core knowledge base (one source of
    truth, shared with the management plan), with its sources."""
    from withdrawal.knowledge.loader import default_kb

    timeline: Timeline | None = default_kb().timeline(substance)
    if (timeline is None or timeline.onset_h is None or timeline.peak_h is None
            or timeline.duration_days is None):
        raise KnowledgeBaseError(f"the knowledge base has no complete {substance} withdrawal "
                                 "timeline (onset, peak, duration)")
    return WithdrawalCourse(
        substance=substance,
        onset_h=(timeline.onset_h.low, timeline.onset_h.high),
        peak_h=(timeline.peak_h.low, timeline.peak_h.high),
        duration_days=(timeline.duration_days.low, timeline.duration_days.high),
        sources=tuple(timeline.sources),
    )


@dataclass(frozen=True)
class Patient:
    """Covariates that change tramadol/M1 kinetics (units in the names)."""

    phenotype: Phenotype = "normal"
    strong_cyp2d6_inhibitor: bool = False
    crcl_ml_min: float | None = None
    child_pugh: str | None = None
    age_years: int = 40


@dataclass(frozen=True)
class Adjusted:
    """Typical-value multipliers for one patient, with the reasons (assumptions) behind them."""

    phenotype_used: Phenotype
    cl_mult: float
    m1_formation_mult: float
    m1_clearance_mult: float
    assumptions: tuple[str, ...]


def check_phenotype(value: str | None, field: str = "phenotype") -> Phenotype | None:
    """Validate a phenotype name (None passes through)."""
    if value is None:
        return None
    for p in PHENOTYPES:
        if value == p:
            return p
    raise InputError(field, "unknown CYP2D6 phenotype", value=value, allowed=PHENOTYPES)


def adjust_for_patient(patient: Patient, data: TramadolData | None = None) -> Adjusted:
    """Apply phenoconversion, renal, hepatic and age effects from the cited data."""
    data = data or load_tramadol()
    check_phenotype(patient.phenotype)
    notes: list[str] = []
    phen: Phenotype = patient.phenotype
    if patient.strong_cyp2d6_inhibitor and phen != "poor":
        phen = data.phenoconversion.strong_cyp2d6_inhibitor_to
        notes.append(
            f"strong CYP2D6 inhibitor: phenotype {patient.phenotype} treated as {phen} "
            f"(phenoconversion; {', '.join(data.phenoconversion.sources)})"
        )
    eff = data.phenotypes[phen]
    cl, form, m1cl = eff.tramadol_clearance.value, eff.m1_formation.value, 1.0
    cov = data.covariates
    if patient.crcl_ml_min is not None:
        if not math.isfinite(patient.crcl_ml_min) or patient.crcl_ml_min < 0:
            raise InputError("crcl_ml_min", "must be a non-negative number", value=patient.crcl_ml_min)
        if patient.crcl_ml_min < 30:
            m1cl /= cov.renal_crcl_30_80_m1_exposure.range[1] if cov.renal_crcl_30_80_m1_exposure.range else 1.0
            notes.append(f"CLcr < 30 mL/min: {cov.renal_crcl_below_30.assumption}")
        elif patient.crcl_ml_min <= 80:
            m1cl /= cov.renal_crcl_30_80_m1_exposure.value
            notes.append("CLcr 30-80 mL/min: M1 exposure +30% (midpoint of the label's +20-40%)")
    if patient.child_pugh is not None:
        if patient.child_pugh not in CHILD_PUGH:
            raise InputError("child_pugh", "unknown class", value=patient.child_pugh, allowed=CHILD_PUGH)
        form *= cov.hepatic_mild_moderate_m1_formation.value
        notes.append("hepatic impairment: M1 formation halved (label, mild/moderate)")
        if patient.child_pugh == "C":
            notes.append(f"Child-Pugh C: {cov.hepatic_severe.assumption}")
    if patient.age_years < 0 or patient.age_years > 130:
        raise InputError("age_years", "must be 0-130", value=patient.age_years)
    if patient.age_years < 18:
        notes.append("age < 18: the model is for adults; children are outside its data")
    if patient.age_years > 75:
        cl *= cov.age_over_75_clearance.value
        notes.append("age > 75: tramadol clearance x 6/7 (half-life 7.0 vs 6.0 h)")
    return Adjusted(phen, cl, form, m1cl, tuple(notes))
