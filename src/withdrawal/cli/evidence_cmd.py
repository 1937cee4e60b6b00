"""``withdrawal meta`` and ``withdrawal evidence``: the evidence module on the command line."""

from __future__ import annotations

import csv
import json
import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from withdrawal.cli.app import app, fail
from withdrawal.errors import InputError, WithdrawalError

if TYPE_CHECKING:  # the evidence modules load SciPy and matplotlib: import them on use
    from withdrawal.evidence.effects import EffectSizes, Measure
    from withdrawal.evidence.meta import MetaResult
    from withdrawal.evidence.summary import EvidenceSummary

BINARY_COLUMNS = ("events_treatment", "total_treatment", "events_control", "total_control")
CONTINUOUS_COLUMNS = ("mean_treatment", "sd_treatment", "total_treatment",
                      "mean_control", "sd_control", "total_control")
GENERIC_COLUMNS = ("yi", "vi")

console = Console()


class MeasureOpt(StrEnum):
    RR = "RR"
    OR = "OR"
    RD = "RD"
    MD = "MD"
    SMD = "SMD"
    GEN = "GEN"


class MethodOpt(StrEnum):
    FE = "FE"
    DL = "DL"
    REML = "REML"
    PM = "PM"
    ML = "ML"
    HE = "HE"
    SJ = "SJ"


class TestOpt(StrEnum):
    z = "z"
    knha = "knha"


class FormatOpt(StrEnum):
    text = "text"
    json = "json"


def _required_columns(measure: Measure) -> tuple[str, ...]:
    from withdrawal.evidence.effects import BINARY_MEASURES, CONTINUOUS_MEASURES

    if measure in BINARY_MEASURES:
        return BINARY_COLUMNS
    if measure in CONTINUOUS_MEASURES:
        return CONTINUOUS_COLUMNS
    return GENERIC_COLUMNS


def read_effects(path: Path, measure: Measure) -> EffectSizes:
    """Read a ``withdrawal meta`` CSV and compute effect sizes; InputError names column/row."""
    from withdrawal.evidence.effects import (
        BINARY_MEASURES,
        CONTINUOUS_MEASURES,
        effect_sizes_given,
        escalc_binary,
        escalc_continuous,
    )

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()}
                    for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError("DATA", f"cannot read {path}: {exc}", value=str(path)) from exc
    needed = ("study", *_required_columns(measure))
    for col in needed:
        if col not in header:
            raise InputError(col, f"missing column for measure {measure}", value=None,
                             allowed=needed)
    if not rows:
        raise InputError("DATA", "the file has no studies", value=str(path))
    columns: dict[str, list[float]] = {c: [] for c in needed[1:]}
    for line, row in enumerate(rows, start=2):
        for col in needed[1:]:
            cell = row.get(col, "")
            try:
                number = float(cell)
            except ValueError:
                raise InputError(col, f"row {line}: not a number", value=cell) from None
            if not math.isfinite(number):
                raise InputError(col, f"row {line}: not a finite number", value=cell)
            columns[col].append(number)
    labels = [row.get("study") or f"Study {i + 1}" for i, row in enumerate(rows)]
    c = columns
    if measure in BINARY_MEASURES:
        return escalc_binary(measure, c["events_treatment"], c["total_treatment"],
                             c["events_control"], c["total_control"], labels=labels)
    if measure in CONTINUOUS_MEASURES:
        return escalc_continuous(measure, c["mean_treatment"], c["sd_treatment"],
                                 c["total_treatment"], c["mean_control"], c["sd_control"],
                                 c["total_control"], labels=labels)
    return effect_sizes_given(columns["yi"], columns["vi"], labels=labels)


def _num(x: float | None, digits: int = 4) -> str:
    return "NA" if x is None else f"{x:.{digits}f}"


def _result_table(res: MetaResult) -> Table:
    table = Table(title=f"{res.measure} meta-analysis: {res.method}, test {res.test}, k = {res.k}")
    table.add_column("quantity")
    table.add_column("analysis scale", justify="right")
    if res.is_ratio:
        table.add_column("ratio scale", justify="right")
    rows = [
        ("estimate", res.estimate), ("ci_low", res.ci_low), ("ci_high", res.ci_high),
        ("pi_low", res.pi_low), ("pi_high", res.pi_high),
    ]
    for name, value in rows:
        cells = [name, _num(value)]
        if res.is_ratio:
            cells.append(_num(res.back(value)))
        table.add_row(*cells)
    stat_name = "t" if res.test == "knha" else "z"
    for name, value in (("se", res.se), (stat_name, res.statistic), ("p", res.p),
                        ("tau2", res.tau2), ("I2 (%)", res.i2), ("H2", res.h2),
                        (f"Q (df {res.q_df})", res.q), ("Q p", res.q_p)):
        cells = [name, f"{value:.4g}" if name in ("p", "Q p") else _num(value)]
        if res.is_ratio:
            cells.append("")
        table.add_row(*cells)
    return table


