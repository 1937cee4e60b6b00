"""``withdrawal meta`` and ``withdrawal evidence``: the evidence module on the command line."""

from __future__ import annotations

import csv
import json
import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from withdrawal.cli.app import app, fail
from withdrawal.errors import InputError, WithdrawalError

if TYPE_CHECKING:  # the evidence modules load SciPy and matplotlib: import them on use
    from withdrawal.evidence.effects import EffectSizes, Measure
    from withdrawal.evidence.meta import MetaResult, Method, Test
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
    MH = "MH"
    PETO = "PETO"


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


def read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file (cells stripped); InputError if it cannot be read."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()}
                    for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError("DATA", f"cannot read {path}: {exc}", value=str(path)) from exc
    if not rows:
        raise InputError("DATA", "the file has no studies", value=str(path))
    return header, rows


def _numeric_columns(
    header: list[str], rows: list[dict[str, str]], measure: Measure
) -> dict[str, list[float]]:
    needed = ("study", *_required_columns(measure))
    for col in needed:
        if col not in header:
            raise InputError(col, f"missing column for measure {measure}", value=None,
                             allowed=needed)
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
    return columns


def _labels(rows: list[dict[str, str]]) -> list[str]:
    return [row.get("study") or f"Study {i + 1}" for i, row in enumerate(rows)]


def effects_from_table(
    header: list[str], rows: list[dict[str, str]], measure: Measure
) -> EffectSizes:
    """Effect sizes from the rows of a ``withdrawal meta`` CSV."""
    from withdrawal.evidence.effects import (
        BINARY_MEASURES,
        CONTINUOUS_MEASURES,
        effect_sizes_given,
        escalc_binary,
        escalc_continuous,
    )

    c = _numeric_columns(header, rows, measure)
    labels = _labels(rows)
    if measure in BINARY_MEASURES:
        return escalc_binary(measure, c["events_treatment"], c["total_treatment"],
                             c["events_control"], c["total_control"], labels=labels)
    if measure in CONTINUOUS_MEASURES:
        return escalc_continuous(measure, c["mean_treatment"], c["sd_treatment"],
                                 c["total_treatment"], c["mean_control"], c["sd_control"],
                                 c["total_control"], labels=labels)
    return effect_sizes_given(c["yi"], c["vi"], labels=labels)


def read_effects(path: Path, measure: Measure) -> EffectSizes:
    """Read a ``withdrawal meta`` CSV and compute effect sizes; InputError names column/row."""
    header, rows = read_table(path)
    return effects_from_table(header, rows, measure)


def moderator_columns(header: list[str], measure: Measure) -> tuple[str, ...]:
    """The CSV's extra columns (beyond study and the measure's own): moderators."""
    own = {"study", *_required_columns(measure)}
    return tuple(h for h in header if h not in own)


def _moderator(header: list[str], rows: list[dict[str, str]], measure: Measure, name: str,
               option: str) -> list[str]:
    allowed = moderator_columns(header, measure)
    if name not in allowed:
        raise InputError(option, f"no moderator column {name!r} in the data", value=name,
                         allowed=allowed or ["(the file has no extra columns)"])
    values = [row.get(name, "") for row in rows]
    for line, value in enumerate(values, start=2):
        if value == "":
            raise InputError(name, f"row {line}: empty moderator value", value=value)
    return values


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
    if res.method != "FE" and res.k > 1:
        level = f"{res.level:g}%"
        for name, lo, hi, digits in (("tau2", res.tau2_ci_low, res.tau2_ci_high, 4),
                                     ("I2 (%)", res.i2_ci_low, res.i2_ci_high, 1)):
            cells = [f"{name} {level} CI (Q-profile)",
                     f"{_num(lo, digits)} to {_num(hi, digits)}"]
            if res.is_ratio:
                cells.append("")
            table.add_row(*cells)
    return table


