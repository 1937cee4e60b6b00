"""Schemas of the population screen's data: the flags (``data/population_flags.yaml``) and the
morphine milligram equivalent table (``data/mme.yaml``), with their cross-checks.

Part of the one knowledge base (:func:`withdrawal.knowledge.loader.load_kb`). A flag is a
conjunction of tests, each one of: KB :class:`~withdrawal.knowledge.models.Match`es
(:class:`MatchesTest`), a tramadol finding code (:class:`FindingTest`) or the MME threshold
(:class:`HighMmeTest`); the SQL compiler and the per-patient evaluator of ``withdrawal.population``
both read them from the knowledge base, so a flag is defined once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import Cited, Frozen, check_citations
from withdrawal.knowledge.models import Match

if TYPE_CHECKING:
    from withdrawal.knowledge.loader import KnowledgeBase


@dataclass(frozen=True)
class MatchesTest:
    """Holds when any of the matches holds (the semantics of ``Rule.when``)."""

    matches: tuple[Match, ...]


@dataclass(frozen=True)
class FindingTest:
    """Holds when the tramadol screen reports this finding code."""

    code: str


@dataclass(frozen=True)
class HighMmeTest:
    """Holds when the active opioid dose reaches the high-dose MME threshold of ``mme.yaml``."""


FlagTest = MatchesTest | FindingTest | HighMmeTest


@dataclass(frozen=True)
class Flag:
    id: str
    label: str
    basis: str
    sources: tuple[str, ...]
    all_of: tuple[FlagTest, ...] = ()
    any_of: tuple[FlagTest, ...] = ()
    none_of: tuple[FlagTest, ...] = ()


class _TestIn(Frozen):
    """One flag test in ``population_flags.yaml``: matches, a finding code, or the MME threshold."""

    matches: tuple[Match, ...] = ()
    finding: str | None = None
    high_mme: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> _TestIn:
        if sum((bool(self.matches), self.finding is not None, self.high_mme)) != 1:
            raise ValueError("a flag test is exactly one of: matches, finding, high_mme")
        return self

    def to_test(self) -> FlagTest:
        if self.matches:
            return MatchesTest(self.matches)
        return FindingTest(self.finding) if self.finding is not None else HighMmeTest()


class FlagIn(Cited):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    basis: str
    note: str | None = None
    all_of: tuple[_TestIn, ...] = ()
    any_of: tuple[_TestIn, ...] = ()
    none_of: tuple[_TestIn, ...] = ()


class FlagFile(Frozen):
    flags: tuple[FlagIn, ...] = Field(min_length=1)

    def to_flags(self) -> tuple[Flag, ...]:
        return tuple(
            Flag(
                f.id,
                f.label,
                f.basis,
                f.sources,
                all_of=tuple(t.to_test() for t in f.all_of),
                any_of=tuple(t.to_test() for t in f.any_of),
                none_of=tuple(t.to_test() for t in f.none_of),
            )
            for f in self.flags
        )


def check_flags(flags: Sequence[Flag], kb: KnowledgeBase) -> None:
    """Flags may only name sources, drugs, classes, conditions and codes the KB defines."""
    codes = {r.code for r in kb.tramadol.rules}
    for flag in flags:
        for sid in flag.sources:
            if sid not in kb.sources:
                raise KnowledgeBaseError(f"population flag {flag.id}: unknown source {sid!r}")
        for t in (*flag.all_of, *flag.any_of, *flag.none_of):
            if isinstance(t, FindingTest) and t.code not in codes:
                raise KnowledgeBaseError(f"population flag {flag.id}: unknown finding code {t.code!r}")
            if isinstance(t, MatchesTest):
                for m in t.matches:
                    for d in (*m.drugs_any, *m.allergy_drugs_any):
                        if d not in kb.drugs:
                            raise KnowledgeBaseError(f"population flag {flag.id}: unknown drug {d!r}")
                    for c in m.drug_classes_any:
                        if c not in kb.classes:
                            raise KnowledgeBaseError(f"population flag {flag.id}: unknown class {c!r}")
                    for k in m.conditions_any:
                        if k not in kb.conditions:
                            raise KnowledgeBaseError(f"population flag {flag.id}: unknown condition {k!r}")


DoseUnit = Literal["mg_per_day", "mcg_per_h"]


class MmeFactor(Frozen):
    drug: str = Field(pattern=r"^[a-z0-9_]+$")
    factor: float = Field(gt=0)
    dose_unit: DoseUnit
    rxcui: str = Field(pattern=r"^[0-9]+$")
    note: str | None = None


class DoseUnitConversion(Frozen):
    """How a dose in one of the table's units becomes mg/day, and back.

    ``mg/day = dose x periods_per_day / units_per_mg`` (mcg/h: x 24 hours a day / 1000 mcg a mg);
    :meth:`from_mg_per_day` is its inverse, in the order written (``mg x units_per_mg / periods_per_day``),
    so every path that converts (the FHIR mapper, the MME, the bulk SQL, the synthetic truth) gets the
    same floating-point number."""

    unit: DoseUnit
    label: str
    periods_per_day: float = Field(gt=0)
    """How many of the unit's time periods make a day (h: 24)."""
    units_per_mg: float = Field(gt=0)
    """How many of the unit's mass units make a mg (mcg: 1000)."""
    note: str | None = None

    def to_mg_per_day(self, dose: float) -> float:
        return dose * self.periods_per_day / self.units_per_mg

    def from_mg_per_day(self, mg_per_day: float) -> float:
        return mg_per_day * self.units_per_mg / self.periods_per_day

    @property
    def is_mg_per_day(self) -> bool:
        return self.periods_per_day == 1 and self.units_per_mg == 1

    def sql_from_mg_per_day(self, expr: str) -> str:
        """:meth:`from_mg_per_day` as SQL over the DOUBLE ``expr`` (DuckDB and Spark alike)."""
        if self.is_mg_per_day:
            return expr
        return f"{expr} * {float(self.units_per_mg)!r} / {float(self.periods_per_day)!r}"


