"""Small-study effects and influence, following metafor's ``regtest``, ``ranktest``,
``trimfill``, ``leave1out`` and ``cumul``.

Egger's regression test (metafor's default: ``rma(yi, vi, mods = ~ sei, method, test)``) tests
whether effects grow with their standard error; the intercept is the "limit estimate", the
effect of a study with se 0. The rank correlation test (Begg and Mazumdar 1994) is Kendall's
tau between the standardised deviates from the fixed-effect estimate and the variances.
Trim-and-fill (Duval and Tweedie 2000, estimator L0) estimates how many studies are missing on
the side the funnel lacks, imputes their mirror images and refits.

These tests have little power and many false alarms with few studies: the Cochrane Handbook
(section 13.3.5.4) advises against them with fewer than 10 studies; they are refused below 3,
where they are undefined.

References
----------
Egger M, Davey Smith G, Schneider M, Minder C. BMJ 1997;315:629-634.
Begg CB, Mazumdar M. Biometrics 1994;50:1088-1101.
Duval S, Tweedie R. Biometrics 2000;56:455-463.
Sterne JAC et al. BMJ 2011;343:d4002 (recommendations for funnel plot asymmetry tests).
Viechtbauer W, Cheung MWL. Res Synth Methods 2010;1:112-125 (leave-one-out diagnostics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from withdrawal.errors import InputError
from withdrawal.evidence.effects import EffectSizes
from withdrawal.evidence.meta import ConvergenceError, MetaResult, Method, Test, pool
from withdrawal.evidence.regression import fit_rma

MIN_STUDIES = 3
"""Fewest studies for which the bias tests are defined (Egger needs a residual df)."""
RECOMMENDED_STUDIES = 10
"""Cochrane Handbook 13.3.5.4: funnel-based tests only with at least 10 studies."""
TRIMFILL_MAXITER = 100


@dataclass(frozen=True)
class EggerTest:
    """Egger's regression test and the limit estimate (effect at se = 0)."""

    statistic: float
    p: float
    df: int | None
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float


@dataclass(frozen=True)
class RankTest:
    """Begg and Mazumdar's rank correlation: Kendall's tau and its p (None, as R's NA, when
    every deviate or every variance is tied)."""

    tau: float | None
    p: float | None
    exact: bool


@dataclass(frozen=True)
class TrimFill:
    """Trim-and-fill: missing studies, side and the filled analysis."""

    k0: int
    side: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    filled_yi: tuple[float, ...]
    filled_vi: tuple[float, ...]


@dataclass(frozen=True)
class BiasChecks:
    """All small-study checks of one analysis."""

    egger: EggerTest
    rank_test: RankTest
    trimfill: TrimFill

    def to_dict(self) -> dict[str, Any]:
        """The contract's fields."""
        e, r, t = self.egger, self.rank_test, self.trimfill
        return {
            "egger": {"statistic": e.statistic, "p": e.p, "df": e.df,
                      "limit_estimate": e.limit_estimate, "limit_ci_low": e.limit_ci_low,
                      "limit_ci_high": e.limit_ci_high},
            "rank_test": {"tau": r.tau, "p": r.p, "exact": r.exact},
            "trimfill": {"k0": t.k0, "side": t.side, "estimate": t.estimate, "se": t.se,
                         "ci_low": t.ci_low, "ci_high": t.ci_high,
                         "filled": [{"yi": y, "vi": v}
                                    for y, v in zip(t.filled_yi, t.filled_vi, strict=True)]},
        }


def _check_k(k: int) -> None:
    if k < MIN_STUDIES:
        raise InputError("bias", f"the bias tests need at least {MIN_STUDIES} studies "
                         f"(got {k}; Cochrane advises at least {RECOMMENDED_STUDIES})",
                         value=k, allowed=[f">= {MIN_STUDIES} studies"])


def _check_spread(effects: EffectSizes) -> None:
    if np.ptp(np.sqrt(effects.vi)) <= 1e-12 * float(np.max(np.sqrt(effects.vi))):
        raise InputError("bias", "Egger's test and trim-and-fill regress on the standard "
                         "errors, which are all equal here", value=float(effects.vi[0]),
                         allowed=["studies with different sampling variances"])


def egger_test(effects: EffectSizes, method: Method = "REML", test: Test = "z",
               level: float = 95.0) -> EggerTest:
    """``regtest(fit)``: ``rma(yi, vi, mods = ~ sei, method, test)``."""
    _check_k(effects.k)
    _check_spread(effects)
    x = np.column_stack([np.ones(effects.k), np.sqrt(effects.vi)])
    fit = fit_rma(effects.yi, effects.vi, x, ("intrcpt", "sei"), method, test, level)
    b0, b1 = fit.coefficients
    return EggerTest(b1.statistic, b1.p, fit.df, b0.estimate, b0.ci_low, b0.ci_high)