def _pooled(data_header: list[str], rows: list[dict[str, str]], measure: Measure,
            method: str, test: str) -> tuple[dict[str, Any], Any]:
    """The base analysis: inverse-variance ``pool``, or Mantel-Haenszel / Peto on counts."""
    from withdrawal.evidence.effects import BINARY_MEASURES
    from withdrawal.evidence.meta import pool
    from withdrawal.evidence.mh import MH_MEASURES, PETO_MEASURES, mantel_haenszel, peto

    if method in ("MH", "PETO"):
        allowed = MH_MEASURES if method == "MH" else PETO_MEASURES
        if measure not in allowed:
            raise InputError("measure", f"--method {method} pools {', '.join(allowed)} "
                             "from 2x2 counts", value=measure, allowed=allowed)
        if test != "z":
            raise InputError("test", f"--method {method} uses the z test", value=test,
                             allowed=["z"])
        assert measure in BINARY_MEASURES
        c = _numeric_columns(data_header, rows, measure)
        counts = (c["events_treatment"], c["total_treatment"], c["events_control"],
                  c["total_control"])
        counted = (mantel_haenszel(measure, *counts, labels=_labels(rows)) if method == "MH"
                   else peto(*counts, labels=_labels(rows)))
        return counted.to_dict(), counted
    res = pool(effects_from_table(data_header, rows, measure), method=cast("Method", method),
               test=cast("Test", test))
    return res.to_dict(), res


@app.command("meta")
def meta_command(
    data: Annotated[Path, typer.Argument(help="CSV file: study plus the measure's columns; "
                                              "extra columns are moderators.")],
    measure: Annotated[MeasureOpt, typer.Option(help="Effect measure.")] = MeasureOpt.RR,
    method: Annotated[MethodOpt, typer.Option(
        help="tau^2 estimator, or MH (Mantel-Haenszel: RR, OR, RD) / PETO (OR).")]
    = MethodOpt.REML,
    test: Annotated[TestOpt, typer.Option(help="z, or knha (Hartung-Knapp).")] = TestOpt.z,
    output_format: Annotated[FormatOpt, typer.Option("--format", help="Output format.")]
    = FormatOpt.text,
    plot: Annotated[Path | None, typer.Option(help="Write a forest plot (.png or .svg).")]
    = None,
    mods: Annotated[list[str] | None, typer.Option(
        "--mods", help="Moderator column for meta-regression (repeatable; text = factor).")]
    = None,
    subgroup: Annotated[str | None, typer.Option(
        help="Column whose levels are fitted separately, with the test of differences.")]
    = None,
    bias: Annotated[bool, typer.Option(
        "--bias", help="Egger's test, rank correlation test and trim-and-fill.")] = False,
    funnel_plot_path: Annotated[Path | None, typer.Option(
        "--funnel-plot", help="Write a contour-enhanced funnel plot (.png or .svg).")] = None,
    influence_flag: Annotated[bool, typer.Option(
        "--influence", help="Leave-one-out and cumulative meta-analysis.")] = False,
    influence_plot_path: Annotated[Path | None, typer.Option(
        "--influence-plot", help="Write leave-one-out and cumulative plots (.png or .svg).")]
    = None,
) -> None:
    """Pool studies from a CSV file the way R's metafor does (rma, rma.mh, rma.peto,
    confint, regtest, ranktest, trimfill, leave1out, cumul)."""
    from withdrawal.evidence.bias import bias_checks, influence
    from withdrawal.evidence.meta import MetaResult
    from withdrawal.evidence.plots import contour_funnel_plot, forest_plot, influence_plot
    from withdrawal.evidence.regression import meta_regression, subgroup_analysis

    m: Measure = measure.value
    meth = method.value
    tst: Test = test.value
    extras: dict[str, Any] = {}
    written: list[Path] = []
    try:
        for path in (plot, funnel_plot_path, influence_plot_path):
            if path is not None and path.suffix.lower() not in (".png", ".svg"):
                raise InputError("plot", "file must end in .png or .svg", value=str(path),
                                 allowed=[".png", ".svg"])
        header, rows = read_table(data)
        out, res = _pooled(header, rows, m, meth, tst)
        wants_more = mods or subgroup or bias or influence_flag or funnel_plot_path \
            or influence_plot_path
        if wants_more and not isinstance(res, MetaResult):
            raise InputError("method", f"--method {meth} gives the pooled estimate only; "
                             "meta-regression, subgroups, bias and influence need an "
                             "inverse-variance method", value=meth,
                             allowed=[o.value for o in MethodOpt if o.value not in
                                      ("MH", "PETO")])
        if isinstance(res, MetaResult):
            effects = effects_from_table(header, rows, m)
            rmeth = cast("Method", meth)
            if mods:
                values = {name: _moderator(header, rows, m, name, "mods") for name in mods}
                reg = meta_regression(effects, values, rmeth, tst)
                out = {"measure": m, **reg.to_dict()}
                extras["regression"] = reg
            if subgroup:
                col = _moderator(header, rows, m, subgroup, "subgroup")
                sub = subgroup_analysis(effects, subgroup, col, rmeth, tst)
                out.update(sub.to_dict())
                extras["subgroup"] = sub
            if bias or funnel_plot_path:
                checks = bias_checks(effects, rmeth, tst)
                if bias:
                    out.update(checks.to_dict())
                    extras["bias"] = checks
                if funnel_plot_path:
                    written.append(contour_funnel_plot(res, funnel_plot_path,
                                                       trimfill=checks.trimfill))
            if influence_flag or influence_plot_path:
                infl = influence(effects, rmeth, tst)
                if influence_flag:
                    out.update(infl.to_dict())
                    extras["influence"] = infl
                if influence_plot_path:
                    written.append(influence_plot(infl, influence_plot_path))
            if plot is not None:
                written.append(forest_plot(res, plot))
        elif plot is not None:
            raise InputError("plot", f"no forest plot for --method {meth}", value=meth,
                             allowed=[o.value for o in MethodOpt if o.value not in
                                      ("MH", "PETO")])
    except WithdrawalError as exc:
        raise fail(exc) from None
    if output_format is FormatOpt.json:
        typer.echo(json.dumps(out, indent=2))
        return
    if isinstance(res, MetaResult):
        console.print(_result_table(res))
        for note in res.notes:
            console.print(f"note: {note}")
    else:
        console.print(_count_table(res))
    _print_extras(extras)
    for p in written:
        console.print(f"plot written to {p}")


