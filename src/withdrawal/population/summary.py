"""Population summary: counts and rates overall, by age band and by sex, and a chart."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from withdrawal.knowledge.population import Flag

AGE_BAND_STARTS: tuple[int, ...] = (0, 18, 35, 50, 65)
"""The age bands the summary reports (a reporting choice, not clinical knowledge): each from its start
to the next band's start, the last open-ended. The one definition the compiled output's ``age_band``
(``compiler.age_band_sql``) and the summary's order read."""
UNKNOWN_AGE = "unknown"
"""The band of a patient without a usable birth date."""
AGE_BAND_LIMITS: tuple[tuple[str, int | None], ...] = tuple(
    (f"{start}-{end - 1}" if end is not None else f"{start}+", end)
    for start, end in zip(AGE_BAND_STARTS, (*AGE_BAND_STARTS[1:], None), strict=True)
)
"""(label, the first age past the band, None for the last) per band, youngest first: ``0-17`` ... ``65+``."""
AGE_BANDS: tuple[str, ...] = (*(label for label, _ in AGE_BAND_LIMITS), UNKNOWN_AGE)
MEASURES = ("tramadol_active", "tramadol_blocked", "high_mme")
"""The counted columns before the flags (``flag_<id>``, one per population flag of the knowledge base)."""


def _rate(count: int, total: int) -> float:
    return round(count / total, 6) if total else 0.0


def build_summary(by_group: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
                  flags: Sequence[Flag]) -> dict[str, Any]:
    """Totals and rates from the engine's (age_band, sex) count rows."""
    rows = list(by_group)
    total = sum(int(r["patients"]) for r in rows)
    counted = (*MEASURES, *(f"flag_{f.id}" for f in flags))
    labels = {f"flag_{f.id}": f.label for f in flags}
    labels.update(tramadol_active="Active tramadol", high_mme="MME/day at or above the high-dose threshold",
                  tramadol_blocked="Tramadol would be blocked (verdict avoid or contraindicated)")

    def block(selected: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        n = sum(int(r["patients"]) for r in selected)
        counts = {c: sum(int(r[c] or 0) for r in selected) for c in counted}
        return {"patients": n, "counts": counts, "rates": {c: _rate(v, n) for c, v in counts.items()}}

    by_age = {b: block([r for r in rows if r["age_band"] == b]) for b in AGE_BANDS
              if any(r["age_band"] == b for r in rows)}
    sexes = sorted({str(r["sex"]) for r in rows})
    by_sex = {s: block([r for r in rows if str(r["sex"]) == s]) for s in sexes}
    return {**meta, "patients": total, "labels": labels, "overall": block(rows), "by_age_band": by_age,
            "by_sex": by_sex}


MIN_CELL = 11
"""Default smallest count shown: cells of 1 to 10 are suppressed, the CMS cell-size suppression policy
that most data-use agreements repeat. A site setting (``--min-cell``), not clinical knowledge."""

SUPPRESSION_RULE = (
    "Counts from 1 to {n_minus} are suppressed (shown as null, with their rates); 0 is shown. Within each "
    "breakdown (by age band, by sex), when a count is suppressed, the smallest other non-zero count of "
    "that column is suppressed too, so no suppressed count can be recovered from the overall total. A "
    "group with fewer than {n} patients has all its counts suppressed."
)


def suppress(summary: Mapping[str, Any], min_cell: int = MIN_CELL) -> dict[str, Any]:
    """The summary with small counts suppressed (:data:`SUPPRESSION_RULE`); ``min_cell`` 1 suppresses nothing."""
    if min_cell < 1:
        raise ValueError("min_cell must be at least 1")
    out: dict[str, Any] = json.loads(json.dumps(summary, default=str))

    def small(v: Any) -> bool:
        return isinstance(v, int) and 0 < v < min_cell

    def hide(block: dict[str, Any], col: str) -> None:
        block["counts"][col] = None
        block["rates"][col] = None

    def primary(block: dict[str, Any]) -> None:
        if small(block["patients"]):
            block["patients"] = None
            for col in list(block["counts"]):
                hide(block, col)
            return
        for col, v in list(block["counts"].items()):
            if small(v):
                hide(block, col)

    if small(out.get("patients")):
        out["patients"] = None
    primary(out["overall"])
    for key in ("by_age_band", "by_sex"):
        groups: dict[str, dict[str, Any]] = out[key]
        before = {g: (b["patients"], dict(b["counts"])) for g, b in groups.items()}
        for b in groups.values():
            primary(b)
        # complementary suppression, per column (and for the group sizes)
        cols = list(out["overall"]["counts"])
        for col in cols:
            hidden = [g for g, b in groups.items() if b["counts"][col] is None]
            if len(hidden) == 1:
                shown = [(before[g][1][col], g) for g, b in groups.items()
                         if b["counts"][col] is not None and before[g][1][col]]
                if shown:
                    hide(groups[min(shown)[1]], col)
        if sum(1 for b in groups.values() if b["patients"] is None) == 1:
            shown_p = [(b["patients"], g) for g, b in groups.items() if b["patients"]]
            if shown_p:
                g = min(shown_p)[1]
                groups[g]["patients"] = None
                for col in cols:
                    hide(groups[g], col)
    out["suppression"] = {"min_cell": min_cell,
                          "rule": SUPPRESSION_RULE.format(n=min_cell, n_minus=min_cell - 1) if min_cell > 1
                          else "none (min_cell 1)"}
    return out


def write_summary(summary: Mapping[str, Any], out: Path, *, with_chart: bool = True) -> tuple[Path, Path | None]:
    """``summary.json`` and, ``with_chart``, ``population_rates.png`` (rates of each flag by age band and sex)."""
    json_path = out / "summary.json"
    json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    if not with_chart:
        return json_path, None
    png = out / "population_rates.png"
    chart(summary, png)
    return json_path, png


_preload: threading.Thread | None = None


def _import_pyplot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def preload_chart() -> None:
    """Start importing matplotlib (0.4-0.7 s) in a background thread, so that it overlaps the engine's work;
    only a run that draws the chart calls this, so no other command pays for the chart library."""
    global _preload
    if _preload is None and "matplotlib.pyplot" not in sys.modules:
        _preload = threading.Thread(target=_import_pyplot, name="preload-matplotlib", daemon=True)
        _preload.start()


def chart(summary: Mapping[str, Any], path: Path) -> None:
    if _preload is not None:
        _preload.join()
    _import_pyplot()
    import matplotlib.pyplot as plt

    flags = [c for c in summary["overall"]["counts"] if c.startswith("flag_")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, key, title in ((axes[0], "by_age_band", "by age band"), (axes[1], "by_sex", "by sex")):
        groups = list(summary[key])
        width = 0.8 / max(len(flags), 1)
        for i, flag in enumerate(flags):
            vals = [100 * (summary[key][g]["rates"][flag] or 0.0) for g in groups]  # suppressed: no bar
            ax.bar([x + i * width for x in range(len(groups))], vals, width, label=flag.removeprefix("flag_"))
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups)
        ax.set_title(f"Population flags {title}")
        ax.set_ylabel("% of patients")
    axes[1].legend(fontsize=7)
    rule = summary.get("suppression", {}).get("min_cell", 1)
    note = f"; counts under {rule} suppressed (no bar)" if rule > 1 else ""
    fig.suptitle(f"Tramadol and opioid population screen: {summary.get('patients') or 0:,} patients, "
                 f"as of {summary.get('as_of', '')}{note}")
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.08, top=0.88, wspace=0.1)  # tight_layout: a 2nd draw
    fig.savefig(path, dpi=110)
    plt.close(fig)
