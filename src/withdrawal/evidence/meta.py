"""Inverse-variance meta-analysis (fixed and random effects), following R's metafor.

``rma(yi, vi, method, test)`` reproduces ``metafor::rma.uni`` for an
intercept-only model with metafor's default control settings, including how
each estimator of the between-study variance tau^2 is computed, iterated,
stopped and truncated at 0; ``predict()``'s prediction interval is included.
Reference values from metafor 3.8-1 are checked in ``tests/evidence``.

Estimators of tau^2
-------------------
FE    fixed (common) effect, tau^2 = 0
DL    DerSimonian-Laird method of moments
HE    Hedges (unweighted method of moments)
SJ    Sidik-Jonkman, starting from var(yi) (k-1)/k
PM    Paule-Mandel: root of the generalised Q = k-1, found with R's ``uniroot``
      (Brent's zeroin, ported exactly) on [0, max(100, 10 mad(yi)^2)]
ML    maximum likelihood, Fisher scoring from the HE estimate
REML  restricted maximum likelihood, Fisher scoring from the HE estimate

Every estimate is truncated at 0. ML/REML use metafor's threshold (1e-5 on the
change in tau^2), step halving to stay >= 0, at most 100 iterations, and the
check that tau^2 = 0 does not have a higher likelihood.

Special cases
-------------
* k = 1: tau^2 = 0, Q = 0 (p = 1), I^2 = 0, H^2 = 1; ``knha`` falls back to ``z``
  (as metafor does) and the fallback is listed in ``notes``.
* Non-convergence of ML/REML, or PM with tau^2 beyond the search interval,
  raises :class:`ConvergenceError` rather than returning a doubtful number.
* Sampling variances must be positive.

References
----------
DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials 1986;7:177-188.
Viechtbauer W. Bias and efficiency of meta-analytic variance estimators in the random-effects
model. J Educ Behav Stat 2005;30(3):261-293.
Paule RC, Mandel J. Consensus values and weighting factors. J Res Natl Bur Stand 1982;87:377-385.
Sidik K, Jonkman JN. Simple heterogeneity variance estimation for meta-analysis. J R Stat Soc C
2005;54(2):367-384.
Hartung J, Knapp G. A refined method for the meta-analysis of controlled clinical trials with
binary outcome. Stat Med 2001;20:3875-3889.
Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med
2002;21:1539-1558.
Riley RD, Higgins JPT, Deeks JJ. Interpretation of random effects meta-analyses. BMJ
2011;342:d549 (prediction interval).
Brent RP. Algorithms for Minimization without Derivatives. Prentice-Hall, 1973 (zeroin).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from withdrawal.errors import InputError, WithdrawalError
from withdrawal.evidence.effects import (
    RATIO_MEASURES,
    EffectSizes,
    FloatArray,
    Measure,
    Numbers,
    effect_sizes_given,
)
from withdrawal.knowledge.evidence import Method as Method
from withdrawal.knowledge.evidence import Test as Test

METHODS: tuple[Method, ...] = ("FE", "DL", "REML", "PM", "ML", "HE", "SJ")
TESTS: tuple[Test, ...] = ("z", "knha")

# metafor's rma.uni control defaults
THRESHOLD = 1e-5
MAXITER = 100
UNIROOT_TOL = float(np.finfo(float).eps) ** 0.25
TAU2_MAX_DEFAULT = 100.0
DBL_EPS = float(np.finfo(float).eps)


class ConvergenceError(WithdrawalError):
    """An iterative tau^2 estimator did not converge; try another method."""


@dataclass(frozen=True)
class MetaResult:
    """Result of one meta-analysis, on the analysis scale (log for RR and OR).

    ``pi_low``/``pi_high`` are None for the fixed-effect model (as metafor's
    ``predict`` gives no prediction interval there). ``weights`` are percent.
    """

    measure: Measure
    method: Method
    test: Test
    level: float
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    statistic: float
    p: float
    df: int | None
    tau2: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_p: float
    pi_low: float | None
    pi_high: float | None
    weights: tuple[float, ...]
    yi: tuple[float, ...]
    vi: tuple[float, ...]
    labels: tuple[str, ...]
    iterations: int
    notes: tuple[str, ...] = ()
    tau2_ci_low: float | None = None
    tau2_ci_high: float | None = None
    i2_ci_low: float | None = None
    i2_ci_high: float | None = None

    @property
    def is_ratio(self) -> bool:
        """True when the analysis scale is log (RR, OR)."""
        return self.measure in RATIO_MEASURES

    def back(self, value: float | None) -> float | None:
        """Back-transform a value from the analysis scale (exp for RR/OR)."""
        if value is None:
            return None
        return math.exp(value) if self.is_ratio else value

    def summary_fields(self) -> dict[str, float | None]:
        """The metafor-style fields on the analysis scale."""
        return {
            "estimate": self.estimate, "se": self.se, "ci_low": self.ci_low,
            "ci_high": self.ci_high, "statistic": self.statistic, "p": self.p,
            "tau2": self.tau2, "i2": self.i2, "h2": self.h2, "q": self.q, "q_p": self.q_p,
            "pi_low": self.pi_low, "pi_high": self.pi_high,
            "tau2_ci_low": self.tau2_ci_low, "tau2_ci_high": self.tau2_ci_high,
            "i2_ci_low": self.i2_ci_low, "i2_ci_high": self.i2_ci_high,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: fields, back-transformed values and per-study data."""
        out: dict[str, Any] = {
            "measure": self.measure, "method": self.method, "test": self.test,
            "level": self.level, "k": self.k, "df": self.df, "q_df": self.q_df,
        }
        out.update(self.summary_fields())
        out["back_transformed"] = {
            "scale": "ratio" if self.is_ratio else "identity",
            "estimate": self.back(self.estimate), "ci_low": self.back(self.ci_low),
            "ci_high": self.back(self.ci_high), "pi_low": self.back(self.pi_low),
            "pi_high": self.back(self.pi_high),
        }
        out["studies"] = [
            {"study": lab, "yi": y, "vi": v, "weight_pct": w}
            for lab, y, v, w in zip(self.labels, self.yi, self.vi, self.weights, strict=True)
        ]
        out["iterations"] = self.iterations
        out["notes"] = list(self.notes)
        return out


