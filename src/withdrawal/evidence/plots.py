"""Forest and funnel plots (matplotlib, Agg; PNG or SVG chosen by the file suffix).

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot
state), so plotting is safe in tests and servers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from withdrawal.errors import InputError  # noqa: E402
from withdrawal.evidence.bias import Influence, TrimFill  # noqa: E402
from withdrawal.evidence.meta import MetaResult  # noqa: E402

FORMATS = (".png", ".svg")
MEASURE_NAMES = {
    "RR": "Risk ratio", "OR": "Odds ratio", "RD": "Risk difference",
    "MD": "Mean difference", "SMD": "Standardised mean difference (Hedges' g)",
    "GEN": "Effect size",
}


@dataclass(frozen=True)
class ForestGroup:
    """One block of a forest plot: a heading and the analysis to draw under it."""

    heading: str
    result: MetaResult
    pooled_label: str | None = None


def _check_path(path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise InputError("plot", "file must end in .png or .svg", value=str(path),
                         allowed=FORMATS)


def _fmt(value: float, ratio: bool) -> str:
    return f"{math.exp(value):.2f}" if ratio else f"{value:.2f}"


def _ci_text(est: float, lo: float, hi: float, ratio: bool) -> str:
    return f"{_fmt(est, ratio)} [{_fmt(lo, ratio)}, {_fmt(hi, ratio)}]"


def _method_text(res: MetaResult) -> tuple[str, str]:
    """Short model name and a heterogeneity line for the pooled row."""
    if res.method == "FE":
        return "Pooled, common effect", f"Q = {res.q:.2f}, p = {res.q_p:.2g}"
    test = ", Hartung-Knapp" if res.test == "knha" else ""
    return (f"Pooled, random effects ({res.method}{test})",
            f"I\u00b2 = {res.i2:.0f}%, \u03c4\u00b2 = {res.tau2:.3g}, Q p = {res.q_p:.2g}")


def forest_plot(
    groups: Sequence[ForestGroup] | MetaResult,
    path: Path,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    favours: tuple[str, str] | None = None,
) -> Path:
    """Draw a forest plot of one or more analyses and save it to ``path``.

    Each study is a square (area proportional to its weight) with its CI; each
    pooled estimate is a diamond spanning its CI, with the prediction interval as
    a thin line when there is one. Ratio measures use a log axis labelled on the
    ratio scale. Columns give the weight and the estimate [CI].
    """
    path = Path(path)
    _check_path(path)
    if isinstance(groups, MetaResult):
        groups = [ForestGroup("", groups)]
    if not groups:
        raise InputError("groups", "nothing to plot")
    ratio = groups[0].result.is_ratio
    rows: list[tuple[str, str, float]] = []  # kind, text, y
    y = 0.0
    layout: list[tuple[ForestGroup, list[float], float]] = []
    for group in groups:
        if group.heading:
            rows.append(("heading", group.heading, y))
            y += 1
        study_ys = []
        for _ in group.result.labels:
            study_ys.append(y)
            y += 1
        pooled_y = y
        y += 1.6
        layout.append((group, study_ys, pooled_y))
    n_rows = y
    height = 0.34 * n_rows + 1.3
    fig = Figure(figsize=(11, height))
    ax = fig.add_axes((0.33, 0.65 / height, 0.36, 0.34 * n_rows / height))
    trans = ax.get_yaxis_transform()
    level = groups[0].result.level
    ax.text(-0.9, -1.2, "Study", transform=trans, fontweight="bold", va="center")
    ax.text(1.04, -1.2, "Weight", transform=trans, fontweight="bold", va="center")
    ax.text(1.30, -1.2, f"Estimate [{level:g}% CI]", transform=trans, fontweight="bold",
            va="center")
    xs: list[float] = []
    for kind, text, yy in rows:
        if kind == "heading":
            ax.text(-0.9, yy, text, transform=trans, fontweight="bold", va="center",
                    style="italic")
    for group, study_ys, pooled_y in layout:
        res = group.result
        wmax = max(res.weights)
        for lab, yi, vi, wt, yy in zip(res.labels, res.yi, res.vi, res.weights, study_ys,
                                       strict=True):
            half = 1.959963984540054 * math.sqrt(vi) if res.level == 95 else \
                _crit(res.level) * math.sqrt(vi)
            lo, hi = yi - half, yi + half
            xs.extend([lo, hi])
            tx = (lambda t: math.exp(t)) if ratio else (lambda t: t)
            ax.plot([tx(lo), tx(hi)], [yy, yy], color="black", lw=1.2)
            ax.plot([tx(yi)], [yy], marker="s", color="#1f4e79", linestyle="none",
                    markersize=4 + 8 * math.sqrt(wt / wmax))
            ax.text(-0.86, yy, lab, transform=trans, va="center")
            ax.text(1.04, yy, f"{wt:.1f}%", transform=trans, va="center")
            ax.text(1.30, yy, _ci_text(yi, lo, hi, ratio), transform=trans, va="center")
        tx = (lambda t: math.exp(t)) if ratio else (lambda t: t)
        if res.k > 1:
            diamond = Polygon(
                [(tx(res.ci_low), pooled_y), (tx(res.estimate), pooled_y - 0.35),
                 (tx(res.ci_high), pooled_y), (tx(res.estimate), pooled_y + 0.35)],
                closed=True, facecolor="#c0392b", edgecolor="black")
            ax.add_patch(diamond)
            xs.extend([res.ci_low, res.ci_high])
            label, het = _method_text(res)
            ax.text(-0.86, pooled_y, group.pooled_label or label, transform=trans, va="center",
                    fontweight="bold", fontsize=9)
            ax.text(-0.86, pooled_y + 0.6, het, transform=trans, va="center", fontsize=8)
            ax.text(1.04, pooled_y, "100%", transform=trans, va="center", fontweight="bold")
            ax.text(1.30, pooled_y, _ci_text(res.estimate, res.ci_low, res.ci_high, ratio),
                    transform=trans, va="center", fontweight="bold")
            if res.pi_low is not None and res.pi_high is not None and res.k >= 3:
                ax.plot([tx(res.pi_low), tx(res.pi_high)], [pooled_y + 0.55] * 2,
                        color="#c0392b", lw=1)
                ax.text(1.30, pooled_y + 0.6, "prediction interval "
                        + f"[{_fmt(res.pi_low, ratio)}, {_fmt(res.pi_high, ratio)}]",
                        transform=trans, va="center", fontsize=8, color="#c0392b")
                xs.extend([res.pi_low, res.pi_high])
        else:
            ax.text(-0.86, pooled_y, group.pooled_label or "Single study: nothing to pool",
                    transform=trans, va="center", style="italic", fontsize=8.5)
    _finish_axis(ax, xs, ratio, n_rows)
    measure = groups[0].result.measure
    ax.set_xlabel(xlabel or (MEASURE_NAMES[measure] + (" (log scale)" if ratio else "")))
    if favours:
        ax.text(0.02, 1.0, f"\u2190 {favours[0]}", transform=ax.transAxes, ha="left",
                va="bottom", fontsize=8.5)
        ax.text(0.98, 1.0, f"{favours[1]} \u2192", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=8.5)
    if title:
        fig.suptitle(title, fontweight="bold", x=0.02, ha="left")
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path)
    return path


def _save(fig: Figure, path: Path) -> None:
    """Save without a date and with fixed SVG ids, so a regenerated figure is byte-identical."""
    svg = path.suffix.lower() == ".svg"
    with matplotlib.rc_context({"svg.hashsalt": "withdrawal"}):
        fig.savefig(path, dpi=150, metadata={"Date": None} if svg else {"Software": None})


def _crit(level: float) -> float:
    from scipy import stats

    return float(stats.norm.isf((1 - level / 100) / 2))


def _finish_axis(ax: object, xs: list[float], ratio: bool, n_rows: float) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    lo, hi = min(xs + [0.0]), max(xs + [0.0])
    pad = 0.05 * (hi - lo or 1.0)
    ax.set_ylim(n_rows - 0.6, -1.8)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    if ratio:
        ax.set_xscale("log")
        ax.set_xlim(math.exp(lo - pad), math.exp(hi + pad))
        lo_r, hi_r = math.exp(lo - pad), math.exp(hi + pad)
        ticks = [t for t in (0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 4, 5, 10)
                 if lo_r <= t <= hi_r]
        if len(ticks) > 7:
            ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
                     if lo_r <= t <= hi_r]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _pos: f"{t:g}"))
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    else:
        ax.set_xlim(lo - pad, hi + pad)
        ax.axvline(0.0, color="grey", lw=0.8, ls="--")


def funnel_plot(result: MetaResult, path: Path, *, title: str | None = None) -> Path:
    """Funnel plot: effect size against its standard error (inverted), with the
    pooled estimate and pseudo-confidence limits ``estimate +/- z * se``."""
    path = Path(path)
    _check_path(path)
    ratio = result.is_ratio
    ses = [math.sqrt(v) for v in result.vi]
    se_max = max(ses) * 1.1
    z = _crit(result.level)
    tx = (lambda t: math.exp(t)) if ratio else (lambda t: t)
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    ax.fill([tx(result.estimate - z * se_max), tx(result.estimate), tx(result.estimate
            + z * se_max)], [se_max, 0, se_max], color="#eeeeee", zorder=0)
    ax.plot([tx(result.estimate - z * se_max), tx(result.estimate),
             tx(result.estimate + z * se_max)], [se_max, 0, se_max], color="grey", lw=0.8,
            ls="--")
    ax.axvline(tx(result.estimate), color="#c0392b", lw=1)
    ax.plot([tx(y) for y in result.yi], ses, "o", color="#1f4e79")
    ax.set_ylim(se_max, 0)
    if ratio:
        ax.set_xscale("log")
    ax.set_ylabel("Standard error")
    ax.set_xlabel(MEASURE_NAMES[result.measure] + (" (log scale)" if ratio else ""))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path)
    return path


CONTOURS = ((0.10, "#d9d9d9", "0.05 < p < 0.10"), (0.05, "#bdbdbd", "0.01 < p < 0.05"),
            (0.01, "#969696", "p < 0.01"))
"""Significance contours of the contour-enhanced funnel plot (Peters et al. 2008)."""


def contour_funnel_plot(
    result: MetaResult, path: Path, *, trimfill: TrimFill | None = None,
    title: str | None = None,
) -> Path:
    """Contour-enhanced funnel plot: effect against standard error (inverted).

    Shaded bands mark where a study would be significant at p < 0.10, 0.05 and 0.01 (two-sided,
    about no effect), so missing studies in the non-significant region suggest publication
    bias rather than other causes of asymmetry (Peters JL et al. J Clin Epidemiol
    2008;61:991-996). Dashed lines: the pooled estimate +/- 1.96 se. Open circles: studies
    imputed by trim-and-fill, when given.
    """
    from scipy import stats

    path = Path(path)
    _check_path(path)
    ratio = result.is_ratio
    ses = [math.sqrt(v) for v in result.vi]
    filled_se = [math.sqrt(v) for v in (trimfill.filled_vi if trimfill else ())]
    se_max = max(ses + filled_se) * 1.15
    tx = (lambda t: math.exp(t)) if ratio else (lambda t: t)
    xs = list(result.yi) + list(trimfill.filled_yi if trimfill else ())
    reach = max(abs(x) for x in xs + [result.estimate]) + 0.2 * se_max
    reach = max(reach, float(stats.norm.isf(0.005)) * se_max * 1.05)
    fig = Figure(figsize=(8.5, 5))
    ax = fig.add_subplot()
    grid = [se_max * i / 200 for i in range(201)]
    outer = [tx(-reach)] * len(grid)
    ax.fill_betweenx(grid, outer, [tx(reach)] * len(grid), color="#f7f7f7", zorder=0)
    for p_level, colour, label in CONTOURS:
        z = float(stats.norm.isf(p_level / 2))
        left = [tx(-z * s) for s in grid]
        right = [tx(z * s) for s in grid]
        ax.fill_betweenx(grid, outer, left, color=colour, zorder=0, lw=0, label=label)
        ax.fill_betweenx(grid, right, [tx(reach)] * len(grid), color=colour, zorder=0, lw=0)
    ax.fill_betweenx(grid, [tx(-float(stats.norm.isf(0.05)) * s) for s in grid],
                     [tx(float(stats.norm.isf(0.05)) * s) for s in grid], color="white",
                     zorder=0, lw=0, label="p > 0.10")
    ax.plot([], [], color="black", lw=0.8, ls="--", label="pseudo 95% CI about the estimate")
    z95 = _crit(result.level)
    ax.plot([tx(result.estimate - z95 * se_max), tx(result.estimate),
             tx(result.estimate + z95 * se_max)], [se_max, 0, se_max], color="black", lw=0.8,
            ls="--")
    ax.axvline(tx(result.estimate), color="#c0392b", lw=1, label="pooled estimate")
    ax.plot([tx(y) for y in result.yi], ses, "o", color="#1f4e79", label="studies")
    if trimfill is not None and trimfill.filled_yi:
        ax.plot([tx(y) for y in trimfill.filled_yi], filled_se, "o", mfc="white",
                color="#1f4e79", label="filled (trim-and-fill)")
    ax.set_ylim(se_max, 0)
    ax.set_xlim(tx(-reach), tx(reach))
    if ratio:
        ax.set_xscale("log")
        ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
                 if tx(-reach) <= t <= tx(reach)]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _pos: f"{t:g}"))
    ax.set_ylabel("Standard error")
    ax.set_xlabel(MEASURE_NAMES[result.measure] + (" (log scale)" if ratio else "")
                  + "; contours: two-sided p against no effect")
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), framealpha=0.9)
    ax.set_title(title or "Contour-enhanced funnel plot", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path)
    return path


def influence_plot(infl: Influence, path: Path, *, title: str | None = None,
                   xlabel: str | None = None) -> Path:
    """Leave-one-out (left) and cumulative (right) estimates with their CIs.

    The full analysis is the red line with its CI shaded; a refit that failed (metafor's NA)
    is marked "not estimable".
    """
    path = Path(path)
    _check_path(path)
    full = infl.full
    ratio = full.is_ratio
    tx = (lambda t: math.exp(t)) if ratio else (lambda t: t)
    k = len(infl.leave_one_out)
    rows_h = 0.34 * (k + 1)
    height = rows_h + 1.5
    fig = Figure(figsize=(12, height))
    panels = (("Leave one out: omitting", infl.leave_one_out, 0.15),
              ("Cumulative: adding, in data order", infl.cumulative, 0.64))
    values = [full.ci_low, full.ci_high] + [
        v for _, rows, _ in panels for r in rows for v in (r.ci_low, r.ci_high)
        if v is not None and math.isfinite(v)]
    lo, hi = min(values), max(values)
    pad = 0.06 * (hi - lo or 1.0)
    for heading, rows, left in panels:
        ax = fig.add_axes((left, 0.75 / height, 0.22, rows_h / height))
        ax.axvspan(tx(full.ci_low), tx(full.ci_high), color="#f4d6d2", zorder=0)
        ax.axvline(tx(full.estimate), color="#c0392b", lw=1)
        ax.axvline(tx(0.0), color="grey", lw=0.8, ls="--")
        for i, r in enumerate(rows):
            label = r.study
            ax.text(-0.03, i, label, transform=ax.get_yaxis_transform(), ha="right",
                    va="center", fontsize=8)
            if r.estimate is None or r.ci_low is None or r.ci_high is None:
                ax.text(0.5, i, "not estimable", transform=ax.get_yaxis_transform(),
                        ha="center", va="center", fontsize=7.5, style="italic")
                continue
            ax.plot([tx(r.ci_low), tx(r.ci_high)], [i, i], color="black", lw=1.1)
            ax.plot([tx(r.estimate)], [i], "s", color="#1f4e79", markersize=5)
            ax.text(1.03, i, _ci_text(r.estimate, r.ci_low, r.ci_high, ratio),
                    transform=ax.get_yaxis_transform(), va="center", fontsize=8)
        ax.text(1.03, -1.0, f"Estimate [{full.level:g}% CI]", transform=ax.get_yaxis_transform(),
                va="center", fontsize=8, fontweight="bold")
        ax.set_ylim(k - 0.5, -1.5)
        ax.set_yticks([])
        ax.set_title(heading, fontsize=9, loc="left")
        ax.set_xlim(tx(lo - pad), tx(hi + pad))
        if ratio:
            ax.set_xscale("log")
            lo_r, hi_r = math.exp(lo - pad), math.exp(hi + pad)
            ticks = [t for t in (0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 4, 5, 10)
                     if lo_r <= t <= hi_r]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _pos: f"{t:g}"))
        ax.set_xlabel(xlabel or (MEASURE_NAMES[full.measure]
                                 + (" (log scale)" if ratio else "")), fontsize=8.5)
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
    fig.suptitle(title or "Influence of single studies (red: all studies, with CI)",
                 fontweight="bold", x=0.02, ha="left", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path)
    return path
