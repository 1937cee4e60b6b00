"""Charts as inline SVG built in Python: no JavaScript, no front-end build, readable by screen readers.

Every chart has a ``<title>`` and ``<desc>`` and the page shows the same numbers as a table.
Colours meet WCAG 2.1 AA non-text contrast (3:1) against white.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

import numpy as np
from markupsafe import Markup

from withdrawal.knowledge.models import Scale

COWS_COLOUR = "#0b57d0"  # 6.2:1 on white
SOWS_COLOUR = "#8a3ffc"  # 5.0:1
DOSE_COLOUR = "#a1420b"  # 6.3:1
M1_COLOUR = "#0b57d0"
TRAM_COLOUR = "#a1420b"
GRID = "#d0d4da"
TEXT = "#1f2328"
BAND_FILLS = ("#ffffff", "#f3f7ff", "#fff7e0", "#ffeede", "#ffe4e4")


@dataclass(frozen=True)
class Point:
    at: datetime
    total: int
    label: str = ""


@dataclass(frozen=True)
class DoseMark:
    at: datetime
    drug: str
    dose_mg: float


def _f(v: float) -> str:
    return f"{v:.1f}"


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def course_chart(
    *,
    cows: Sequence[Point],
    sows: Sequence[Point],
    doses: Sequence[DoseMark],
    cows_scale: Scale | None,
    sows_max: int,
    title: str,
    show_cows: bool = True,
    width: int = 760,
) -> Markup:
    """COWS (with its bands) and SOWS totals over time, doses marked beneath on the same time axis."""
    times = [p.at for p in (*cows, *sows)] + [d.at for d in doses]
    if not times:
        return Markup("")
    t0, t1 = min(times), max(times)
    if t1 - t0 < timedelta(hours=24):
        t0, t1 = t0 - timedelta(hours=12), t1 + timedelta(hours=12)
    pad = (t1 - t0) * 0.03
    t0, t1 = t0 - pad, t1 + pad
    left, right = (56, 150) if show_cows else (40, 16)
    panel_h, gap, top = 150, 40, 16
    panels: list[tuple[str, Sequence[Point], int, str, Scale | None]] = []
    if show_cows:
        panels.append(("COWS total (clinician)", cows, 48 if cows_scale is None else cows_scale.total_max,
                       COWS_COLOUR, cows_scale))
    panels.append(("SOWS total (self-rated)", sows, sows_max, SOWS_COLOUR, None))
    dose_h = 58 if doses else 0
    height = top + len(panels) * (panel_h + gap) + dose_h + 30
    plot_w = width - left - right
    span = (t1 - t0).total_seconds()

    def x(t: datetime) -> float:
        return left + plot_w * (t - t0).total_seconds() / span

    out: list[str] = []
    desc = (f"{len(cows)} COWS and {len(sows)} SOWS scores and {len(doses)} doses from "
            f"{t0:%d %b %Y} to {t1:%d %b %Y}. The same numbers are in the table below the chart.")
    out.append(
        f'<svg class="chart{" wide" if width >= 700 else ""}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="course-title course-desc" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">'
        f'<title id="course-title">{escape(title)}</title><desc id="course-desc">{escape(desc)}</desc>'
    )
    # day ticks
    day = datetime(t0.year, t0.month, t0.day, tzinfo=t0.tzinfo) + timedelta(days=1)
    n_days = max(1, int(span // 86400))
    every = max(1, math.ceil(n_days / 8))
    ticks: list[datetime] = []
    while day <= t1:
        ticks.append(day)
        day += timedelta(days=every)
    y = top
    for name, pts, ymax, colour, scale in panels:
        def py(v: float, y_top: int = y, ymax_: int = ymax) -> float:
            return y_top + panel_h * (1 - v / ymax_)

        if scale is not None:
            for i, band in enumerate(scale.bands):
                ya, yb = py(min(band.max + 1, ymax)), py(band.min)
                out.append(f'<rect x="{left}" y="{_f(ya)}" width="{plot_w}" height="{_f(yb - ya)}" '
                           f'fill="{BAND_FILLS[i % len(BAND_FILLS)]}"/>')
                out.append(f'<text x="{left + plot_w + 6}" y="{_f((ya + yb) / 2 + 4)}" fill="{TEXT}" '
                           f'font-size="11">{escape(_short_band(band.label))} {band.min}-{band.max}</text>')
        step = _nice_step(ymax, 4)
        v = 0.0
        while v <= ymax + 1e-9:
            out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{_f(py(v))}" y2="{_f(py(v))}" '
                       f'stroke="{GRID}" stroke-width="1"/>')
            out.append(f'<text x="{left - 6}" y="{_f(py(v) + 4)}" text-anchor="end" fill="{TEXT}">{v:g}</text>')
            v += step
        for t in ticks:
            out.append(f'<line x1="{_f(x(t))}" x2="{_f(x(t))}" y1="{y}" y2="{y + panel_h}" stroke="{GRID}"/>')
        out.append(f'<rect x="{left}" y="{y}" width="{plot_w}" height="{panel_h}" fill="none" stroke="#6e7781"/>')
        out.append(f'<text x="{left}" y="{y - 4}" fill="{TEXT}" font-weight="600">{escape(name)}</text>')
        if pts:
            path = " ".join(f"{'M' if i == 0 else 'L'}{_f(x(p.at))},{_f(py(p.total))}" for i, p in enumerate(pts))
            out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
            for p in pts:
                out.append(f'<circle cx="{_f(x(p.at))}" cy="{_f(py(p.total))}" r="4.5" fill="{colour}">'
                           f'<title>{p.at:%d %b %H:%M}: {p.total}{" " + escape(p.label) if p.label else ""}'
                           f'</title></circle>')
        else:
            out.append(f'<text x="{left + plot_w / 2}" y="{y + panel_h / 2}" text-anchor="middle" fill="{TEXT}">'
                       f'no scores yet</text>')
        y += panel_h + gap
    if doses:
        drugs = ", ".join(sorted({d.drug for d in doses}))
        out.append(f'<text x="{left}" y="{y - 4}" fill="{TEXT}" font-weight="600">Doses given ({escape(drugs)})</text>')
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y + 20}" y2="{y + 20}" stroke="#6e7781"/>')
        for d in doses:
            cx = x(d.at)
            out.append(f'<path d="M{_f(cx)},{y + 20} l-5,-12 h10 z" fill="{DOSE_COLOUR}">'
                       f'<title>{d.at:%d %b %H:%M}: {escape(d.drug)} {d.dose_mg:g} mg</title></path>')
            if len(doses) <= 14:
                out.append(f'<text x="{_f(cx)}" y="{y + 34}" text-anchor="middle" fill="{TEXT}" font-size="11">'
                           f'{d.dose_mg:g} mg</text>')
        y += dose_h
    for t in ticks:
        out.append(f'<text x="{_f(x(t))}" y="{y}" text-anchor="middle" fill="{TEXT}">{t:%d %b}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _short_band(label: str) -> str:
    return label.split(" (")[0].replace("Below the mild band", "below mild")


def concentration_chart(
    *,
    hours: np.ndarray,
    m1: np.ndarray,
    tramadol: np.ndarray,
    threshold: float,
    dose_times_h: Sequence[float],
    course_marks: Sequence[tuple[float, float, str]],
    title: str,
) -> Markup:
    """Typical-patient M1 and tramadol concentrations (ng/mL) over hours from the first dose."""
    width, left, right, top, panel_h, gap = 760, 60, 20, 20, 170, 46
    height = top + 2 * (panel_h + gap) + 20
    plot_w = width - left - right
    tmax = float(hours[-1])

    def x(h: float) -> float:
        return left + plot_w * h / tmax

    desc = (f"Peak M1 {float(m1.max()):.0f} ng/mL, peak tramadol {float(tramadol.max()):.0f} ng/mL; "
            f"M1 threshold {threshold:g} ng/mL; {len(dose_times_h)} doses over {tmax / 24:.1f} days.")
    out = [
        f'<svg class="chart wide" viewBox="0 0 {width} {height}" role="img" aria-labelledby="conc-title conc-desc" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">'
        f'<title id="conc-title">{escape(title)}</title><desc id="conc-desc">{escape(desc)}</desc>'
    ]
    idx = np.linspace(0, hours.size - 1, min(hours.size, 600)).astype(int)
    y = top
    for name, series, colour, thr in (("M1 (O-desmethyltramadol), ng/mL", m1, M1_COLOUR, threshold),
                                       ("Tramadol, ng/mL", tramadol, TRAM_COLOUR, None)):
        ymax = float(max(series.max(), thr or 0.0)) * 1.1 or 1.0
        step = _nice_step(ymax, 4)
        ymax = math.ceil(ymax / step) * step

        def py(v: float, y_top: int = y, ymax_: float = ymax) -> float:
            return y_top + panel_h * (1 - v / ymax_)

        for h0, h1, label in course_marks:
            xa, xb = x(max(0.0, h0)), x(min(tmax, h1))
            if xb > xa:
                out.append(f'<rect x="{_f(xa)}" y="{y}" width="{_f(xb - xa)}" height="{panel_h}" fill="#f1f3f6"/>')
                if name.startswith("M1"):
                    out.append(f'<text x="{_f(xa + 4)}" y="{y + 14}" fill="{TEXT}" font-size="11">'
                               f'{escape(label)}</text>')
        v = 0.0
        while v <= ymax + 1e-9:
            out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{_f(py(v))}" y2="{_f(py(v))}" stroke="{GRID}"/>')
            out.append(f'<text x="{left - 6}" y="{_f(py(v) + 4)}" text-anchor="end" fill="{TEXT}">{v:g}</text>')
            v += step
        for d in range(0, int(tmax // 24) + 1):
            out.append(f'<text x="{_f(x(d * 24))}" y="{y + panel_h + 16}" text-anchor="middle" fill="{TEXT}">'
                       f'day {d}</text>')
        for h in dose_times_h:
            out.append(f'<line x1="{_f(x(h))}" x2="{_f(x(h))}" y1="{y + panel_h - 8}" y2="{y + panel_h}" '
                       f'stroke="{DOSE_COLOUR}" stroke-width="2"/>')
        out.append(f'<rect x="{left}" y="{y}" width="{plot_w}" height="{panel_h}" fill="none" stroke="#6e7781"/>')
        out.append(f'<text x="{left}" y="{y - 5}" fill="{TEXT}" font-weight="600">{escape(name)}</text>')
        if thr is not None:
            out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{_f(py(thr))}" y2="{_f(py(thr))}" '
                       f'stroke="{TEXT}" stroke-dasharray="6 4"/>')
            out.append(f'<text x="{left + plot_w - 4}" y="{_f(py(thr) - 5)}" text-anchor="end" fill="{TEXT}">'
                       f'threshold {thr:g} (analgesia anchor)</text>')
        path = " ".join(f"{'M' if i == 0 else 'L'}{_f(x(float(hours[j])))},{_f(py(float(series[j])))}"
                        for i, j in enumerate(idx))
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        y += panel_h + gap
    out.append("</svg>")
    return Markup("".join(out))
