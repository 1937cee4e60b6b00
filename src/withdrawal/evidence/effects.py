"""Effect sizes per study, computed the way R's metafor ``escalc`` does by default.

Measures
--------
RR   log risk ratio from 2x2 counts
OR   log odds ratio from 2x2 counts
RD   risk difference from 2x2 counts
MD   raw mean difference from means, SDs and group sizes
SMD  standardised mean difference, bias-corrected (Hedges' g)
GEN  effect sizes and sampling variances given directly

For RR, OR and RD, 1/2 is added to every cell of a study's table that has a
zero cell (metafor's ``add=1/2, to="only0"``); both yi and vi use the adjusted
counts (``addyi=TRUE, addvi=TRUE``). Variances are metafor's defaults
(``vtype="LS"``, large-sample).

References
----------
Viechtbauer W. Conducting meta-analyses in R with the metafor package.
J Stat Softw 2010;36(3):1-48. doi:10.18637/jss.v036.i03
Hedges LV. Distribution theory for Glass's estimator of effect size and related
estimators. J Educ Stat 1981;6(2):107-128.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaln

from withdrawal.errors import InputError
from withdrawal.knowledge.evidence import Measure as Measure

MEASURES: tuple[Measure, ...] = ("RR", "OR", "RD", "MD", "SMD", "GEN")
BINARY_MEASURES: tuple[Measure, ...] = ("RR", "OR", "RD")
CONTINUOUS_MEASURES: tuple[Measure, ...] = ("MD", "SMD")
RATIO_MEASURES: tuple[Measure, ...] = ("RR", "OR")

FloatArray = NDArray[np.float64]
Numbers = Sequence[float] | FloatArray

ZERO_CELL_ADD = 0.5
"""Added to every cell of a 2x2 table with a zero cell (metafor ``add``)."""


@dataclass(frozen=True, eq=False)
class EffectSizes:
    """Per-study effect sizes on the analysis scale (log for RR and OR).

    Attributes
    ----------
    measure : the effect measure.
    yi, vi : effect sizes and their sampling variances.
    labels : one study label per effect size.
    adjusted : True for studies whose 2x2 table had 1/2 added to each cell.
    """

    measure: Measure
    yi: FloatArray
    vi: FloatArray
    labels: tuple[str, ...]
    adjusted: tuple[bool, ...] = field(default=())

    @property
    def k(self) -> int:
        """Number of studies."""
        return int(self.yi.size)


def _array(values: Numbers, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InputError(name, "must be a one-dimensional sequence of numbers")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise InputError(name, f"study {bad + 1} is not a finite number", value=arr[bad])
    return arr


def _labels(labels: Sequence[str] | None, k: int) -> tuple[str, ...]:
    if labels is None:
        return tuple(f"Study {i + 1}" for i in range(k))
    if len(labels) != k:
        raise InputError("study", f"{len(labels)} labels for {k} studies", value=len(labels))
    return tuple(str(lab) for lab in labels)


def _same_length(arrays: dict[str, FloatArray]) -> int:
    sizes = {name: a.size for name, a in arrays.items()}
    k = next(iter(sizes.values()))
    for name, size in sizes.items():
        if size != k:
            raise InputError(name, f"has {size} values, expected {k}", value=size)
    if k == 0:
        raise InputError(next(iter(sizes)), "no studies given")
    return k


def _check_counts(events: FloatArray, totals: FloatArray, ev_name: str, n_name: str) -> None:
    for i, (e, n) in enumerate(zip(events, totals, strict=True)):
        if n <= 0:
            raise InputError(n_name, f"study {i + 1}: group size must be positive", value=n)
        if e < 0 or e > n:
            raise InputError(ev_name, f"study {i + 1}: events must be between 0 and {n:g}", value=e)


def escalc_binary(
    measure: Measure,
    events_treatment: Numbers,
    total_treatment: Numbers,
    events_control: Numbers,
    total_control: Numbers,
    labels: Sequence[str] | None = None,
) -> EffectSizes:
    """Effect sizes from 2x2 counts (treatment vs control), like ``escalc``.

    Parameters
    ----------
    measure : "RR", "OR" or "RD".
    events_treatment, total_treatment, events_control, total_control : counts per study.
    labels : study labels.

    Examples
    --------
    >>> es = escalc_binary("RR", [4], [123], [11], [139])
    >>> round(float(es.yi[0]), 6), round(float(es.vi[0]), 6)
    (-0.889311, 0.325585)
    """
    if measure not in BINARY_MEASURES:
        raise InputError("measure", "not a 2x2-table measure", value=measure,
                         allowed=BINARY_MEASURES)
    ai0 = _array(events_treatment, "events_treatment")
    n1 = _array(total_treatment, "total_treatment")
    ci0 = _array(events_control, "events_control")
    n2 = _array(total_control, "total_control")
    k = _same_length({"events_treatment": ai0, "total_treatment": n1,
                      "events_control": ci0, "total_control": n2})
    _check_counts(ai0, n1, "events_treatment", "total_treatment")
    _check_counts(ci0, n2, "events_control", "total_control")
    ai, bi, ci, di = ai0, n1 - ai0, ci0, n2 - ci0
    zero = (ai == 0) | (bi == 0) | (ci == 0) | (di == 0)
    add = np.where(zero, ZERO_CELL_ADD, 0.0)
    ai, bi, ci, di = ai + add, bi + add, ci + add, di + add
    n1i, n2i = ai + bi, ci + di
    p1, p2 = ai / n1i, ci / n2i
    if measure == "RR":
        yi = np.log(p1) - np.log(p2)
        vi = 1 / ai - 1 / n1i + 1 / ci - 1 / n2i
    elif measure == "OR":
        yi = np.log(ai * di / (bi * ci))
        vi = 1 / ai + 1 / bi + 1 / ci + 1 / di
    else:
        yi = p1 - p2
        vi = p1 * (1 - p1) / n1i + p2 * (1 - p2) / n2i
    return EffectSizes(measure, yi, vi, _labels(labels, k), tuple(bool(z) for z in zero))


def hedges_correction(df: FloatArray) -> FloatArray:
    """Exact small-sample correction factor c(m) of Hedges (1981), as metafor's ``.cmicalc``."""
    return np.asarray(np.exp(gammaln(df / 2) - 0.5 * np.log(df / 2) - gammaln((df - 1) / 2)),
                      dtype=np.float64)


