"""Rich text rendering of an assessment, with numbered references to its sources."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from withdrawal.assess import Assessment
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.safety.interactions import InteractionReport

_LEVEL_STYLE = {
    "acceptable": "bold green",
    "caution": "bold yellow",
    "avoid": "bold red",
    "contraindicated": "bold white on red",
}


class _Refs:
    """Numbers sources in order of first citation: [1], [2] ..."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def __call__(self, ids: Iterable[str]) -> str:
        nums = []
        for sid in ids:
            if sid not in self.order:
                self.order.append(sid)
            nums.append(str(self.order.index(sid) + 1))
        return f" [{','.join(nums)}]" if nums else ""


def render_assessment(a: Assessment, console: Console) -> None:
    """Print the readable report."""
    ref = _Refs()
    s, p = a.screen, a.plan
    console.print(
        Panel.fit(
            "[bold]Tramadol and opioid withdrawal: patient assessment[/]\n" + p.notes[0].text,
            subtitle=f"knowledge base {a.kb.version}",
        )
    )
    if a.patient.unresolved:
        console.print(
            "[bold yellow]INCOMPLETE SCREEN: not screened:[/] " + "; ".join(a.patient.unresolved)
            + ". A reason against tramadol may be missing: check these items before deciding."
        )
    if a.cows:
        band = a.cows.band_label or "no band"
        console.print(f"[bold]COWS[/] {a.cows.total}/{a.cows.max_total}: {band}{ref(a.cows.sources)}")
    if a.sows:
        console.print(f"[bold]SOWS[/] {a.sows.total}/{a.sows.max_total} (no validated bands){ref(a.sows.sources)}")
    console.print(f"[bold]Course[/] ({p.course.stage.replace('_', ' ')}): {p.course.summary}{ref(p.course.sources)}")

    verdict = Text(s.verdict.upper(), style=_LEVEL_STYLE[s.verdict])
    console.print(Text.assemble("\n", ("Tramadol verdict: ", "bold"), verdict))
    console.print(f"[dim]{s.off_label.text}{ref(s.off_label.sources)}[/]")
    if s.findings:
        table = Table(show_lines=False, header_style="bold")
        table.add_column("Level")
        table.add_column("Finding")
        table.add_column("Why and what to do", overflow="fold")
        for f in s.findings:
            table.add_row(
                Text(f.level, style=_LEVEL_STYLE[f.level]),
                f"{f.code}\n[dim]{', '.join(f.triggers)}[/]",
                f"{f.message} {f.action}{ref(f.sources)}",
            )
        console.print(table)
    else:
        console.print("No patient-specific reason against tramadol was found.")
    lim = s.dose_limit
    console.print(
        f"Maximum immediate-release dose: [bold]{lim.max_daily_mg} mg/day[/], "
        f"every {lim.interval_h} h ({lim.reason}){ref(lim.sources)}"
    )

    console.print("\n[bold]Options, ranked[/]")
    table = Table(header_style="bold")
    table.add_column("#")
    table.add_column("Option")
    table.add_column("Reasons, dosing and timing", overflow="fold")
    for o in p.options:
        status = {
            "recommended": "[green]first line[/]",
            "available": "",
            "not_advised": "[red]not advised[/]",
        }[o.status]
        body = " ".join(o.reasons)
        for f in o.findings if o.treatment != "tramadol" else ():
            body += f"\n[{_LEVEL_STYLE[f.level]}]{f.level}[/] {f.message} {f.action}{ref(f.sources)}"
        if o.timing:
            body += f"\n[bold]When:[/] {o.timing}"
        body += f"\n[dim]{o.dosing}[/]{ref(o.sources)}"
        table.add_row(str(o.rank), f"{o.name}\n{status}", body)
    console.print(table)
    for e in p.excluded:
        console.print(f"[red]Excluded:[/] {e.name}: {' '.join(e.reasons)}")
    if p.tramadol_regimen:
        title = "Tramadol taper if chosen"
        if s.verdict == "avoid":
            title = "Tramadol taper, only if a clinician chooses it despite the findings"
        days = ", ".join(f"day {d.day}: {d.total_mg} mg ({'+'.join(map(str, d.doses_mg))})" for d in p.tramadol_regimen)
        console.print(
            f"\n[bold]{title}[/] "
            f"(every {p.tramadol_regimen[0].interval_h} h): "
            f"{days}{ref(a.kb.care.tramadol_taper.sources)}"
        )
        console.print(f"[dim]{a.kb.care.tramadol_taper.note}[/]")
        if p.override:
            console.print(f"[bold]Clinician's override:[/] {p.override}")
    elif p.regimen_withheld:
        console.print(f"\n[bold]{p.regimen_withheld}[/]")
    if a.simulation:
        sim = a.simulation
        console.print(f"[bold]Simulated (exploratory):[/] {sim.get('summary', '')}{ref(sim.get('sources', ()))}")

    console.print("\n[bold]Symptomatic adjuncts[/]")
    for adj in p.adjuncts:
        if adj.status == "not_for_this_patient":
            console.print(f"- {adj.symptom}: [red]not {adj.drug}[/]: {adj.reason}{ref(adj.reason_sources)}")
            continue
        mark = f" [yellow](interacts with tramadol: {adj.interaction})[/]" if adj.interacts_with_tramadol else ""
        if adj.status == "caution":
            mark += f" [yellow]Caution: {adj.reason}[/]{ref(adj.reason_sources)}"
        console.print(f"- {adj.symptom}: {adj.drug} {adj.dose}{mark}{ref(adj.sources)}")
    console.print("\n[bold]Monitoring[/]")
    for mon in p.monitoring:
        console.print(f"- {mon.text}{ref(mon.sources)}")
    console.print(f"\n[bold]Naloxone:[/] {p.naloxone.text}{ref(p.naloxone.sources)}")
    console.print("\n[bold]Help[/]")
    for r in p.resources:
        console.print(f"- [bold]{r.name}[/]: {r.contact}. {r.description}{ref(r.sources)}")
    console.print("\n[bold]What the evidence shows[/]")
    for ev in p.evidence:
        console.print(f"- {ev.text}{ref(ev.sources)}")
    if a.patient.out_of_scope:
        listed = ", ".join(a.patient.out_of_scope)
        console.print(f"\n[dim]Outside what the screen looks at (listed, not screened): {listed}[/]")
    console.print("\n[bold]Sources[/]")
    for i, sid in enumerate(ref.order, 1):
        src = a.kb.sources[sid]
        console.print(f"[dim][{i}] {src.title}. {src.organisation}. {src.link}[/]", highlight=False)


