"""Population summary: counts and rates overall, by age band and by sex, and a chart."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from withdrawal.population.rules import FLAGS

AGE_BANDS = ("0-17", "18-34", "35-49", "50-64", "65+", "unknown")
COUNTED = ("tramadol_active", "tramadol_blocked", "high_mme", *(f"flag_{f.id}" for f in FLAGS))


def _rate(count: int, total: int) -> float:
    return round(count / total, 6) if total else 0.0


def build_summary(by_group: pa.Table, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Totals and rates from the engine's (age_band, sex) counts."""
    rows = by_group.to_pylist()
    total = sum(int(r["patients"]) for r in rows)
    labels = {f"flag_{f.id}": f.label for f in FLAGS}
    labels.update(tramadol_active="Active tramadol", high_mme="MME/day at or above the high-dose threshold",
                  tramadol_blocked="Tramadol would be blocked (verdict avoid or contraindicated)")

    def block(selected: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        n = sum(int(r["patients"]) for r in selected)
        counts = {c: sum(int(r[c] or 0) for r in selected) for c in COUNTED}
        return {"patients": n, "counts": counts, "rates": {c: _rate(v, n) for c, v in counts.items()}}

    by_age = {b: block([r for r in rows if r["age_band"] == b]) for b in AGE_BANDS
              if any(r["age_band"] == b for r in rows)}
    sexes = sorted({str(r["sex"]) for r in rows})
    by_sex = {s: block([r for r in rows if str(r["sex"]) == s]) for s in sexes}
    return {**meta, "patients": total, "labels": labels, "overall": block(rows), "by_age_band": by_age,
            "by_sex": by_sex}


def write_summary(summary: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """``summary.json`` and ``population_rates.png`` (rates of each flag by age band and sex)."""
    json_path = out / "summary.json"
    json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    png = out / "population_rates.png"
    chart(summary, png)
    return json_path, png


_preload: threading.Thread | None = None


def _import_pyplot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def preload_chart() -> None:
    """Start importing matplotlib (about 0.7 s) in a background thread, so that it overlaps other work."""
    global _preload
    if _preload is None and "matplotlib.pyplot" not in sys.modules:
        _preload = threading.Thread(target=_import_pyplot, name="preload-matplotlib", daemon=True)
        _preload.start()


def chart(summary: Mapping[str, Any], path: Path) -> None:
    if _preload is not None:
        _preload.join()
    _import_pyplot()
    import matplotlib.pyplot as plt

    flags = [c for c in COUNTED if c.startswith("flag_")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, key, title in ((axes[0], "by_age_band", "by age band"), (axes[1], "by_sex", "by sex")):
        groups = list(summary[key])
        width = 0.8 / max(len(flags), 1)
        for i, flag in enumerate(flags):
            vals = [100 * summary[key][g]["rates"][flag] for g in groups]
            ax.bar([x + i * width for x in range(len(groups))], vals, width, label=flag.removeprefix("flag_"))
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups)
        ax.set_title(f"Population flags {title}")
        ax.set_ylabel("% of patients")
    axes[1].legend(fontsize=7)
    fig.suptitle(f"Tramadol and opioid population screen: {summary.get('patients', 0):,} patients, "
                 f"as of {summary.get('as_of', '')}")
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.08, top=0.88, wspace=0.1)  # tight_layout: a 2nd draw
    fig.savefig(path, dpi=110)
    plt.close(fig)