def rank_test(effects: EffectSizes) -> RankTest:
    """``ranktest(fit)``: Kendall's tau, exact p without ties, normal approximation with."""
    _check_k(effects.k)
    fe = pool(effects, method="FE")
    v_star = effects.vi - fe.se**2
    y_star = (effects.yi - fe.estimate) / np.sqrt(v_star)
    ties = (np.unique(y_star).size < y_star.size) or (np.unique(effects.vi).size < effects.k)
    res = stats.kendalltau(y_star, effects.vi, method="asymptotic" if ties else "exact")
    tau, p = float(res.statistic), float(res.pvalue)
    if not (math.isfinite(tau) and math.isfinite(p)):
        return RankTest(None, None, False)
    return RankTest(tau, p, not ties)


def trim_and_fill(effects: EffectSizes, method: Method = "REML", test: Test = "z",
                  level: float = 95.0) -> TrimFill:
    """``trimfill(fit)`` with the L0 estimator; side from the sign of the sqrt(vi) slope."""
    _check_k(effects.k)
    _check_spread(effects)
    k = effects.k
    x = np.column_stack([np.ones(k), np.sqrt(effects.vi)])
    slope = fit_rma(effects.yi, effects.vi, x, ("intrcpt", "sei"), method, "z", level)
    side = "right" if slope.coefficients[1].estimate < 0 else "left"
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * effects.yi, kind="stable")
    y, v = sign * effects.yi[order], effects.vi[order]
    k0, previous, it, b = 0, -1, 0, 0.0
    while k0 != previous:
        previous = k0
        it += 1
        if it > TRIMFILL_MAXITER:
            raise ConvergenceError("trim-and-fill did not converge")
        trimmed = EffectSizes(effects.measure, y[: k - k0], v[: k - k0], ("",) * (k - k0))
        b = pool(trimmed, method=method, level=level).estimate
        centred = y - b
        ranks = stats.rankdata(np.abs(centred), method="ordinal")
        s_r = float(np.sum(ranks[centred > 0]))
        l0 = (4 * s_r - k * (k + 1)) / (2 * k - 1)
        k0 = max(0, _r_round(l0))
    if k0 == 0:
        res = pool(effects, method=method, test=test, level=level)
        return TrimFill(0, side, res.estimate, res.se, res.ci_low, res.ci_high, (), ())
    fill_y = sign * (2 * b - y[k - k0:])
    fill_v = v[k - k0:]
    filled = EffectSizes(effects.measure, np.concatenate([effects.yi, fill_y]),
                         np.concatenate([effects.vi, fill_v]), ("",) * (k + k0))
    res = pool(filled, method=method, test="z", level=level)
    return TrimFill(k0, side, res.estimate, res.se, res.ci_low, res.ci_high,
                    tuple(float(t) for t in fill_y), tuple(float(t) for t in fill_v))


def _r_round(x: float) -> int:
    """R's ``round``: halves to even (IEC 60559), as Python's ``round``."""
    return int(round(x))


def bias_checks(effects: EffectSizes, method: Method = "REML", test: Test = "z",
                level: float = 95.0) -> BiasChecks:
    """Egger's test, the rank correlation test and trim-and-fill of one analysis."""
    return BiasChecks(egger_test(effects, method, test, level), rank_test(effects),
                      trim_and_fill(effects, method, test, level))


# --------------------------------------------------------------------------- influence


@dataclass(frozen=True)
class InfluenceRow:
    """One refit: leaving a study out, or adding studies in order. None where it failed."""

    study: str
    estimate: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    tau2: float | None
    i2: float | None
    q: float | None
    k: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Influence:
    """Leave-one-out and cumulative meta-analysis."""

    leave_one_out: tuple[InfluenceRow, ...]
    cumulative: tuple[InfluenceRow, ...]
    full: MetaResult

    def to_dict(self) -> dict[str, Any]:
        """The contract's fields."""
        return {"leave_one_out": [r.to_dict() for r in self.leave_one_out],
                "cumulative": [r.to_dict() for r in self.cumulative]}


def _refit(effects: EffectSizes, idx: list[int], study: str, method: Method, test: Test,
           level: float) -> InfluenceRow:
    sub = EffectSizes(effects.measure, effects.yi[idx], effects.vi[idx],
                      tuple(effects.labels[i] for i in idx))
    try:
        r = pool(sub, method=method, test=test, level=level)
    except ConvergenceError:
        return InfluenceRow(study, None, None, None, None, None, None, None, len(idx))
    return InfluenceRow(study, r.estimate, r.se, r.ci_low, r.ci_high, r.tau2, r.i2, r.q,
                        r.k)


def influence(effects: EffectSizes, method: Method = "REML", test: Test = "z",
              level: float = 95.0) -> Influence:
    """``leave1out(fit)`` and ``cumul(fit)`` in the data's order (refits that fail: None)."""
    k = effects.k
    if k < 2:
        raise InputError("influence", "leave-one-out needs at least 2 studies", value=k,
                         allowed=[">= 2 studies"])
    labels = effects.labels
    loo = tuple(_refit(effects, [j for j in range(k) if j != i], labels[i], method, test,
                       level) for i in range(k))
    cum = tuple(_refit(effects, list(range(i + 1)), labels[i], method, test, level)
                for i in range(k))
    return Influence(loo, cum, pool(effects, method=method, test=test, level=level))


def is_finite(x: float | None) -> bool:
    """True for a number that is neither None nor NaN/inf (for plots of refits)."""
    return x is not None and math.isfinite(x)
