"""Cited tramadol/M1 parameters, loaded from ``knowledge/data/pk/tramadol.yaml``.

The file is validated at load (unknown keys fail) and every entry must cite a registered
source, so a number cannot enter the model without provenance.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from withdrawal.errors import InputError, KnowledgeBaseError
from withdrawal.knowledge.base import (
    Cited,
    Frozen,
    Source,
    check_citations,
    data_dir,
    default_sources,
    read_yaml,
    validate,
)

if TYPE_CHECKING:
    from withdrawal.knowledge.models import Timeline

Phenotype = Literal["poor", "intermediate", "normal", "ultrarapid"]
PHENOTYPES: tuple[Phenotype, ...] = ("poor", "intermediate", "normal", "ultrarapid")
CHILD_PUGH = ("A", "B", "C")


class Quantity(Cited):
    """A cited number with its unit; ``derivation`` says how we computed or fitted it."""

    value: float
    unit: str
    sd: float | None = None
    range: tuple[float, float] | None = None
    derivation: str | None = None
    note: str | None = None


class Unquantified(Cited):
    """An effect the sources describe but do not quantify, with the assumption we make."""

    statement: str
    assumption: str


class PhenotypeEffect(Frozen):
    m1_formation: Quantity
    tramadol_clearance: Quantity


class Phenoconversion(Cited):
    strong_cyp2d6_inhibitor_to: Phenotype
    note: str


class Covariates(Frozen):
    renal_crcl_30_80_m1_exposure: Quantity
    renal_crcl_below_30: Unquantified
    hepatic_mild_moderate_m1_formation: Quantity
    hepatic_severe: Unquantified
    age_over_75_clearance: Quantity


class Frequencies(Cited):
    population: str
    poor: float = Field(ge=0, le=1)
    intermediate: float = Field(ge=0, le=1)
    normal: float = Field(ge=0, le=1)
    ultrarapid: float = Field(ge=0, le=1)
    indeterminate: float = Field(ge=0, le=1)
    note: str

    def normalised(self) -> dict[Phenotype, float]:
        """Frequencies of the four phenotypes, indeterminate left out, summing to 1."""
        raw = {p: float(getattr(self, p)) for p in PHENOTYPES}
        total = sum(raw.values())
        return {p: v / total for p, v in raw.items()}


class TramadolData(Frozen):
    """The whole tramadol parameter file."""

    kb_version: str
    salt: dict[str, Quantity]
    typical: dict[str, Quantity]
    phenotypes: dict[Phenotype, PhenotypeEffect]
    phenoconversion: Phenoconversion
    covariates: Covariates
    variability: dict[str, Quantity]
    phenotype_frequencies: Frequencies
    m1_threshold: Quantity

    def cited_entries(self) -> Iterator[tuple[str, Cited]]:
        """Every cited entry with a dotted name, for citation checks."""
        for group in ("salt", "typical", "variability"):
            for key, q in getattr(self, group).items():
                yield f"{group}.{key}", q
        for ph, eff in self.phenotypes.items():
            yield f"phenotypes.{ph}.m1_formation", eff.m1_formation
            yield f"phenotypes.{ph}.tramadol_clearance", eff.tramadol_clearance
        for key in Covariates.model_fields:
            yield f"covariates.{key}", getattr(self.covariates, key)
        yield "phenoconversion", self.phenoconversion
        yield "phenotype_frequencies", self.phenotype_frequencies
        yield "m1_threshold", self.m1_threshold

    @property
    def salt_base_per_hcl(self) -> float:
        """Mass of tramadol base per mass of tramadol HCl (molar-mass ratio)."""
        return self.salt["mw_tramadol_base"].value / self.salt["mw_tramadol_hcl"].value

    @property
    def m1_per_hcl(self) -> float:
        """Mass of M1 formed per mass of tramadol HCl metabolised (molar-mass ratio)."""
        return self.salt["mw_m1"].value / self.salt["mw_tramadol_hcl"].value

    def t(self, name: str) -> float:
        """A typical value by name."""
        return self.typical[name].value


def load_tramadol_from(
    path_yaml: str | None = None, sources: Mapping[str, Source] | None = None
) -> TramadolData:
    """Load and check a tramadol parameter file (the packaged one by default)."""
    path = data_dir() / "pk" / "tramadol.yaml" if path_yaml is None else data_dir() / path_yaml
    data = validate(TramadolData, read_yaml(path), path.name)
    check_citations(data.cited_entries(), sources or default_sources(), path.name)
    return data


@cache
def load_tramadol() -> TramadolData:
    """The packaged tramadol parameters, validated and citation-checked once."""
    return load_tramadol_from()


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