# --------------------------------------------------------------------------- helpers


def _rss(y: FloatArray, w: FloatArray) -> float:
    """Weighted residual sum of squares about the weighted mean (Y'PY)."""
    mu = float(np.sum(w * y) / np.sum(w))
    return float(np.sum(w * (y - mu) ** 2))


def _p_matrix(w: FloatArray) -> FloatArray:
    """P = W - W X (X'WX)^-1 X'W for an intercept-only model."""
    return np.asarray(np.diag(w) - np.outer(w, w) / np.sum(w), dtype=np.float64)


def _r_mad(y: FloatArray) -> float:
    """R's ``mad()``: 1.4826 * median(|y - median(y)|)."""
    return float(1.4826 * np.median(np.abs(y - np.median(y))))


def zeroin(
    f: Callable[[float], float], lower: float, upper: float, f_lower: float, f_upper: float,
    tol: float = UNIROOT_TOL, maxiter: int = MAXITER,
) -> tuple[float, bool]:
    """Brent's root finder exactly as R's ``R_zeroin2`` (used by ``uniroot``).

    Returns the root and whether it converged within ``maxiter`` iterations.
    """
    a, b, fa, fb = lower, upper, f_lower, f_upper
    c, fc = a, fa
    if fa == 0.0:
        return a, True
    if fb == 0.0:
        return b, True
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * DBL_EPS * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b, True
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b, False


# --------------------------------------------------------------------------- estimators


def _tau2_he(y: FloatArray, v: FloatArray) -> float:
    k = y.size
    return float((np.sum((y - y.mean()) ** 2) - np.sum(v) * (k - 1) / k) / (k - 1))