@app.command("meta")
def meta_command(
    data: Annotated[Path, typer.Argument(help="CSV file: study plus the measure's columns.")],
    measure: Annotated[MeasureOpt, typer.Option(help="Effect measure.")] = MeasureOpt.RR,
    method: Annotated[MethodOpt, typer.Option(help="tau^2 estimator.")] = MethodOpt.REML,
    test: Annotated[TestOpt, typer.Option(help="z, or knha (Hartung-Knapp).")] = TestOpt.z,
    output_format: Annotated[FormatOpt, typer.Option("--format", help="Output format.")]
    = FormatOpt.text,
    plot: Annotated[Path | None, typer.Option(help="Write a forest plot (.png or .svg).")]
    = None,
) -> None:
    """Pool studies from a CSV file the way R's metafor does (rma + predict)."""
    from withdrawal.evidence.meta import pool
    from withdrawal.evidence.plots import forest_plot

    try:
        effects = read_effects(data, measure.value)
        res = pool(effects, method=method.value, test=test.value)
        if plot is not None:
            forest_plot(res, plot)
    except WithdrawalError as exc:
        raise fail(exc) from None
    if output_format is FormatOpt.json:
        typer.echo(json.dumps(res.to_dict(), indent=2))
        return
    console.print(_result_table(res))
    for note in res.notes:
        console.print(f"note: {note}")
    if plot is not None:
        console.print(f"forest plot written to {plot}")


def _cites(ids: tuple[str, ...]) -> str:
    return escape("[" + ", ".join(ids) + "]")


def _print_summary(summary: EvidenceSummary) -> None:
    trials = Table(title="Tramadol for opioid withdrawal: studies", show_lines=True)
    for col in ("study", "design", "population", "arms (n started / completed)", "sources"):
        trials.add_column(col, overflow="fold")
    for t in summary.trials:
        arms = "\n".join(
            f"{a.name}: {a.n_randomised if a.n_randomised is not None else '?'}"
            f" / {a.n_completed if a.n_completed is not None else '?'}"
            for a in t.arms
        )
        trials.add_row(t.study, t.design, t.population, arms,
                       f"{_cites(t.sources)}\n{t.verification}")
    console.print(trials)
    pooled = Table(title="Completion: risk ratio tramadol / comparator", show_lines=True)
    for col in ("comparison", "trials", "RR [95% CI]", "model", "caveat"):
        pooled.add_column(col, overflow="fold")
    for a in summary.analyses:
        r = a.result
        est = f"{r.back(r.estimate):.2f} [{r.back(r.ci_low):.2f}, {r.back(r.ci_high):.2f}]"
        model = f"{r.method}, {r.test}" if a.pooled else "single trial, not pooled"
        if a.sensitivity is not None:
            s = a.sensitivity
            model += (f"\nFE: {s.back(s.estimate):.2f} "
                      f"[{s.back(s.ci_low):.2f}, {s.back(s.ci_high):.2f}]")
        counts = "\n".join(f"{c.study}: {c.events_tramadol}/{c.total_tramadol} vs "
                           f"{c.events_comparator}/{c.total_comparator}" for c in a.rows)
        pooled.add_row(a.analysis.title, counts, est, model,
                       f"{a.analysis.caveat} {_cites(a.analysis.sources)}")
    console.print(pooled)
    gaps = Table(title="Not pooled, and why", show_lines=True)
    gaps.add_column("what", overflow="fold")
    gaps.add_column("why", overflow="fold")
    for n in summary.not_pooled:
        gaps.add_row(n.what, f"{n.reason} {_cites(n.sources)}")
    console.print(gaps)
    verdicts = Table(title="What the evidence says about the article's claims", show_lines=True)
    for col in ("claim", "verdict", "why"):
        verdicts.add_column(col, overflow="fold")
    for v in summary.verdicts:
        verdicts.add_row(v.claim, v.verdict, f"{v.statement} {_cites(v.sources)}")
    console.print(verdicts)


@app.command("evidence")
def evidence_command(
    output_format: Annotated[FormatOpt, typer.Option("--format", help="Output format.")]
    = FormatOpt.text,
    plot_dir: Annotated[Path | None, typer.Option(help="Write forest plots (PNG, SVG) here.")]
    = None,
) -> None:
    """The tramadol evidence summary: trials, pooled comparisons, gaps and verdicts."""
    from withdrawal.evidence.summary import build_summary, tramadol_forest

    try:
        summary = build_summary()
        written: list[Path] = []
        if plot_dir is not None:
            for suffix in (".png", ".svg"):
                written.append(tramadol_forest(summary, plot_dir / f"forest_tramadol{suffix}"))
    except (WithdrawalError, OSError) as exc:
        err = exc if isinstance(exc, WithdrawalError) else InputError("plot-dir", str(exc))
        raise fail(err) from None
    if output_format is FormatOpt.json:
        out: dict[str, Any] = summary.to_dict()
        out["plots"] = [str(p) for p in written]
        typer.echo(json.dumps(out, indent=2))
        return
    _print_summary(summary)
    for p in written:
        console.print(f"forest plot written to {p}")
