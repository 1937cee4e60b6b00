"""The tramadol evidence summary: trials, honest pooled comparisons, gaps, verdicts.

Builds on the cited data of :mod:`withdrawal.evidence.trials` and the engine of
:mod:`withdrawal.evidence.meta`. Effects are risk ratios of completing withdrawal
treatment, tramadol over comparator (RR > 1 favours tramadol).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from withdrawal.evidence.effects import escalc_binary
from withdrawal.evidence.meta import MetaResult, pool
from withdrawal.evidence.plots import ForestGroup, forest_plot
from withdrawal.evidence.trials import (
    Analysis,
    NotPooled,
    Review,
    Role,
    SummaryData,
    Trial,
    TrialBase,
    Verdict,
    default_summary_data,
    default_trial_base,
)


@dataclass(frozen=True)
class CountRow:
    """The 2x2 counts one trial contributes to an analysis."""

    trial_id: str
    study: str
    events_tramadol: int
    total_tramadol: int
    events_comparator: int
    total_comparator: int
    verification: str


@dataclass(frozen=True)
class PooledAnalysis:
    """An analysis with its counts, primary result and fixed-effect sensitivity result."""

    analysis: Analysis
    rows: tuple[CountRow, ...]
    result: MetaResult
    sensitivity: MetaResult | None

    @property
    def pooled(self) -> bool:
        """False when only one trial exists (the single-study estimate is shown)."""
        return len(self.rows) > 1


@dataclass(frozen=True)
class EvidenceSummary:
    kb_version: str
    trials: tuple[Trial, ...]
    reviews: tuple[Review, ...]
    analyses: tuple[PooledAnalysis, ...]
    not_pooled: tuple[NotPooled, ...]
    verdicts: tuple[Verdict, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "kb_version": self.kb_version,
            "trials": [t.model_dump(mode="json") for t in self.trials],
            "reviews": [r.model_dump(mode="json") for r in self.reviews],
            "analyses": [
                {
                    **a.analysis.model_dump(mode="json"),
                    "pooled": a.pooled,
                    "counts": [r.__dict__ for r in a.rows],
                    "result": a.result.to_dict(),
                    "sensitivity_fe": a.sensitivity.to_dict() if a.sensitivity else None,
                }
                for a in self.analyses
            ],
            "not_pooled": [n.model_dump(mode="json") for n in self.not_pooled],
            "verdicts": [v.model_dump(mode="json") for v in self.verdicts],
        }


def _rows(analysis: Analysis, by_id: dict[str, Trial]) -> tuple[CountRow, ...]:
    rows = []
    roles: tuple[Role, Role] = ("tramadol", analysis.comparator)
    for tid in analysis.trials:
        trial = by_id[tid]
        tra, comp = (trial.arm(r) for r in roles)
        assert tra.n_completed is not None and tra.n_randomised is not None
        assert comp.n_completed is not None and comp.n_randomised is not None
        rows.append(CountRow(
            trial_id=tid, study=trial.study,
            events_tramadol=tra.n_completed, total_tramadol=tra.n_randomised,
            events_comparator=comp.n_completed, total_comparator=comp.n_randomised,
            verification=trial.counts_verification or trial.verification,
        ))
    return tuple(rows)


def analyse(analysis: Analysis, base: TrialBase) -> PooledAnalysis:
    """Compute one analysis from the trial base."""
    rows = _rows(analysis, {t.id: t for t in base.trials})
    effects = escalc_binary(
        analysis.measure,
        [r.events_tramadol for r in rows], [r.total_tramadol for r in rows],
        [r.events_comparator for r in rows], [r.total_comparator for r in rows],
        labels=[r.study for r in rows],
    )
    result = pool(effects, method=analysis.method, test=analysis.test)
    sensitivity = pool(effects, method="FE", test="z") if len(rows) > 1 else None
    return PooledAnalysis(analysis, rows, result, sensitivity)


def build_summary(
    base: TrialBase | None = None, data: SummaryData | None = None
) -> EvidenceSummary:
    """The tramadol evidence summary from the packaged (or given) data."""
    base = base or default_trial_base()
    data = data or default_summary_data()
    return EvidenceSummary(
        kb_version=data.kb_version,
        trials=base.trials,
        reviews=base.reviews,
        analyses=tuple(analyse(a, base) for a in data.analyses),
        not_pooled=data.not_pooled,
        verdicts=data.verdicts,
    )


def tramadol_forest(summary: EvidenceSummary, path: Path) -> Path:
    """Forest plot of every completion comparison in the summary (PNG or SVG)."""
    groups = [
        ForestGroup(
            heading=f"Tramadol vs {a.analysis.comparator}",
            result=a.result,
            pooled_label=None if a.pooled else "One trial only: not pooled",
        )
        for a in summary.analyses
    ]
    return forest_plot(
        groups, path,
        title="Completing withdrawal treatment: tramadol vs comparators (RCTs)",
        xlabel="Risk ratio of completion, tramadol / comparator (log scale)",
        favours=("favours comparator", "favours tramadol"),
    )
