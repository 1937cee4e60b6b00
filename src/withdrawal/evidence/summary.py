"""The tramadol evidence summary: trials, honest pooled comparisons, gaps, verdicts.

Builds on the cited data of :mod:`withdrawal.knowledge.evidence` and the engine of
:mod:`withdrawal.evidence.meta`. Effects are risk ratios of completing withdrawal
treatment, tramadol over comparator (RR > 1 favours tramadol).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from withdrawal.evidence.bias import (
    RECOMMENDED_STUDIES,
    BiasChecks,
    Influence,
    bias_checks,
    influence,
)
from withdrawal.evidence.effects import EffectSizes, escalc_binary
from withdrawal.evidence.meta import MetaResult, pool
from withdrawal.evidence.plots import ForestGroup, forest_plot, influence_plot
from withdrawal.knowledge.evidence import (
    Analysis,
    NotPooled,
    Review,
    Role,
    SummaryData,
    Trial,
    TrialBase,
    Verdict,
)
from withdrawal.knowledge.loader import default_kb


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
    """An analysis with its counts, primary result, fixed-effect sensitivity result, the
    small-study and influence checks where they are honest (else why not) and its GRADE."""

    analysis: Analysis
    rows: tuple[CountRow, ...]
    result: MetaResult
    sensitivity: MetaResult | None
    bias: BiasChecks | None = None
    bias_note: str = ""
    influence: Influence | None = None
    influence_note: str = ""

    @property
    def pooled(self) -> bool:
        """False when only one trial exists (the single-study estimate is shown)."""
        return len(self.rows) > 1

    def grade_dict(self) -> dict[str, Any]:
        """The GRADE summary: certainty and each domain's judgement with its reason."""
        g = self.analysis.grade
        return {
            "start": g.start, "downgrades": g.downgrades, "certainty": g.certainty,
            "domains": {name: d.model_dump(mode="json") for name, d in g.domains()},
        }


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
                    "bias": a.bias.to_dict() if a.bias else None,
                    "bias_note": a.bias_note,
                    "bias_note_sources": list(BIAS_NOTE_SOURCES) if a.bias_note else [],
                    "influence": a.influence.to_dict() if a.influence else None,
                    "influence_note": a.influence_note,
                    "certainty": a.grade_dict(),
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
    checks, bias_note = _bias(effects, analysis)
    infl, infl_note = _influence(effects, analysis)
    return PooledAnalysis(analysis, rows, result, sensitivity, checks, bias_note, infl,
                          infl_note)


BIAS_NOTE_SOURCES = ("ev_sterne2011",)
"""Where the advice on the number of studies for funnel-based checks comes from."""


def _bias(effects: EffectSizes, analysis: Analysis) -> tuple[BiasChecks | None, str]:
    """Funnel-based checks only with enough trials (Sterne 2011: at least 10); else say so."""
    k = effects.k
    if k >= RECOMMENDED_STUDIES:
        return bias_checks(effects, analysis.method, analysis.test), ""
    return None, (f"Not shown: with {k} trial{'s' if k != 1 else ''} a funnel plot, Egger's "
                  "test, the rank correlation test and trim-and-fill are not meaningful; "
                  f"at least {RECOMMENDED_STUDIES} studies are advised.")


def _influence(effects: EffectSizes, analysis: Analysis) -> tuple[Influence | None, str]:
    """Leave-one-out and cumulative analysis from 2 trials on; with 2 each 'leave one out' is
    the other trial alone, which still shows how much the pooled result rests on each."""
    k = effects.k
    if k < 2:
        return None, "Not shown: one trial, nothing to leave out."
    note = ("With 2 trials, leaving one out leaves the other trial alone: the rows show "
            "each trial's own estimate.") if k == 2 else ""
    return influence(effects, analysis.method, analysis.test), note


def build_summary(
    base: TrialBase | None = None, data: SummaryData | None = None
) -> EvidenceSummary:
    """The tramadol evidence summary from the packaged knowledge base (or the given data)."""
    kb = default_kb()
    base = base or kb.trials
    data = data or kb.evidence_summary
    return EvidenceSummary(
        kb_version=kb.version,
        trials=base.trials,
        reviews=base.reviews,
        analyses=tuple(analyse(a, base) for a in data.analyses),
        not_pooled=data.not_pooled,
        verdicts=data.verdicts,
    )


def tramadol_influence(summary: EvidenceSummary, path: Path) -> Path | None:
    """Leave-one-out and cumulative plot of the comparison with the most trials (None when no
    comparison has two)."""
    candidates = [a for a in summary.analyses if a.influence is not None]
    if not candidates:
        return None
    a = max(candidates, key=lambda c: len(c.rows))
    assert a.influence is not None
    return influence_plot(
        a.influence, path,
        title=f"Completion, tramadol vs {a.analysis.comparator}: influence of each trial "
              "(red: both trials)",
        xlabel="Risk ratio of completion, tramadol / comparator (log scale)",
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
