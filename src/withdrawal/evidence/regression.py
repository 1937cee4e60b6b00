"""Meta-regression and subgroup analysis, following ``metafor::rma.uni`` with ``mods``.

``fit_rma(yi, vi, X, method, test)`` is the mixed-effects model ``yi = X b + u + e`` with
``u ~ N(0, tau^2)`` (residual heterogeneity) and ``e ~ N(0, vi)``. tau^2 is estimated the way
metafor does for a model with moderators (FE, DL, HE, SJ, PM, ML, REML; ML/REML by Fisher
scoring from the HE estimate with metafor's stopping rule), coefficients by weighted least
squares with weights 1/(vi + tau^2). Tests: Wald z and the omnibus QM (chi-square with m df)
or, under ``knha``, t with k-p df and QM/m as F(m, k-p) (Knapp and Hartung 2003). QE is the
test for residual heterogeneity. R^2 is metafor's pseudo R^2: the proportional reduction of
tau^2 against the intercept-only model (Raudenbush 2009).

Design matrices follow R's ``model.matrix`` with treatment coding: ``intrcpt``, a numeric
column under its own name, a text column as one indicator per level except the first (levels
sorted by code point), named column + level (``allocrandom``).

Subgroups fit each level on its own and test their differences as metafor documents:
a fixed-effect meta-regression of the subgroup estimates (with their standard errors) on the
subgroup factor, QM with (levels - 1) df.

References
----------
Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw 2010;36(3).
Knapp G, Hartung J. Improved tests for a random effects meta-regression with a single
covariate. Stat Med 2003;22:2693-2710.
Raudenbush SW. Analyzing effect sizes: random-effects models. In: The Handbook of Research
Synthesis and Meta-Analysis, 2nd ed. 2009:295-315.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from withdrawal.errors import InputError
from withdrawal.evidence.effects import EffectSizes, FloatArray, effect_sizes_given
from withdrawal.evidence.meta import (
    DBL_EPS,
    MAXITER,
    METHODS,
    TAU2_MAX_DEFAULT,
    TESTS,
    THRESHOLD,
    UNIROOT_TOL,
    ConvergenceError,
    MetaResult,
    Method,
    Test,
    _r_mad,
    pool,
    zeroin,
)

Moderator = Sequence[float] | Sequence[str]


@dataclass(frozen=True)
class Coefficient:
    """One model coefficient with its Wald test and confidence interval."""

    name: str
    estimate: float
    se: float
    statistic: float
    p: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class RegressionFit:
    """A fitted ``rma(yi, vi, mods = X)`` model."""

    method: Method
    test: Test
    k: int
    p: int
    coefficients: tuple[Coefficient, ...]
    vb: FloatArray
    tau2: float
    qm: float
    qm_df: int
    qm_p: float
    qe: float
    qe_df: int
    qe_p: float
    df: int | None
    r2: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The contract's fields: coefficients, QM, QE, tau^2 and R^2."""
        return {
            "method": self.method, "test": self.test, "k": self.k,
            "coefficients": [c.to_dict() for c in self.coefficients],
            "qm": self.qm, "qm_df": self.qm_df, "qm_p": self.qm_p,
            "qe": self.qe, "qe_df": self.qe_df, "qe_p": self.qe_p,
            "tau2": self.tau2, "r2": self.r2,
        }


# --------------------------------------------------------------------------- design matrix


def is_numeric(values: Sequence[str]) -> bool:
    """A column is numeric when every value parses as a finite number."""
    try:
        return all(math.isfinite(float(v)) for v in values)
    except ValueError:
        return False


def design_matrix(
    moderators: Mapping[str, Moderator], k: int
) -> tuple[FloatArray, tuple[str, ...]]:
    """Intercept plus moderators in the order given; text columns as treatment-coded factors."""
    columns: list[FloatArray] = [np.ones(k)]
    names = ["intrcpt"]
    for name, values in moderators.items():
        if len(values) != k:
            raise InputError(name, f"has {len(values)} values for {k} studies", value=len(values))
        text = [str(v) for v in values]
        if all(isinstance(v, int | float) for v in values) or is_numeric(text):
            columns.append(np.array([float(v) for v in values]))
            names.append(name)
            continue
        levels = sorted(set(text))
        for level in levels[1:]:
            columns.append(np.array([1.0 if v == level else 0.0 for v in text]))
            names.append(f"{name}{level}")
    return np.column_stack(columns), tuple(names)


# --------------------------------------------------------------------------- estimation


