"""Rich text rendering of the buprenorphine start pathway, with numbered references."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from withdrawal.cli.report import _Refs
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.pathway import Pathway, Step

_UNVERIFIED = " [yellow](unverified: not read in the source)[/]"


def _step(s: Step, ref: _Refs) -> str:
    return f"- {s.text}{ref(s.sources)}{'' if s.verified else _UNVERIFIED}"


def _when(still_taking: bool, hours: float | None) -> str:
    if still_taking:
        return "still taking"
    return "time of last use not recorded" if hours is None else f"last {hours:g} h ago"


def render_pathway(p: Pathway, kb: KnowledgeBase, console: Console) -> None:
    """Print the pathway: headline, cautions, starts with schedules, rechecks, hand-off, chart note."""
    ref = _Refs()
    console.print(Panel.fit("[bold]Buprenorphine start pathway[/]", subtitle=f"knowledge base {kb.version}"))
    if p.not_screened:
        console.print("[bold yellow]INCOMPLETE SCREEN: not screened:[/] " + "; ".join(p.not_screened))
    style = {"available": "bold", "excluded": "bold white on red"}.get(p.status, "bold yellow")
    console.print(f"[{style}]{p.status.upper().replace('_', ' ')}[/] {p.headline}", highlight=False)
    board = (
        "; ".join(
            f"{o.name} ({_when(o.still_taking, o.hours_since_last_dose)})"
            for o in p.on_board
        )
        or "none recorded"
    )
    console.print(f"[bold]Opioids on board[/]: {board}")
    console.print(
        f"[bold]COWS[/]: {p.cows_total if p.cows_total is not None else 'not recorded'}"
        + (f" ({p.cows_band})" if p.cows_band else "")
    )
    for f in p.findings:
        console.print(f"[bold yellow]{f.level}[/] {f.code}: {f.message} {f.action}{ref(f.sources)}", highlight=False)
    for note in p.notes:
        console.print(f"- {note}", highlight=False)
    for start in p.starts:
        console.print(
            f"\n[bold]{'SUGGESTED' if start.role == 'first' else 'Alternative'}: {start.name}[/]{ref(start.sources)}"
        )
        console.print(f"{start.summary} {start.why}", highlight=False)
        if start.now:
            console.print(f"[bold]Now[/]: {start.now}", highlight=False)
        for st in start.steps:
            console.print(_step(st, ref), highlight=False)
        for sc in start.schedules:
            table = Table(title=f"{sc.name}{ref(sc.sources)}", title_justify="left")
            table.add_column("Day", justify="right")
            table.add_column("Buprenorphine")
            table.add_column("Full agonist")
            for d in sc.days:
                table.add_row(str(d.day), d.buprenorphine, d.full_agonist)
            console.print(table)
            console.print(f"  {sc.note}{'' if sc.verified else _UNVERIFIED}", highlight=False)
    if p.rechecks:
        console.print("\n[bold]COWS rechecks[/]")
        for r in p.rechecks:
            console.print(f"- {r.when}: {r.action}{ref(r.sources)}{'' if r.verified else _UNVERIFIED}", highlight=False)
    if p.precipitated_withdrawal:
        console.print("\n[bold]Precipitated withdrawal[/]")
        for st in p.precipitated_withdrawal:
            console.print(_step(st, ref), highlight=False)
    if p.alternatives and p.status != "available":
        console.print("\n[bold]Options instead[/]: " + ", ".join(p.alternatives))
    console.print("\n[bold]Hand-off[/]")
    for st in p.handoff:
        console.print(_step(st, ref), highlight=False)
    console.print(Panel(p.chart_note, title="Chart note (copy and paste)", title_align="left"), highlight=False)
    console.print("\n[bold]Sources[/]")
    for i, sid in enumerate(ref.order, 1):
        src = kb.sources[sid]
        console.print(f"[{i}] {src.title} ({src.organisation}) {src.link}", highlight=False, soft_wrap=True)
