"""The population flags of the knowledge base, as the population screen uses them.

The flags are cited data (``knowledge/data/population_flags.yaml``, schema in
:mod:`withdrawal.knowledge.population`), loaded and checked with the knowledge base: the SQL
compiler (``compiler.py``) and the per-patient evaluator (``per_patient.py``) read them from there.
"""

from __future__ import annotations

from collections.abc import Sequence

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.population import FindingTest, Flag, FlagTest, HighMmeTest, MatchesTest

__all__ = ["FindingTest", "Flag", "FlagTest", "HighMmeTest", "MatchesTest", "flag_columns", "flag_tests"]


def flag_columns(kb: KnowledgeBase) -> tuple[str, ...]:
    """The screen's output column of each flag, in the data's order."""
    return tuple(f"flag_{f.id}" for f in kb.population_flags)


def flag_tests(flags: Sequence[Flag]) -> list[tuple[str, MatchesTest]]:
    """Every matches test of the flags with a stable synthetic rule code."""
    out: list[tuple[str, MatchesTest]] = []
    for flag in flags:
        for part, tests in (("all", flag.all_of), ("any", flag.any_of), ("none", flag.none_of)):
            for i, t in enumerate(tests):
                if isinstance(t, MatchesTest):
                    out.append((f"pop_{flag.id}_{part}{i}", t))
    return out
