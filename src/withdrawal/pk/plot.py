"""Concentration bands per phenotype over the heroin withdrawal timeline (matplotlib, Agg).

The timeline is the core knowledge base's (``withdrawal_course``), the same one the
management plan uses; its sources are named on the figure.
"""

from __future__ import annotations

from pathlib import Path

from withdrawal.pk.params import WithdrawalCourse, withdrawal_course
from withdrawal.pk.population import PopulationResult

COLOURS = {"poor": "#1b9e77", "intermediate": "#7570b3", "normal": "#d95f02",
           "ultrarapid": "#e7298a"}


def plot_population(result: PopulationResult, path: Path, course: WithdrawalCourse | None = None
                    ) -> Path:
    """Write a PNG/SVG/PDF of M1 and tramadol 5-95% bands and medians per phenotype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    course = course or withdrawal_course("heroin")
    what = f"({course.substance})"
    days = result.times_h / 24.0
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for ax, key, label in ((axes[0], "m1", "M1 (ng/mL)"), (axes[1], "tramadol",
                                                          "tramadol base (ng/mL)")):
        ax.axvspan(course.onset_h[0] / 24, course.onset_h[1] / 24, color="0.9",
                   label=f"withdrawal onset {what}")
        ax.axvspan(course.peak_h[0] / 24, course.peak_h[1] / 24, color="0.8",
                   label=f"withdrawal peak {what}")
        ax.axvline(course.duration_days[1], color="0.5", ls=":",
                   label="acute withdrawal ends (upper)")
        for ph, g in result.groups.items():
            pct = g.m1_pct if key == "m1" else g.tramadol_pct
            ax.fill_between(days, pct[5.0], pct[95.0], color=COLOURS[ph], alpha=0.2)
            ax.plot(days, pct[50.0], color=COLOURS[ph], lw=1.2, label=f"{ph} (n={g.n})")
        ax.set_ylabel(label)
    axes[0].axhline(result.threshold_ng_ml, color="k", ls="--", lw=0.8,
                    label=f"M1 threshold {result.threshold_ng_ml:g} ng/mL")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].set_xlabel(f"days from first dose; {course.substance} withdrawal timeline: "
                       f"knowledge base ({', '.join(course.sources)})", fontsize=8)
    fig.suptitle("Simulated tramadol/M1 (median, 5-95%) by CYP2D6 phenotype. "
                 "EXPLORATORY: not clinical guidance", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
