"""Population flags: cited data (``knowledge/data/population_flags.yaml``) and their tests.

A flag is a conjunction of tests, each one of: KB :class:`~withdrawal.knowledge.models.Match`es
(:class:`MatchesTest`), a tramadol finding code (:class:`FindingTest`) or the MME threshold
(:class:`HighMmeTest`). The SQL compiler (``compiler.py``) and the per-patient evaluator
(``per_patient.py``) both read them from here, so a flag is defined once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, model_validator

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import Cited, Frozen, data_dir, read_yaml, validate
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Match


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


class _FlagIn(Cited):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    basis: str
    note: str | None = None
    all_of: tuple[_TestIn, ...] = ()
    any_of: tuple[_TestIn, ...] = ()
    none_of: tuple[_TestIn, ...] = ()


class _FlagFile(Frozen):
    kb_version: str
    flags: tuple[_FlagIn, ...] = Field(min_length=1)


def load_flags(path: Path | None = None) -> tuple[Flag, ...]:
    """The population flags, as cited data (``knowledge/data/population_flags.yaml``)."""
    path = path or data_dir() / "population_flags.yaml"
    data = validate(_FlagFile, read_yaml(path), path.name)
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
        for f in data.flags
    )


FLAGS: tuple[Flag, ...] = load_flags()

FLAG_IDS: tuple[str, ...] = tuple(f.id for f in FLAGS)

FLAG_COLUMNS: tuple[str, ...] = tuple(f"flag_{f}" for f in FLAG_IDS)


def flag_tests(flags: Sequence[Flag]) -> list[tuple[str, MatchesTest]]:
    """Every matches test of the flags with a stable synthetic rule code."""
    out: list[tuple[str, MatchesTest]] = []
    for flag in flags:
        for part, tests in (("all", flag.all_of), ("any", flag.any_of), ("none", flag.none_of)):
            for i, t in enumerate(tests):
                if isinstance(t, MatchesTest):
                    out.append((f"pop_{flag.id}_{part}{i}", t))
    return out


def check_flags(kb: KnowledgeBase, flags: Sequence[Flag] = FLAGS) -> None:
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