def _count_table(res: Any) -> Table:
    name = "Mantel-Haenszel" if res.method == "MH" else "Peto"
    table = Table(title=f"{res.measure} meta-analysis: {name}, k = {res.k}")
    table.add_column("quantity")
    table.add_column("analysis scale", justify="right")
    if res.is_ratio:
        table.add_column("ratio scale", justify="right")
    for label, value in (("estimate", res.estimate), ("ci_low", res.ci_low),
                         ("ci_high", res.ci_high)):
        table.add_row(label, _num(value), *([_num(res.back(value))] if res.is_ratio else []))
    for label, value in (("se", res.se), ("z", res.statistic), ("p", res.p),
                         (f"Q (df {res.q_df})", res.q), ("Q p", res.q_p), ("I2 (%)", res.i2)):
        text = f"{value:.4g}" if label in ("p", "Q p") else _num(value)
        table.add_row(label, text, *([""] if res.is_ratio else []))
    return table


def _print_extras(extras: dict[str, Any]) -> None:
    reg = extras.get("regression")
    if reg is not None:
        t = Table(title=f"Meta-regression ({reg.method}, test {reg.test}, k = {reg.k})")
        for col in ("coefficient", "estimate", "se", "z/t", "p", "ci_low", "ci_high"):
            t.add_column(col, justify="right" if col != "coefficient" else "left")
        for c in reg.coefficients:
            t.add_row(c.name, _num(c.estimate), _num(c.se), _num(c.statistic), f"{c.p:.4g}",
                      _num(c.ci_low), _num(c.ci_high))
        console.print(t)
        r2 = "NA" if reg.r2 is None else f"{reg.r2:.1f}%"
        console.print(f"QM = {reg.qm:.4f} (df {reg.qm_df}), p = {reg.qm_p:.4g}; "
                      f"QE = {reg.qe:.4f} (df {reg.qe_df}), p = {reg.qe_p:.4g}; "
                      f"residual tau2 = {reg.tau2:.4f}; R2 = {r2}")
    sub = extras.get("subgroup")
    if sub is not None:
        t = Table(title=f"Subgroups by {sub.column}")
        for col in ("level", "k", "estimate", "ci_low", "ci_high", "tau2", "I2 (%)", "Q p"):
            t.add_column(col, justify="right" if col != "level" else "left")
        for level, r in sub.fits.items():
            t.add_row(level, str(r.k), _num(r.estimate), _num(r.ci_low), _num(r.ci_high),
                      _num(r.tau2), _num(r.i2, 1), f"{r.q_p:.4g}")
        console.print(t)
        console.print(f"Test of subgroup differences: Q = {sub.q_between:.4f} "
                      f"(df {sub.q_between_df}), p = {sub.q_between_p:.4g}")
    checks = extras.get("bias")
    if checks is not None:
        e, r, tf = checks.egger, checks.rank_test, checks.trimfill
        console.print(f"Egger's test: {'t' if e.df else 'z'} = {e.statistic:.4f}, "
                      f"p = {e.p:.4g}; limit estimate {_num(e.limit_estimate)} "
                      f"[{_num(e.limit_ci_low)}, {_num(e.limit_ci_high)}]")
        if r.tau is None or r.p is None:
            console.print("Rank correlation: not defined (every value tied)")
        else:
            console.print(f"Rank correlation: Kendall's tau = {r.tau:.4f}, p = {r.p:.4g}"
                          f"{' (exact)' if r.exact else ' (normal approximation, ties)'}")
        console.print(f"Trim-and-fill (L0): {tf.k0} studies filled on the {tf.side}; "
                      f"estimate {_num(tf.estimate)} [{_num(tf.ci_low)}, {_num(tf.ci_high)}]")
    infl = extras.get("influence")
    if infl is not None:
        for title, rows_ in (("Leave-one-out (study omitted)", infl.leave_one_out),
                             ("Cumulative (study added)", infl.cumulative)):
            t = Table(title=title)
            for col in ("study", "estimate", "ci_low", "ci_high", "tau2"):
                t.add_column(col, justify="right" if col != "study" else "left")
            for row in rows_:
                t.add_row(row.study, _num(row.estimate), _num(row.ci_low),
                          _num(row.ci_high), _num(row.tau2))
            console.print(t)


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
    _print_checks(summary)
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


