"""Schema of the tramadol and O-desmethyltramadol (M1) parameter file, ``data/pk/tramadol.yaml``.

Part of the one knowledge base (:func:`withdrawal.knowledge.loader.load_kb` loads and checks it
with everything else); the simulator in ``withdrawal.pk`` reads it from there.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from withdrawal.knowledge.base import Cited, Frozen
from withdrawal.knowledge.models import Phenotype

PHENOTYPES: tuple[Phenotype, ...] = ("poor", "intermediate", "normal", "ultrarapid")


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