def _tau2_dl(y: FloatArray, v: FloatArray) -> float:
    w = 1 / v
    tr_p = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    return (_rss(y, w) - (y.size - 1)) / tr_p


def _tau2_sj(y: FloatArray, v: FloatArray) -> float:
    k = y.size
    tau2_0 = float(np.var(y, ddof=1) * (k - 1) / k)
    return tau2_0 * _rss(y, 1 / (v + tau2_0)) / (k - 1)


def _tau2_pm(y: FloatArray, v: FloatArray) -> tuple[float, int]:
    k = y.size

    def gen_q(tau2: float) -> float:
        return _rss(y, 1 / (v + tau2)) - (k - 1)

    f0 = gen_q(0.0)
    if f0 < 0:
        return 0.0, 0
    upper = max(TAU2_MAX_DEFAULT, 10 * _r_mad(y) ** 2)
    f_up = gen_q(upper)
    if f_up > 0:
        raise ConvergenceError(
            f"PM: tau^2 lies above the search interval [0, {upper:g}]; use another method"
        )
    root, _ = zeroin(gen_q, 0.0, upper, f0, f_up)
    return root, 0


def _loglik(y: FloatArray, v: FloatArray, tau2: float, reml: bool) -> float:
    w = 1 / (v + tau2)
    k = y.size
    rss = _rss(y, w)
    if reml:
        return float(-0.5 * (k - 1) * math.log(2 * math.pi) - 0.5 * np.sum(np.log(v + tau2))
                     - 0.5 * math.log(np.sum(w)) - 0.5 * rss)
    return float(-0.5 * k * math.log(2 * math.pi) - 0.5 * np.sum(np.log(v + tau2)) - 0.5 * rss)


def _tau2_fisher(y: FloatArray, v: FloatArray, reml: bool) -> tuple[float, int]:
    """ML/REML by Fisher scoring, metafor's algorithm (start at max(0, HE))."""
    ymc = y - y.mean()
    tau2 = max(0.0, _tau2_he(y, v))
    change = THRESHOLD + 1
    it = 0
    while change > THRESHOLD:
        it += 1
        old = tau2
        w = 1 / (v + tau2)
        p = _p_matrix(w)
        pp = p @ p
        if reml:
            adj = float((ymc @ pp @ ymc - np.trace(p)) / np.trace(pp))
        else:
            adj = float((ymc @ pp @ ymc - np.sum(w)) / np.sum(w**2))
        while tau2 + adj < 0:
            adj /= 2
        tau2 = tau2 + adj
        change = abs(old - tau2)
        if it > MAXITER:
            name = "REML" if reml else "ML"
            raise ConvergenceError(
                f"{name}: Fisher scoring did not converge in {MAXITER} iterations; "
                "use another method (e.g. PM or DL)"
            )
    ll0 = _loglik(y, v, 0.0, reml)
    ll = _loglik(y, v, tau2, reml)
    if ll0 - ll > UNIROOT_TOL and tau2 > THRESHOLD:
        tau2 = 0.0  # metafor: stuck at a local maximum; tau^2 = 0 fits better
    return tau2, it


def estimate_tau2(yi: FloatArray, vi: FloatArray, method: Method) -> tuple[float, int]:
    """Between-study variance tau^2 (truncated at 0) and iterations used."""
    if yi.size == 1 or method == "FE":
        return 0.0, 0
    its = 0
    if method == "DL":
        tau2 = _tau2_dl(yi, vi)
    elif method == "HE":
        tau2 = _tau2_he(yi, vi)
    elif method == "SJ":
        tau2 = _tau2_sj(yi, vi)
    elif method == "PM":
        tau2, its = _tau2_pm(yi, vi)
    else:
        tau2, its = _tau2_fisher(yi, vi, reml=method == "REML")
    return max(0.0, tau2), its


# --------------------------------------------------------------------------- Q-profile


