"""Core commands: ``assess``, ``cows``, ``interactions``."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.prompt import IntPrompt

from withdrawal.cli.app import app, fail
from withdrawal.errors import InputError, WithdrawalError

console = Console()


def read_json(path: Path) -> Any:
    """Read a JSON file, naming the file in any error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(str(path), "file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc


FormatOpt = Annotated[str, typer.Option("--format", "-f", help="text or json")]


def _as_of(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError("--as-of", "not a date; use YYYY-MM-DD", value=text) from None


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise InputError("--format", "unknown format", value=fmt, allowed=["text", "json"])


@app.command("assess")
def assess_cmd(
    patient_file: Annotated[Path, typer.Argument(help="Patient JSON (format version 1) or a FHIR R4 Bundle.")],
    fmt: FormatOpt = "text",
    simulate: Annotated[
        bool, typer.Option(help="Simulate the proposed tramadol regimen (PK model).")
    ] = True,
    override_reason: Annotated[
        str | None,
        typer.Option(
            "--override-reason",
            help="Ask for the tramadol schedule although the verdict is 'avoid', giving the clinical reason "
            "(recorded in the answer; never for 'contraindicated').",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Read a FHIR record as of DATE (YYYY-MM-DD; default today): ages, days since stopping and "
            "look-backs count to it, as 'population screen --as-of' does.",
        ),
    ] = None,
    pathway: Annotated[
        str | None,
        typer.Option(
            "--pathway",
            help="Also give a start pathway: 'buprenorphine' (which start, schedule, COWS rechecks, "
            "hand-off, chart note); text output shows the pathway only.",
        ),
    ] = None,
) -> None:
    """Assess one patient: withdrawal severity, tramadol safety, ranked options, resources."""
    from withdrawal.assess import assess_patient
    from withdrawal.cli.pathway_report import render_pathway
    from withdrawal.cli.report import render_assessment
    from withdrawal.intake import read_patient
    from withdrawal.knowledge.loader import default_kb
    from withdrawal.pathway import PATHWAYS, build_pathway

    try:
        _check_format(fmt)
        if pathway is not None and pathway not in PATHWAYS:
            raise InputError("--pathway", "unknown pathway", value=pathway, allowed=PATHWAYS)
        kb = default_kb()
        data = read_patient(read_json(patient_file), kb, _as_of(as_of))
        result = assess_patient(data, kb, simulate=simulate, override=override_reason)
        path = build_pathway(result, pathway) if pathway else None
    except WithdrawalError as exc:
        raise fail(exc) from exc
    if fmt == "json":
        out = result.to_dict()
        if path is not None:
            out["pathway"] = path.to_dict()
            for sid in path.sources:
                src = result.kb.sources[sid]
                out["sources"].setdefault(sid, {**src.model_dump(mode="json", exclude_none=True), "link": src.link})
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
    elif path is not None:
        render_pathway(path, result.kb, console)
    else:
        render_assessment(result, console)


@app.command("cows")
def cows_cmd(
    item: Annotated[
        list[str] | None,
        typer.Option(
            "--item", "-i", help="ITEM=SCORE, e.g. resting_pulse_rate=2; repeat for each item."
        ),
    ] = None,
    fmt: FormatOpt = "text",
) -> None:
    """Score the COWS item by item, from --item flags or interactively."""
    from withdrawal.knowledge.loader import default_kb
    from withdrawal.scales import score

    scale = default_kb().scales["cows"]
    try:
        _check_format(fmt)
        if item:
            values: dict[str, object] = {}
            for pair in item:
                key, sep, val = pair.partition("=")
                if not sep:
                    raise InputError("--item", "expected ITEM=SCORE", value=pair)
                try:
                    values[key.strip()] = int(val)
                except ValueError as exc:
                    raise InputError(
                        f"cows.{key.strip()}", "score must be an integer", value=val
                    ) from exc
        else:
            values = {}
            for it in scale.items:
                console.print(f"\n[bold]{it.number}. {it.label}[/] {it.instruction}")
                for opt in it.options:
                    console.print(f"  {opt.score}: {opt.anchor}")
                values[it.id] = IntPrompt.ask(
                    "Score", choices=[str(s) for s in it.allowed_scores], console=console
                )
        result = score(values, scale)
    except WithdrawalError as exc:
        raise fail(exc) from exc
    if fmt == "json":
        typer.echo(
            json.dumps(
                {
                    "total": result.total,
                    "band": result.band,
                    "band_label": result.band_label,
                    "items": dict(result.items),
                    "sources": list(result.sources),
                },
                indent=2,
            )
        )
    else:
        band = result.band_label or "no band"
        console.print(f"COWS total [bold]{result.total}[/] of {result.max_total}: [bold]{band}[/]")


def _without_pair(items: list[tuple[str, object]]) -> dict[str, object]:
    return {k: v for k, v in items if k not in ("first", "second")}


@app.command("interactions")
def interactions_cmd(
    drugs: Annotated[list[str], typer.Argument(help="Medication names, generic or brand.")],
    fmt: FormatOpt = "text",
) -> None:
    """Check a medication list against tramadol and against each other."""
    from withdrawal.cli.report import render_interactions
    from withdrawal.knowledge.loader import default_kb
    from withdrawal.safety.interactions import check_interactions

    try:
        _check_format(fmt)
    except WithdrawalError as exc:
        raise fail(exc) from exc
    kb = default_kb()
    report = check_interactions(drugs, kb)
    if fmt == "json":
        out = {
            "drugs": list(report.drugs),
            "with_tramadol": [asdict(h) for h in report.with_tramadol],
            "between": [
                {"drug_a": h.first, "drug_b": h.second, **asdict(h, dict_factory=_without_pair)}
                for h in report.between
            ],
            "unrecognised": list(report.unrecognised),
        }
        typer.echo(json.dumps(out, indent=2))
    else:
        render_interactions(report, kb, console)
    if report.unrecognised and not report.drugs:
        raise typer.Exit(2)