def _print_checks(summary: EvidenceSummary) -> None:
    from withdrawal.evidence.summary import BIAS_NOTE_SOURCES

    for a in summary.analyses:
        r = a.result
        title = f"Tramadol vs {a.analysis.comparator}: checks and certainty (GRADE)"
        console.print(f"[bold]{escape(title)}[/]")
        if a.pooled and r.tau2_ci_high is not None and r.i2_ci_high is not None:
            console.print(f"  Heterogeneity: tau2 = {r.tau2:.3g} (95% CI {r.tau2_ci_low:.3g} to "
                          f"{r.tau2_ci_high:.3g}), I2 = {r.i2:.0f}% ({r.i2_ci_low:.0f}% to "
                          f"{r.i2_ci_high:.0f}%), Q p = {r.q_p:.2g}")
        if a.bias_note:
            console.print(f"  Small-study bias: {a.bias_note} {_cites(BIAS_NOTE_SOURCES)}")
        if a.influence is not None:
            rows = "; ".join(
                f"without {x.study}: RR {r.back(x.estimate):.2f} "
                f"[{r.back(x.ci_low):.2f}, {r.back(x.ci_high):.2f}]"
                if x.estimate is not None and x.ci_low is not None and x.ci_high is not None
                else f"without {x.study}: not estimable"
                for x in a.influence.leave_one_out)
            console.print(f"  Leave one out: {rows}. {a.influence_note}")
        elif a.influence_note:
            console.print(f"  Leave one out: {a.influence_note}")
        g = a.analysis.grade
        table = Table(show_lines=True, title=f"Certainty: {g.certainty.upper()} "
                      f"(randomised trials start {g.start}; rated down {g.downgrades})")
        for col in ("domain", "judgement", "reason"):
            table.add_column(col, overflow="fold")
        for name, d in g.domains():
            table.add_row(name.replace("_", " "), d.judgement,
                          f"{d.reason} {_cites(d.sources)} {d.verification}")
        console.print(table)


@app.command("evidence")
def evidence_command(
    output_format: Annotated[FormatOpt, typer.Option("--format", help="Output format.")]
    = FormatOpt.text,
    plot_dir: Annotated[Path | None, typer.Option(
        help="Write forest and leave-one-out plots (PNG, SVG) here.")]
    = None,
) -> None:
    """The tramadol evidence summary: trials, pooled comparisons, gaps and verdicts."""
    from withdrawal.evidence.summary import build_summary, tramadol_forest, tramadol_influence

    try:
        summary = build_summary()
        written: list[Path] = []
        if plot_dir is not None:
            for suffix in (".png", ".svg"):
                written.append(tramadol_forest(summary, plot_dir / f"forest_tramadol{suffix}"))
                loo = tramadol_influence(summary, plot_dir / f"leave_one_out_tramadol{suffix}")
                if loo is not None:
                    written.append(loo)
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
        console.print(f"plot written to {p}")