def generalised_q(y: FloatArray, v: FloatArray, tau2: float,
                  x: FloatArray | None = None) -> float:
    """Generalised Q, ``Y'PY`` with weights 1/(vi + tau^2) (residuals of the model ``x``)."""
    w = 1 / (v + tau2)
    if x is None:
        return _rss(y, w)
    xw = x * w[:, None]
    beta = np.linalg.solve(x.T @ xw, xw.T @ y)
    return float(np.sum(w * (y - x @ beta) ** 2))


def typical_variance(v: FloatArray, x: FloatArray | None = None) -> float:
    """metafor's typical within-study variance ``(k-p) / tr(P)`` with weights 1/vi."""
    w = 1 / v
    if x is None:
        return (v.size - 1) / float(np.sum(w) - np.sum(w**2) / np.sum(w))
    xw = x * w[:, None]
    hat = float(np.trace(np.linalg.solve(x.T @ xw, xw.T @ xw)))
    return float((v.size - x.shape[1]) / (np.sum(w) - hat))


def qprofile_tau2_ci(
    y: FloatArray, v: FloatArray, tau2: float, level: float = 95.0,
    x: FloatArray | None = None,
) -> tuple[float | None, float | None]:
    """Q-profile confidence interval for tau^2, as metafor's ``confint(fit)``.

    The bounds solve generalised Q(tau^2) = the upper and lower alpha/2 chi-square quantiles
    with k-p df (Viechtbauer 2007), by R's ``uniroot`` on [0, max(100, 10 tau^2)]; a bound
    is 0 when Q(0) is already below its quantile, and None when it lies beyond the interval.
    Viechtbauer W. Confidence intervals for the amount of heterogeneity in meta-analysis.
    Stat Med 2007;26:37-52.
    """
    p = 1 if x is None else x.shape[1]
    df = y.size - p
    if df < 1:
        return None, None
    alpha = 1 - level / 100
    crit_u = float(stats.chi2.isf(alpha / 2, df))
    crit_l = float(stats.chi2.ppf(alpha / 2, df))
    upper = max(TAU2_MAX_DEFAULT, 10 * tau2)
    q_min = generalised_q(y, v, 0.0, x)
    q_max = generalised_q(y, v, upper, x)

    def solve(crit: float) -> float:
        root, _ = zeroin(lambda t: generalised_q(y, v, t, x) - crit, 0.0, upper,
                         q_min - crit, q_max - crit, maxiter=1000)
        return root

    if q_min < crit_l:
        return 0.0, 0.0
    if q_min > crit_u:
        low: float | None = solve(crit_u) if q_max < crit_u else None
    else:
        low = 0.0
    high: float | None = solve(crit_l) if q_max < crit_l else None
    return low, high


def _i2_bound(bound: float | None, vt: float) -> float | None:
    return None if bound is None else 100 * bound / (bound + vt)


# --------------------------------------------------------------------------- main entry


def _check_options(method: str, test: str, level: float) -> None:
    if method not in METHODS:
        raise InputError("method", "unknown estimator", value=method, allowed=METHODS)
    if test not in TESTS:
        raise InputError("test", "unknown test", value=test, allowed=TESTS)
    if not 0 < level < 100:
        raise InputError("level", "confidence level must be between 0 and 100 (percent)",
                         value=level)


