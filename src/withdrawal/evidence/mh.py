"""Mantel-Haenszel and Peto pooling of 2x2 tables, following ``metafor::rma.mh``/``rma.peto``.

Both pool the counts directly rather than per-study effect sizes, which is why they suit
sparse data: a study with a zero cell needs no continuity correction (Cochrane Handbook,
section 10.4.4). Mantel-Haenszel: RR and OR (Greenland and Robins 1985; variance of the log OR
by Robins, Breslow and Greenland 1986) and RD (variance of Sato, Greenland and Robins 1989).
Peto: the one-step odds ratio ``sum(O - E) / sum(V)`` (Yusuf et al. 1985).

Heterogeneity is Cochran's Q of the per-study effect sizes about the pooled estimate, as metafor
computes it: Mantel-Haenszel uses escalc's yi/vi (1/2 added to every cell of a table with a
zero cell), Peto its own per-study ``(O - E)/V`` with variance ``1/V``. I^2 = (Q - df)/Q.

References
----------
Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719-748.
Greenland S, Robins JM. Biometrics 1985;41:55-68.
Robins J, Breslow N, Greenland S. Biometrics 1986;42:311-323.
Sato T, Greenland S, Robins JM. Biometrics 1989;45:1323-1324.
Yusuf S, Peto R, Lewis J, Collins R, Sleight P. Prog Cardiovasc Dis 1985;27:335-371.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from withdrawal.errors import InputError
from withdrawal.evidence.effects import FloatArray, Measure, Numbers, escalc_binary

CountMethod = Literal["MH", "PETO"]
MH_MEASURES: tuple[Measure, ...] = ("RR", "OR", "RD")
PETO_MEASURES: tuple[Measure, ...] = ("OR",)


@dataclass(frozen=True)
class CountPoolResult:
    """A Mantel-Haenszel or Peto pooled estimate (log scale for RR and OR)."""

    measure: Measure
    method: CountMethod
    level: float
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    statistic: float
    p: float
    q: float
    q_df: int
    q_p: float
    i2: float
    labels: tuple[str, ...]

    @property
    def is_ratio(self) -> bool:
        """True when the analysis scale is log (RR, OR)."""
        return self.measure in ("RR", "OR")

    def back(self, value: float) -> float:
        """Back-transform from the analysis scale."""
        return math.exp(value) if self.is_ratio else value

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "measure": self.measure, "method": self.method, "test": "z", "level": self.level,
            "k": self.k, "estimate": self.estimate, "se": self.se, "ci_low": self.ci_low,
            "ci_high": self.ci_high, "statistic": self.statistic, "p": self.p, "q": self.q,
            "q_df": self.q_df, "q_p": self.q_p, "i2": self.i2,
            "tau2": None, "pi_low": None, "pi_high": None,
            "back_transformed": {
                "scale": "ratio" if self.is_ratio else "identity",
                "estimate": self.back(self.estimate), "ci_low": self.back(self.ci_low),
                "ci_high": self.back(self.ci_high),
            },
        }


def _tables(
    ai: Numbers, n1: Numbers, ci: Numbers, n2: Numbers
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    a = np.asarray(ai, dtype=np.float64)
    c = np.asarray(ci, dtype=np.float64)
    n1i = np.asarray(n1, dtype=np.float64)
    n2i = np.asarray(n2, dtype=np.float64)
    return a, n1i - a, c, n2i - c, n1i, n2i


def _q(yi: FloatArray, vi: FloatArray, estimate: float) -> tuple[float, float, float]:
    k = yi.size
    if k < 2:
        return 0.0, 1.0, 0.0
    q = float(np.sum((yi - estimate) ** 2 / vi))
    i2 = max(0.0, 100 * (q - (k - 1)) / q) if q > 0 else 0.0
    return q, float(stats.chi2.sf(q, k - 1)), i2


def _result(measure: Measure, method: CountMethod, est: float, se: float, level: float,
            q: tuple[float, float, float], k: int, labels: tuple[str, ...],
            q_df: int | None = None) -> CountPoolResult:
    crit = float(stats.norm.isf((1 - level / 100) / 2))
    z = est / se
    return CountPoolResult(
        measure=measure, method=method, level=level, k=k, estimate=est, se=se,
        ci_low=est - crit * se, ci_high=est + crit * se, statistic=z,
        p=float(2 * stats.norm.sf(abs(z))), q=q[0], q_df=max(k - 1, 0) if q_df is None else q_df,
        q_p=q[1], i2=q[2],
        labels=labels,
    )


def mantel_haenszel(
    measure: Measure, events_treatment: Numbers, total_treatment: Numbers,
    events_control: Numbers, total_control: Numbers, labels: Sequence[str] | None = None,
    level: float = 95.0,
) -> CountPoolResult:
    """Mantel-Haenszel pooled RR, OR or RD, like ``rma.mh(measure, ai, n1i, ci, n2i)``."""
    if measure not in MH_MEASURES:
        raise InputError("measure", "Mantel-Haenszel pools RR, OR or RD", value=measure,
                         allowed=MH_MEASURES)
    es = escalc_binary(measure, events_treatment, total_treatment, events_control,
                       total_control, labels)
    a, b, c, d, n1, n2 = _tables(events_treatment, total_treatment, events_control,
                                 total_control)
    n = n1 + n2
    if measure == "OR":
        r, s = a * d / n, b * c / n
        sr, ss = float(np.sum(r)), float(np.sum(s))
        if sr == 0 or ss == 0:
            raise InputError("events_treatment", "the Mantel-Haenszel odds ratio is 0 or "
                             "infinite: no events (or no non-events) in one group overall")
        est = math.log(sr / ss)
        p_, q_ = (a + d) / n, (b + c) / n
        var = (float(np.sum(p_ * r)) / (2 * sr**2)
               + float(np.sum(p_ * s + q_ * r)) / (2 * sr * ss)
               + float(np.sum(q_ * s)) / (2 * ss**2))
    elif measure == "RR":
        r, s = a * n2 / n, c * n1 / n
        sr, ss = float(np.sum(r)), float(np.sum(s))
        if sr == 0 or ss == 0:
            raise InputError("events_treatment", "the Mantel-Haenszel risk ratio is 0 or "
                             "infinite: no events in one group overall")
        est = math.log(sr / ss)
        var = float(np.sum((n1 * n2 * (a + c) - a * c * n) / n**2)) / (sr * ss)
    else:
        w = n1 * n2 / n
        sw = float(np.sum(w))
        est = float(np.sum((a * n2 - c * n1) / n)) / sw
        pp = float(np.sum((c * n1**2 - a * n2**2 + n1 * n2 * (n2 - n1) / 2) / n**2))
        qq = float(np.sum((a * (n2 - c) + c * (n1 - a)) / (2 * n)))
        var = (est * pp + qq) / sw**2
    if not var > 0:
        raise InputError("events_treatment", "the Mantel-Haenszel variance is 0: the tables "
                         "carry no information")
    # metafor's drop00: a study with no events (or only events) in both groups says nothing
    # about heterogeneity and is left out of Q (it still counts in the pooled estimate)
    informative = ~(((a + c) == 0) | ((b + d) == 0))
    q = _q(es.yi[informative], es.vi[informative], est)
    return _result(measure, "MH", est, math.sqrt(var), level, q, es.k, es.labels,
                   q_df=max(int(np.sum(informative)) - 1, 0))


def peto(
    events_treatment: Numbers, total_treatment: Numbers, events_control: Numbers,
    total_control: Numbers, labels: Sequence[str] | None = None, level: float = 95.0,
) -> CountPoolResult:
    """Peto's one-step odds ratio, like ``rma.peto(ai, n1i, ci, n2i)``."""
    es = escalc_binary("OR", events_treatment, total_treatment, events_control,
                       total_control, labels)  # validates the counts
    a, b, c, d, n1, n2 = _tables(events_treatment, total_treatment, events_control,
                                 total_control)
    n = n1 + n2
    expected = (a + c) * n1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (a + c) * (b + d) * n1 * n2 / (n**2 * (n - 1))
    keep = v > 0  # a table with no events (or no non-events) carries no information
    if not np.any(keep):
        raise InputError("events_treatment", "no study has both events and non-events: "
                         "Peto's odds ratio is undefined")
    o_e, v = (a - expected)[keep], v[keep]
    sv = float(np.sum(v))
    est = float(np.sum(o_e)) / sv
    yi, vi = o_e / v, 1 / v
    return _result("OR", "PETO", est, math.sqrt(1 / sv), level, _q(yi, vi, est),
                   int(np.sum(keep)), tuple(lab for lab, kp in zip(es.labels, keep,
                                                                   strict=True) if kp))
