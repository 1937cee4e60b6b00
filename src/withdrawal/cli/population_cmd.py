"""``withdrawal population screen`` and ``withdrawal population synth``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from withdrawal.cli.app import app, fail
from withdrawal.errors import InputError, WithdrawalError

population_app = typer.Typer(help="Population screening over FHIR Bulk Data (NDJSON) exports.",
                             no_args_is_help=True)
app.add_typer(population_app, name="population")
console = Console()


def _parse_date(text: str | None, field: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(field, "expected a date YYYY-MM-DD", value=text) from None


def _bar() -> Progress:
    return Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


@population_app.command("screen")
def screen_cmd(
    export_dir: Annotated[Path, typer.Argument(help="FHIR Bulk Data export directory (NDJSON, optionally .gz)")],
    out: Annotated[Path, typer.Option("--out", help="output directory")],
    engine: Annotated[str, typer.Option(help="duckdb (embedded) or spark")] = "duckdb",
    spark_master: Annotated[str | None, typer.Option(help="Spark master URL, e.g. spark://HOST:7077")] = None,
    as_of: Annotated[str | None, typer.Option(help="screen as of DATE (default: manifest transactionTime, "
                                                   "else today)")] = None,
    min_cell: Annotated[int, typer.Option(help="suppress counts from 1 to N-1 in the summary and chart "
                                               "(default 11, the CMS cell-size rule; 1 shows every count)")] = 11,
    pseudonym_key_file: Annotated[Path | None, typer.Option(
        help="write HMAC-SHA256 pseudonyms keyed by this file's bytes instead of patient ids")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="write patients.csv as well as Parquet")] = False,
    chart: Annotated[bool, typer.Option("--chart/--no-chart", help="draw population_rates.png (the chart "
                                        "library is loaded only for it)")] = True,
) -> None:
    """Screen every patient: tramadol findings, verdict and population flags, to Parquet + summary."""
    from withdrawal.population.screen import run_screen

    try:
        day = _parse_date(as_of, "as_of")
        key: bytes | None = None
        if pseudonym_key_file is not None:
            try:
                key = pseudonym_key_file.read_bytes()
            except OSError as exc:
                raise InputError("--pseudonym-key-file", f"cannot be read ({exc.strerror})",
                                 value=str(pseudonym_key_file)) from None
        with _bar() as bar:
            task = bar.add_task("starting", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total)

            run = run_screen(export_dir, out, engine=engine, as_of=day, spark_master=spark_master,
                             progress=progress, min_cell=min_cell, pseudonym_key=key, csv_copy=csv, chart=chart)
    except WithdrawalError as exc:
        raise fail(exc) from exc
    overall = run.summary["overall"]
    console.print(f"screened {run.patients:,} patients with {run.engine} as of {run.as_of} "
                  f"in {run.seconds:.1f} s ({run.summary['mme_table']})")
    for col, count in overall["counts"].items():
        if count is None:
            console.print(f"  {col:<32} {'<' + str(min_cell):>10}  (suppressed)")
        else:
            console.print(f"  {col:<32} {count:>10,}  {100 * overall['rates'][col]:6.2f}%")
    if run.bad_lines:
        console.print(f"[yellow]{len(run.bad_lines)} malformed line(s) skipped[/] (see {run.malformed_path}):")
        for b in run.bad_lines[:10]:
            console.print(f"  {b.file}:{b.line}: {b.error}", highlight=False)
    console.print(f"patients: {run.patients_path}\nsummary: {run.summary_path}")
    if run.chart_path is not None:
        console.print(f"chart: {run.chart_path}")


@population_app.command("synth")
def synth_cmd(
    n: Annotated[int, typer.Argument(help="number of patients")],
    out: Annotated[Path, typer.Option("--out", help="output directory")],
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    as_of: Annotated[str, typer.Option(help="reference date of the export (transactionTime)")] = "2026-01-01",
    gzip: Annotated[bool, typer.Option("--gzip/--no-gzip", help="write .ndjson.gz")] = False,
    manifest: Annotated[bool, typer.Option("--manifest/--no-manifest", help="write manifest.json")] = True,
    truth: Annotated[bool, typer.Option("--truth/--no-truth", help="write ground_truth.parquet")] = True,
    varied: Annotated[bool, typer.Option("--varied", help="draw every row of the FHIR reading table (statuses, "
                                         "codes, units, date forms, references); truth by the per-patient "
                                         "reading")] = False,
) -> None:
    """Write a seeded synthetic FHIR R4 Bulk Data export of N patients with ground truth."""
    from withdrawal.population.synth import synthesize, synthesize_varied

    try:
        day = _parse_date(as_of, "as_of")
        assert day is not None
        if varied and (gzip or not manifest):
            raise InputError("--varied", "writes plain NDJSON with a manifest (no --gzip, no --no-manifest)")
        if varied:
            report = synthesize_varied(out, n, seed=seed, as_of=day, truth=truth)
        else:
            with _bar() as bar:
                task = bar.add_task("patients", total=n)
                report = synthesize(out, n, seed=seed, as_of=day, compress=gzip, manifest=manifest, truth=truth,
                                    progress=lambda done: bar.update(task, completed=done))
    except WithdrawalError as exc:
        raise fail(exc) from exc
    counts = ", ".join(f"{k} {v:,}" for k, v in report.resources.items())
    console.print(f"wrote {report.patients:,} patients to {report.out}: {counts}")
    if report.truth:
        console.print(f"ground truth: {report.truth}")