def pool(
    effects: EffectSizes, method: Method = "REML", test: Test = "z", level: float = 95.0
) -> MetaResult:
    """Pool per-study effect sizes; like ``rma(yi, vi, method=, test=)`` and ``predict()``.

    Parameters
    ----------
    effects : per-study effect sizes and variances (see :mod:`withdrawal.evidence.effects`).
    method : tau^2 estimator, one of FE, DL, REML, PM, ML, HE, SJ.
    test : ``z`` (normal) or ``knha`` (Hartung-Knapp-Sidik-Jonkman: variance scaled by
        the weighted residual mean square, t with k-1 df, prediction interval with t too).
    level : confidence level in percent.

    Examples
    --------
    >>> from withdrawal.evidence.effects import effect_sizes_given
    >>> res = pool(effect_sizes_given([0.1, 0.3], [0.01, 0.02]), method="FE")
    >>> round(res.estimate, 4)
    0.1667
    """
    _check_options(method, test, level)
    y, v = effects.yi, effects.vi
    if np.any(v <= 0):
        raise InputError("vi", "sampling variances must be positive")
    k = int(y.size)
    notes: list[str] = []
    if k == 1 and test == "knha":
        test = "z"
        notes.append("k = 1: the Knapp-Hartung adjustment needs k >= 2; used the z test")
    if method == "FE" and test == "knha":
        notes.append("the Knapp-Hartung method is meant for random-effects models")
    tau2, its = estimate_tau2(y, v, method)
    w = 1 / (v + tau2)
    sw = float(np.sum(w))
    est = float(np.sum(w * y) / sw)
    var_b = 1 / sw
    alpha = 1 - level / 100
    df: int | None = None
    if test == "knha":
        rss = float(np.sum(w * (y - est) ** 2))
        s2w = 0.0 if rss <= DBL_EPS else rss / (k - 1)
        var_b *= s2w
        df = k - 1
        crit = float(stats.t.isf(alpha / 2, df))
    else:
        crit = float(stats.norm.isf(alpha / 2))
    se = math.sqrt(var_b)
    stat = est / se if se > 0 else math.copysign(math.inf, est) if est else math.nan
    if df is not None:
        pval = float(2 * stats.t.sf(abs(stat), df))
    else:
        pval = float(2 * stats.norm.sf(abs(stat)))
    q, q_p, i2, h2 = _heterogeneity(y, v, tau2, method)
    tau2_ci: tuple[float | None, float | None] = (None, None)
    i2_ci: tuple[float | None, float | None] = (None, None)
    if method == "FE":
        pi_low: float | None = None
        pi_high: float | None = None
    else:
        half = crit * math.sqrt(var_b + tau2)
        pi_low, pi_high = est - half, est + half
        if k > 1:
            tau2_ci = qprofile_tau2_ci(y, v, tau2, level)
            vt = typical_variance(v)
            i2_ci = (_i2_bound(tau2_ci[0], vt), _i2_bound(tau2_ci[1], vt))
    return MetaResult(
        measure=effects.measure, method=method, test=test, level=level, k=k,
        estimate=est, se=se, ci_low=est - crit * se, ci_high=est + crit * se,
        statistic=stat, p=pval, df=df, tau2=tau2, i2=i2, h2=h2, q=q, q_df=k - 1, q_p=q_p,
        pi_low=pi_low, pi_high=pi_high, weights=tuple(float(x) for x in 100 * w / sw),
        yi=tuple(float(x) for x in y), vi=tuple(float(x) for x in v),
        labels=effects.labels, iterations=its, notes=tuple(notes),
        tau2_ci_low=tau2_ci[0], tau2_ci_high=tau2_ci[1],
        i2_ci_low=i2_ci[0], i2_ci_high=i2_ci[1],
    )


def _heterogeneity(
    y: FloatArray, v: FloatArray, tau2: float, method: Method
) -> tuple[float, float, float, float]:
    """Cochran's Q and its p, I^2 (percent) and H^2 as metafor reports them."""
    k = y.size
    if k == 1:
        return 0.0, 1.0, 0.0, 1.0
    w = 1 / v
    q = max(0.0, _rss(y, w))
    q_p = float(stats.chi2.sf(q, k - 1))
    if method == "FE":
        i2 = max(0.0, 100 * (q - (k - 1)) / q) if q > 0 else 0.0
        h2 = q / (k - 1)
    else:
        vt = (k - 1) / float(np.sum(w) - np.sum(w**2) / np.sum(w))
        i2 = 100 * tau2 / (vt + tau2)
        h2 = tau2 / vt + 1
    return q, q_p, i2, h2


def rma(
    yi: Numbers, vi: Numbers, method: Method = "REML", test: Test = "z", level: float = 95.0,
    labels: Sequence[str] | None = None,
) -> MetaResult:
    """Pool effect sizes given directly (measure GEN); see :func:`pool`."""
    return pool(effect_sizes_given(yi, vi, labels), method=method, test=test, level=level)
