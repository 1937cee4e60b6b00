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


class MmeExcluded(Frozen):
    drug: str
    reason: str


class HighDose(Cited):
    mme_per_day_at_least: float = Field(gt=0)
    note: str | None = None


class MmeTable(Cited):
    table: str
    table_label: str
    factors: tuple[MmeFactor, ...]
    excluded: tuple[MmeExcluded, ...] = ()
    high_dose: HighDose

    def by_drug(self) -> Mapping[str, MmeFactor]:
        return {f.drug: f for f in self.factors}

    @property
    def threshold(self) -> float:
        return self.high_dose.mme_per_day_at_least


def check_mme(table: MmeTable, kb: KnowledgeBase, where: str) -> None:
    """Cited; every drug in the vocabulary with the same RxCUI, once."""
    check_citations([("mme", table), ("mme.high_dose", table.high_dose)], kb.sources, where)
    seen: set[str] = set()
    for f in table.factors:
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
