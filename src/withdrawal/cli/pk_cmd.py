"""``withdrawal pk run`` (event records through a PK model) and ``withdrawal pk simulate`` (a virtual population)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from withdrawal.cli.app import app, fail
from withdrawal.errors import InputError, WithdrawalError

pk_app = typer.Typer(help="Pharmacokinetics of tramadol and M1: NONMEM-style event records, virtual populations.",
                     no_args_is_help=True)
app.add_typer(pk_app, name="pk")
console = Console()


def _parse_params(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError("param", "expected NAME=VALUE", value=item)
        try:
            out[name.strip().upper()] = float(value)
        except ValueError:
            raise InputError("param", f"{name.strip()}: not a number", value=value) from None
    return out


def _parse_taper(text: str | None) -> list[tuple[float, float]]:
    if not text:
        return []
    steps = []
    for part in text.split(","):
        dose, sep, days = part.partition(":")
        try:
            steps.append((float(dose), float(days)))
        except ValueError:
            raise InputError("taper", "expected DOSE_MG:DAYS[,DOSE_MG:DAYS...]",
                             value=text) from None
        if not sep:
            raise InputError("taper", "expected DOSE_MG:DAYS[,DOSE_MG:DAYS...]", value=text)
    return steps


@pk_app.command("run")
def pk_run(
    data: Annotated[Path, typer.Argument(help="NONMEM-style CSV (ID, TIME, EVID, AMT, CMT, ...)")],
    model: Annotated[str, typer.Option(help="depot1 or tramadol")] = "depot1",
    param: Annotated[list[str] | None, typer.Option(help="NAME=VALUE, repeatable")] = None,
    phenotype: Annotated[str | None, typer.Option(help="tramadol model: CYP2D6 phenotype")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
) -> None:
    """Simulate every row of DATA and print ID, TIME, EVID and the model's concentrations."""
    from withdrawal.pk.engine import simulate_records
    from withdrawal.pk.events import read_event_csv
    from withdrawal.pk.models import get_model
    from withdrawal.pk.params import Patient, adjust_for_patient, check_phenotype

    try:
        if fmt not in ("csv", "json"):
            raise InputError("format", "unknown format", value=fmt, allowed=("csv", "json"))
        mdl = get_model(model)
        overrides = _parse_params(param or [])
        ph = check_phenotype(phenotype)
        if ph is not None:
            if model != "tramadol":
                raise InputError("phenotype", "only for --model tramadol", value=ph)
            adj = adjust_for_patient(Patient(ph))
            overrides = {"MCL": adj.cl_mult, "MF": adj.m1_formation_mult, **overrides}
        records = read_event_csv(data)
        out = simulate_records(records, mdl, overrides)
    except WithdrawalError as exc:
        raise fail(exc) from None
    rows = [
        {"ID": r.id, "TIME": r.time, "EVID": r.evid,
         **{k: float(out[k][i]) for k in mdl.output_names}}
        for i, r in enumerate(records)
    ]
    if fmt == "json":
        typer.echo(json.dumps({"model": mdl.name, "rows": rows}))
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["ID", "TIME", "EVID"],
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in row.items()})
    typer.echo(buf.getvalue(), nl=False)


@pk_app.command("simulate")
def simulate(
    dose_mg: Annotated[float, typer.Option("--dose-mg", help="dose of tramadol HCl, mg")],
    interval_h: Annotated[float, typer.Option("--interval-h", help="dosing interval, h")],
    days: Annotated[float, typer.Option(help="days at the starting dose")],
    patients: Annotated[int, typer.Option(help="number of virtual patients")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
    grid_min: Annotated[float, typer.Option("--grid-min", help="time grid, minutes")] = 15.0,
    release: Annotated[str, typer.Option(help="ir or er")] = "ir",
    taper: Annotated[str | None, typer.Option(help="taper steps DOSE_MG:DAYS,...")] = None,
    phenotype: Annotated[str | None, typer.Option(
        help="fix everyone's CYP2D6 phenotype (default: CPIC European mix)")] = None,
    inhibitor: Annotated[bool, typer.Option(help="everyone takes a strong CYP2D6 inhibitor")
                         ] = False,
    threshold: Annotated[float | None, typer.Option(
        help="M1 threshold ng/mL (default 84, Lee 2019 via pk_lee2019)")] = None,
    course_days: Annotated[float | None, typer.Option(
        "--course-days", help="withdrawal course for coverage, days from the first dose "
        "(default: upper end of the acute heroin course in the knowledge base)")] = None,
    backend: Annotated[str, typer.Option(help="numpy or jax")] = "numpy",
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    plot: Annotated[Path | None, typer.Option(help="write a plot (PNG/SVG/PDF)")] = None,
) -> None:
    """Simulate a tramadol regimen in a virtual population (exploratory, not clinical advice)."""
    from withdrawal.pk.params import Patient, withdrawal_course
    from withdrawal.pk.population import Regimen, percentile_table, simulate_population

    try:
        if fmt not in ("text", "json"):
            raise InputError("format", "unknown format", value=fmt, allowed=("text", "json"))
        regimen = Regimen.build(dose_mg=dose_mg, interval_h=interval_h, days=days,
                                taper=_parse_taper(taper), release=release)
        course = withdrawal_course("heroin")
        if course_days is None:
            course_h = course.default_course_h
            course_note = (f"coverage window {course_h:g} h: upper end of the acute "
                           f"{course.substance} withdrawal course "
                           f"({course.duration_days[0]:g}-{course.duration_days[1]:g} days; "
                           f"knowledge base: {', '.join(course.sources)})")
        else:
            course_h = course_days * 24.0
            course_note = f"coverage window {course_h:g} h (--course-days)"
        with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.completed:,}"
                      " / {task.total:,} patients"), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True,
                      disable=fmt == "json") as bar:
            task = bar.add_task("sim", total=patients)
            result = simulate_population(
                regimen, n_patients=patients, seed=seed, grid_min=grid_min, phenotype=phenotype,
                patient=Patient(strong_cyp2d6_inhibitor=inhibitor), threshold_ng_ml=threshold,
                course_h=course_h, backend=backend,
                progress=lambda done: bar.update(task, completed=done))
        if plot is not None:
            from withdrawal.pk.plot import plot_population

            plot_population(result, plot, course)
    except WithdrawalError as exc:
        raise fail(exc) from None
    summary = {**percentile_table(result), "course_note": course_note,
               "course_sources": list(course.sources) if course_days is None else []}
    if fmt == "json":
        typer.echo(json.dumps(summary))
        return
    table = Table(title=f"{patients:,} patients, {regimen.duration_h / 24:g} days, "
                  f"M1 threshold {result.threshold_ng_ml:g} ng/mL (exploratory)")
    for col in ("phenotype", "n", "onset h (median)", "never reached", "coverage (mean)",
                "M1 Cmax p50 / p95", "tramadol Cmax p50 / p95"):
        table.add_column(col)
    for ph, g in result.groups.items():
        onset = g.onset_h_pct[50.0]
        table.add_row(ph, f"{g.n:,}", "-" if math.isinf(onset) else f"{onset:.1f}",
                      f"{g.never_reached:.0%}", f"{g.coverage_mean:.0%}",
                      f"{g.m1_cmax_pct[50.0]:.0f} / {g.m1_cmax_pct[95.0]:.0f}",
                      f"{g.tramadol_cmax_pct[50.0]:.0f} / {g.tramadol_cmax_pct[95.0]:.0f}")
    console.print(table)
    for note in (course_note, *result.assumptions):
        console.print(f"- {note}", highlight=False)