def render_interactions(report: InteractionReport, kb: KnowledgeBase, console: Console) -> None:
    """Print the interaction check."""
    ref = _Refs()
    names = ", ".join(kb.drugs[d].name for d in report.drugs) or "none recognised"
    console.print(f"[bold]Medications:[/] {names}")
    if report.with_tramadol:
        table = Table(title="With tramadol", header_style="bold")
        for col in ("Drug", "Severity", "Effect and management"):
            table.add_column(col, overflow="fold")
        for h in report.with_tramadol:
            table.add_row(kb.drugs[h.drug].name, h.severity, f"{h.effect} {h.management}{ref(h.sources)}")
        console.print(table)
    else:
        console.print("No interaction with tramadol in the knowledge base for these drugs.")
    for hit in report.between:
        pair = hit
        console.print(
            f"[bold]{kb.drugs[hit.first].name} + {kb.drugs[hit.second].name}[/]: "
            f"{pair.severity}. {pair.effect} {pair.management}{ref(pair.sources)}"
        )
    if report.unrecognised:
        console.print(f"[yellow]Not recognised:[/] {', '.join(report.unrecognised)}")
    for i, sid in enumerate(ref.order, 1):
        src = kb.sources[sid]
        console.print(f"[dim][{i}] {src.title}. {src.link}[/]", highlight=False)