def _wls(y: FloatArray, x: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Weighted least squares: coefficients and (X'WX)^-1."""
    xw = x * w[:, None]
    inv = np.asarray(np.linalg.inv(x.T @ xw), dtype=np.float64)
    return np.asarray(inv @ (xw.T @ y), dtype=np.float64), inv


def _p_matrix(x: FloatArray, w: FloatArray) -> FloatArray:
    """P = W - W X (X'WX)^-1 X'W."""
    xw = x * w[:, None]
    return np.asarray(np.diag(w) - xw @ np.linalg.inv(x.T @ xw) @ xw.T, dtype=np.float64)


def _rss(y: FloatArray, x: FloatArray, w: FloatArray) -> float:
    return float(y @ _p_matrix(x, w) @ y)


def _tau2_he(y: FloatArray, v: FloatArray, x: FloatArray) -> float:
    k, p = x.shape
    ols = np.eye(k) - x @ np.linalg.inv(x.T @ x) @ x.T
    return float((y @ ols @ y - np.trace(ols @ np.diag(v))) / (k - p))


def _loglik(y: FloatArray, v: FloatArray, x: FloatArray, tau2: float, reml: bool) -> float:
    w = 1 / (v + tau2)
    k, p = x.shape
    rss = _rss(y, x, w)
    ll = -0.5 * np.sum(np.log(v + tau2)) - 0.5 * rss
    if reml:
        ll += (-0.5 * (k - p) * math.log(2 * math.pi)
               - 0.5 * np.linalg.slogdet(x.T @ (x * w[:, None]))[1])
    else:
        ll += -0.5 * k * math.log(2 * math.pi)
    return float(ll)


def _tau2_fisher(y: FloatArray, v: FloatArray, x: FloatArray, reml: bool) -> float:
    tau2 = max(0.0, _tau2_he(y, v, x))
    change = THRESHOLD + 1
    it = 0
    while change > THRESHOLD:
        it += 1
        old = tau2
        w = 1 / (v + tau2)
        p = _p_matrix(x, w)
        pp = p @ p
        if reml:
            adj = float((y @ pp @ y - np.trace(p)) / np.trace(pp))
        else:
            adj = float((y @ pp @ y - np.sum(w)) / np.sum(w**2))
        while tau2 + adj < 0:
            adj /= 2
        tau2 += adj
        change = abs(old - tau2)
        if it > MAXITER:
            raise ConvergenceError(
                f"{'REML' if reml else 'ML'}: Fisher scoring did not converge in {MAXITER} "
                "iterations; use another method (e.g. PM or DL)")
    if (_loglik(y, v, x, 0.0, reml) - _loglik(y, v, x, tau2, reml) > UNIROOT_TOL
            and tau2 > THRESHOLD):
        tau2 = 0.0
    return tau2


def estimate_tau2(y: FloatArray, v: FloatArray, x: FloatArray, method: Method) -> float:
    """Residual tau^2 of the model with design ``x`` (truncated at 0)."""
    k, p = x.shape
    if method == "FE" or k <= p:
        return 0.0
    if method == "DL":
        w = 1 / v
        p_mat = _p_matrix(x, w)
        tau2 = float((y @ p_mat @ y - (k - p)) / np.trace(p_mat))
    elif method == "HE":
        tau2 = _tau2_he(y, v, x)
    elif method == "SJ":
        tau2_0 = float(np.var(y, ddof=1) * (k - 1) / k)
        tau2 = tau2_0 * _rss(y, x, 1 / (v + tau2_0)) / (k - p)
    elif method == "PM":
        def gen_q(t: float) -> float:
            return _rss(y, x, 1 / (v + t)) - float(k - p)

        f0 = gen_q(0.0)
        if f0 < 0:
            return 0.0
        upper = max(TAU2_MAX_DEFAULT, 10 * _r_mad(y) ** 2)  # metafor's tau2.max
        f_up = gen_q(upper)
        if f_up > 0:
            raise ConvergenceError(f"PM: tau^2 lies above [0, {upper:g}]; use another method")
        tau2 = float(zeroin(gen_q, 0.0, upper, f0, f_up)[0])
    else:
        tau2 = _tau2_fisher(y, v, x, reml=method == "REML")
    return max(0.0, tau2)


def fit_rma(
    yi: FloatArray, vi: FloatArray, x: FloatArray, names: Sequence[str],
    method: Method = "REML", test: Test = "z", level: float = 95.0,
) -> RegressionFit:
    """Fit ``rma(yi, vi, mods = X[, -1], method, test)``; X includes the intercept column."""
    if method not in METHODS:
        raise InputError("method", "unknown estimator", value=method, allowed=METHODS)
    if test not in TESTS:
        raise InputError("test", "unknown test", value=test, allowed=TESTS)
    k, p = x.shape
    if k <= p - 1 or np.linalg.matrix_rank(x) < p:
        raise InputError("mods", f"{p} coefficients cannot be estimated from {k} studies "
                         "(too few studies or redundant moderators)", value=list(names[1:]))
    tau2 = estimate_tau2(yi, vi, x, method)
    w = 1 / (vi + tau2)
    beta, vb = _wls(yi, x, w)
    alpha = 1 - level / 100
    df: int | None = None
    if test == "knha" and k > p:
        rss = float(np.sum(w * (yi - x @ beta) ** 2))
        vb = vb * (0.0 if rss <= DBL_EPS else rss / (k - p))
        df = k - p
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = beta / se
    if df is not None:
        crit = float(stats.t.isf(alpha / 2, df))
        pvals = 2 * stats.t.sf(np.abs(stat), df)
    else:
        crit = float(stats.norm.isf(alpha / 2))
        pvals = 2 * stats.norm.sf(np.abs(stat))
    coefs = tuple(
        Coefficient(n, float(b), float(s), float(z), float(pv), float(b - crit * s),
                    float(b + crit * s))
        for n, b, s, z, pv in zip(names, beta, se, stat, pvals, strict=True)
    )
    m = p - 1
    if m > 0:
        b2 = beta[1:]
        qm = float(b2 @ np.linalg.solve(vb[1:, 1:], b2))
        if df is not None:
            qm /= m
            qm_p = float(stats.f.sf(qm, m, df))
        else:
            qm_p = float(stats.chi2.sf(qm, m))
    else:
        qm, qm_p = math.nan, math.nan
    qe = max(0.0, _rss(yi, x, 1 / vi)) if k > p else 0.0
    qe_p = float(stats.chi2.sf(qe, k - p)) if k > p else 1.0
    return RegressionFit(method=method, test=test, k=k, p=p, coefficients=coefs, vb=vb,
                         tau2=tau2, qm=qm, qm_df=m, qm_p=qm_p, qe=qe, qe_df=k - p, qe_p=qe_p,
                         df=df)


def meta_regression(
    effects: EffectSizes, moderators: Mapping[str, Moderator], method: Method = "REML",
    test: Test = "z", level: float = 95.0,
) -> RegressionFit:
    """Meta-regression on named moderators, with metafor's pseudo R^2 (None for FE)."""
    if not moderators:
        raise InputError("mods", "name at least one moderator column")
    x, names = design_matrix(moderators, effects.k)
    fit = fit_rma(effects.yi, effects.vi, x, names, method, test, level)
    if method == "FE":
        return fit
    tau2_0 = estimate_tau2(effects.yi, effects.vi, np.ones((effects.k, 1)), method)
    r2 = 0.0 if tau2_0 <= 0 else max(0.0, 100 * (tau2_0 - fit.tau2) / tau2_0)
    return RegressionFit(**{**fit.__dict__, "r2": r2})


# --------------------------------------------------------------------------- subgroups


@dataclass(frozen=True)
class SubgroupAnalysis:
    """One fit per level and the test of subgroup differences."""

    column: str
    fits: Mapping[str, MetaResult]
    q_between: float
    q_between_df: int
    q_between_p: float

    def to_dict(self) -> dict[str, Any]:
        """The contract's fields: per level k, estimate, se, CI, tau^2, I^2, Q and its p."""
        return {
            "subgroup": self.column,
            "subgroups": {
                level: {"k": r.k, "estimate": r.estimate, "se": r.se, "ci_low": r.ci_low,
                        "ci_high": r.ci_high, "tau2": r.tau2, "i2": r.i2, "q": r.q,
                        "q_p": r.q_p}
                for level, r in self.fits.items()
            },
            "q_between": self.q_between, "q_between_df": self.q_between_df,
            "q_between_p": self.q_between_p,
        }


def subgroup_analysis(
    effects: EffectSizes, column: str, values: Sequence[str], method: Method = "REML",
    test: Test = "z", level: float = 95.0,
) -> SubgroupAnalysis:
    """``rma(..., subset = COL == level)`` per level, then the FE test of differences.

    A level with one study is fitted as metafor fits it: tau^2 = 0 and the z test.
    """
    if len(values) != effects.k:
        raise InputError(column, f"has {len(values)} values for {effects.k} studies")
    text = [str(v) for v in values]
    levels = sorted(set(text))
    if len(levels) < 2:
        raise InputError(column, "a subgroup analysis needs at least two levels",
                         value=levels)
    fits: dict[str, MetaResult] = {}
    for lev in levels:
        idx = [i for i, v in enumerate(text) if v == lev]
        sub = effect_sizes_given(effects.yi[idx], effects.vi[idx],
                                 [effects.labels[i] for i in idx])
        sub = EffectSizes(effects.measure, sub.yi, sub.vi, sub.labels)
        fits[lev] = pool(sub, method=method, test=test, level=level)
    est = np.array([f.estimate for f in fits.values()])
    var = np.array([f.se**2 for f in fits.values()])
    for lev, fit in fits.items():
        if not fit.se > 0:
            raise InputError(column, f"subgroup {lev!r} has standard error 0 (identical effects "
                             "under knha), so subgroups cannot be compared; use the z test",
                             value=lev, allowed=["z"])
    x, names = design_matrix({column: levels}, len(levels))
    between = fit_rma(est, var, x, names, method="FE", test="z", level=level)
    return SubgroupAnalysis(column, fits, between.qm, between.qm_df, between.qm_p)