class MmeExcluded(Frozen):
    drug: str
    reason: str


class HighDose(Cited):
    mme_per_day_at_least: float = Field(gt=0)
    note: str | None = None


class MmeTable(Cited):
    table: str
    table_label: str
    dose_units: tuple[DoseUnitConversion, ...]
    """The units the factors apply to, each with its conversion from and to mg/day."""
    factors: tuple[MmeFactor, ...]
    excluded: tuple[MmeExcluded, ...] = ()
    high_dose: HighDose

    def by_drug(self) -> Mapping[str, MmeFactor]:
        return {f.drug: f for f in self.factors}

    def dose_unit(self, unit: DoseUnit) -> DoseUnitConversion:
        """The conversion of ``unit`` (``load_kb`` guarantees one for every unit a factor names)."""
        return next(u for u in self.dose_units if u.unit == unit)

    @property
    def threshold(self) -> float:
        return self.high_dose.mme_per_day_at_least


def check_mme(table: MmeTable, kb: KnowledgeBase, where: str) -> None:
    """Cited; every drug in the vocabulary with the same RxCUI, once; every factor's dose unit
    converted once (mg/day to itself)."""
    check_citations([("mme", table), ("mme.high_dose", table.high_dose)], kb.sources, where)
    units = [u.unit for u in table.dose_units]
    if len(units) != len(set(units)):
        raise KnowledgeBaseError(f"{where}: a dose unit is defined twice")
    if "mg_per_day" in units and not table.dose_unit("mg_per_day").is_mg_per_day:
        raise KnowledgeBaseError(f"{where}: mg_per_day must convert to itself (1 period a day, 1 unit a mg)")
    seen: set[str] = set()
    for f in table.factors:
        if f.dose_unit not in units:
            raise KnowledgeBaseError(f"{where}: {f.drug}'s dose unit {f.dose_unit} has no conversion")
        drug = kb.drugs.get(f.drug)
        if drug is None:
            raise KnowledgeBaseError(f"{where}: unknown drug {f.drug!r}")
        if drug.rxcui != f.rxcui:
            raise KnowledgeBaseError(f"{where}: {f.drug} RxCUI {f.rxcui} differs from the vocabulary")
        if f.drug in seen:
            raise KnowledgeBaseError(f"{where}: duplicate factor for {f.drug}")
        seen.add(f.drug)
    for ex in table.excluded:
        if ex.drug not in kb.drugs or ex.drug in seen:
            raise KnowledgeBaseError(f"{where}: bad exclusion {ex.drug!r}")