def escalc_continuous(
    measure: Measure,
    mean_treatment: Numbers,
    sd_treatment: Numbers,
    total_treatment: Numbers,
    mean_control: Numbers,
    sd_control: Numbers,
    total_control: Numbers,
    labels: Sequence[str] | None = None,
) -> EffectSizes:
    """Mean difference (MD) or Hedges' g (SMD) per study, like ``escalc``.

    MD: ``yi = m1 - m2``, ``vi = sd1^2/n1 + sd2^2/n2``.
    SMD: ``yi = c(n1+n2-2) (m1-m2) / sd_pooled`` with the exact correction c(m),
    ``vi = 1/n1 + 1/n2 + yi^2 / (2 (n1+n2))`` (metafor ``vtype="LS"``).
    """
    if measure not in CONTINUOUS_MEASURES:
        raise InputError("measure", "not a measure for means", value=measure,
                         allowed=CONTINUOUS_MEASURES)
    m1 = _array(mean_treatment, "mean_treatment")
    s1 = _array(sd_treatment, "sd_treatment")
    n1 = _array(total_treatment, "total_treatment")
    m2 = _array(mean_control, "mean_control")
    s2 = _array(sd_control, "sd_control")
    n2 = _array(total_control, "total_control")
    k = _same_length({"mean_treatment": m1, "sd_treatment": s1, "total_treatment": n1,
                      "mean_control": m2, "sd_control": s2, "total_control": n2})
    for name, arr in (("sd_treatment", s1), ("sd_control", s2)):
        if np.any(arr < 0):
            i = int(np.flatnonzero(arr < 0)[0])
            raise InputError(name, f"study {i + 1}: SD must not be negative", value=arr[i])
    minimum = 2.0 if measure == "SMD" else 1.0
    for name, arr in (("total_treatment", n1), ("total_control", n2)):
        if np.any(arr < minimum):
            i = int(np.flatnonzero(arr < minimum)[0])
            raise InputError(name, f"study {i + 1}: group size must be at least {minimum:g}",
                             value=arr[i])
    if measure == "MD":
        yi = m1 - m2
        vi = s1**2 / n1 + s2**2 / n2
    else:
        df = n1 + n2 - 2
        sdp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / df)
        if np.any(sdp == 0):
            i = int(np.flatnonzero(sdp == 0)[0])
            raise InputError("sd_treatment", f"study {i + 1}: both SDs are 0; SMD undefined",
                             value=0)
        yi = hedges_correction(df) * (m1 - m2) / sdp
        vi = 1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2))
    if np.any(vi <= 0):
        i = int(np.flatnonzero(vi <= 0)[0])
        raise InputError("sd_treatment", f"study {i + 1}: sampling variance is 0", value=0)
    return EffectSizes(measure, yi, vi, _labels(labels, k))


def effect_sizes_given(
    yi: Numbers, vi: Numbers, labels: Sequence[str] | None = None
) -> EffectSizes:
    """Effect sizes given directly (measure GEN); variances must be positive."""
    y = _array(yi, "yi")
    v = _array(vi, "vi")
    k = _same_length({"yi": y, "vi": v})
    if np.any(v <= 0):
        i = int(np.flatnonzero(v <= 0)[0])
        raise InputError("vi", f"study {i + 1}: sampling variance must be positive", value=v[i])
    return EffectSizes("GEN", y, v, _labels(labels, k))
