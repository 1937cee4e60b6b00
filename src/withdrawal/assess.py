"""One patient in, one cited answer out: scales, tramadol screen, management plan and simulation.

This is the function the CLI, the REST API, the pages and the CDS Hooks service all call, so
that every interface gives the same answer for the same patient. What goes in comes from one
intake (:func:`withdrawal.intake.read_patient`).

The answer includes the PK simulation of the printed tramadol schedule (exploratory) wherever
one is printed: it is computed on first use, like the plan, so a CDS order check that needs
the screen only pays for neither; ``simulate=False`` leaves it out (a caller that wants speed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from withdrawal import __version__
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.patient import Patient, PatientIn, parse_patient, resolve
from withdrawal.plan import Plan, build_plan
from withdrawal.plan.plan import Excluded, exclusions
from withdrawal.safety import ScreenResult, screen_tramadol
from withdrawal.scales import ScaleScore, score


@dataclass(frozen=True)
class Assessment:
    patient: Patient
    cows: ScaleScore | None
    sows: ScaleScore | None
    screen: ScreenResult
    kb: KnowledgeBase
    override: str | None = None
    """A clinician's reason for a tramadol schedule despite ``avoid`` (never unlocks ``contraindicated``)."""
    simulate: bool = True
    """Whether the answer includes the PK simulation of a printed tramadol schedule."""
    _plan: Plan | None = field(default=None, repr=False, compare=False)
    _simulation: tuple[dict[str, Any] | None] | None = field(default=None, repr=False, compare=False)

    @property
    def plan(self) -> Plan:
        """The management plan, built on first use (a CDS order check needs the screen only)."""
        if self._plan is None:
            plan = build_plan(self.patient, self.screen, self.cows, self.kb, override=self.override)
            object.__setattr__(self, "_plan", plan)
        assert self._plan is not None
        return self._plan

    @property
    def simulation(self) -> dict[str, Any] | None:
        """The exploratory PK simulation of the printed tramadol schedule (None without one), on first use."""
        if self._simulation is None:
            value = None
            if self.simulate and self.plan.tramadol_regimen:
                from withdrawal.plan.simulation import simulate_for_plan

                value = simulate_for_plan(self.patient, self.plan, self.kb)
            object.__setattr__(self, "_simulation", (value,))
        assert self._simulation is not None
        return self._simulation[0]

    @property
    def excluded(self) -> tuple[Excluded, ...]:
        """The plan's excluded options, without building the whole plan."""
        if self._plan is not None:
            return self._plan.excluded
        return exclusions(self.patient, self.screen, self.kb)

    def cited_ids(self) -> list[str]:
        ids: list[str] = []

        def add(srcs: Iterable[str]) -> None:
            ids.extend(s for s in srcs if s not in ids)

        for sc in (self.cows, self.sows):
            if sc:
                add(sc.sources)
        for f in self.screen.findings:
            add(f.sources)
        add(self.screen.dose_limit.sources)
        add(self.screen.off_label.sources)
        add(self.plan.course.sources)
        for o in self.plan.options:
            add(o.sources)
        for e in self.plan.excluded:
            add(e.sources)
        for o in self.plan.options:
            for f in o.findings:
                add(f.sources)
        for a in self.plan.adjuncts:
            add(a.sources)
            add(a.reason_sources)
        for group in (self.plan.monitoring, self.plan.evidence, self.plan.notes):
            for s in group:
                add(s.sources)
        add(self.plan.naloxone.sources)
        for r in self.plan.resources:
            add(r.sources)
        if self.plan.tramadol_regimen:
            add(self.kb.care.tramadol_taper.sources)
        if self.simulation:
            add(self.simulation.get("sources", ()))
        return ids

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer; field names are a public contract (see README)."""
        return _to_dict(self)


def _scale(sc: ScaleScore | None) -> dict[str, Any] | None:
    if sc is None:
        return None
    return {
        "total": sc.total,
        "max": sc.max_total,
        "band": sc.band,
        "band_label": sc.band_label,
        "items": dict(sc.items),
        "sources": list(sc.sources),
    }


def _to_dict(a: Assessment) -> dict[str, Any]:
    s, p, kb = a.screen, a.plan, a.kb
    regimen = p.tramadol_regimen
    return {
        "kb_version": kb.version,
        "software_version": __version__,
        "disclaimer": p.notes[0].text,
        "cows": _scale(a.cows),
        "sows": _scale(a.sows),
        "course": asdict(p.course),
        "tramadol": {
            "verdict": s.verdict,
            "off_label": s.off_label.text,
            "findings": [asdict(f) for f in s.findings],
            "max_daily_dose_mg": s.max_daily_dose_mg,
            "dose_limit": asdict(s.dose_limit),
            "regimen": [asdict(d) for d in regimen] if regimen else None,
            "regimen_note": kb.care.tramadol_taper.note if regimen else None,
            "regimen_withheld": p.regimen_withheld,
            "override": p.override,
            "simulation": a.simulation,
        },
        "options": [asdict(o) for o in p.options],
        "excluded_options": [asdict(e) for e in p.excluded],
        "adjuncts": [asdict(x) for x in p.adjuncts],
        "monitoring": [m.model_dump(mode="json") for m in p.monitoring],
        "naloxone": p.naloxone.model_dump(mode="json"),
        "resources": [r.model_dump(mode="json") for r in p.resources],
        "evidence": [e.model_dump(mode="json") for e in p.evidence],
        "unrecognised": list(a.patient.unrecognised),
        "not_screened": list(a.patient.unresolved),
        "out_of_scope": list(a.patient.out_of_scope),
        "recognised": {k: list(v) for k, v in a.patient.matched.items()},
        "sources": {
            sid: {
                **kb.sources[sid].model_dump(mode="json", exclude_none=True),
                "link": kb.sources[sid].link,
            }
            for sid in a.cited_ids()
        },
    }


def assess_patient(
    data: PatientIn,
    kb: KnowledgeBase | None = None,
    *,
    simulate: bool = True,
    override: str | None = None,
) -> Assessment:
    """Score, screen and plan for one validated patient (the plan and simulation on first use).

    ``override``: the clinician's recorded reason for asking for a tramadol schedule although
    the verdict is ``avoid``.
    """
    kb = kb or default_kb()
    patient = resolve(data, kb)
    cows = score(data.cows, kb.scales["cows"]) if data.cows is not None else None
    sows = score(data.sows, kb.scales["sows"]) if data.sows is not None else None
    screen = screen_tramadol(patient, kb)
    override = override.strip() if override and override.strip() else None
    return Assessment(patient, cows, sows, screen, kb, override=override, simulate=simulate)


def assess(raw: Any, kb: KnowledgeBase | None = None, **kwargs: Any) -> Assessment:
    """Validate raw JSON data (format version 1) and assess it."""
    return assess_patient(parse_patient(raw), kb, **kwargs)
