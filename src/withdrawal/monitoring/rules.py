"""The monitoring alert definitions (``knowledge/data/monitoring.yaml``), loaded and checked.

Thresholds with a source are read from the knowledge base where they already
live; the rest are site settings passed in by the caller (see :class:`Thresholds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import Cited, Frozen, check_citations, data_dir, read_yaml, validate
from withdrawal.knowledge.loader import KnowledgeBase

AlertLevel = Literal["info", "warning", "critical"]

SETTING_NAMES = frozenset(
    {
        "monitoring_cows_rise_points",
        "monitoring_escalation_days",
        "monitoring_early_refill_days",
        "monitoring_taper_stall_days",
        "monitoring_craving_min_score",
        "monitoring_craving_days",
        "monitoring_sows_crisis_total",
    }
)
KB_REFS = frozenset({"scales.cows.bands", "care.treatments.buprenorphine.start_cows_min", "tramadol.dose_limits"})


class AlertDefinition(Cited):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    level: AlertLevel
    title: str
    message: str
    action: str
    basis: Literal["kb", "setting"]
    kb_ref: str | None = None
    settings: tuple[str, ...] = ()
    note: str | None = None


class MonitoringRules(Frozen):
    kb_version: str
    alerts: tuple[AlertDefinition, ...]

    def by_id(self) -> Mapping[str, AlertDefinition]:
        return {a.id: a for a in self.alerts}


def load_rules(kb: KnowledgeBase, directory: Path | None = None) -> MonitoringRules:
    """Read monitoring.yaml and check every reference, citation and setting name."""
    path = (directory or data_dir()) / "monitoring.yaml"
    rules = validate(MonitoringRules, read_yaml(path), path.name)
    check_citations(((a.id, a) for a in rules.alerts), kb.sources, path.name)
    for a in rules.alerts:
        if a.basis == "kb" and a.kb_ref not in KB_REFS:
            raise KnowledgeBaseError(f"{path.name}: {a.id}: unknown kb_ref {a.kb_ref!r} (allowed: {sorted(KB_REFS)})")
        if a.basis == "setting" and not a.settings:
            raise KnowledgeBaseError(f"{path.name}: {a.id}: basis 'setting' needs the setting names")
        for s in a.settings:
            if s not in SETTING_NAMES:
                raise KnowledgeBaseError(f"{path.name}: {a.id}: unknown setting {s!r}")
    missing = {
        "cows_worsening_on_treatment",
        "buprenorphine_threshold_reached",
        "tramadol_dose_at_limit",
        "tramadol_escalating_doses",
        "tramadol_early_refill",
        "tramadol_taper_stalled",
        "sows_craving_high",
        "patient_crisis_signal",
    } - set(rules.by_id())
    if missing:
        raise KnowledgeBaseError(f"{path.name}: alerts missing: {sorted(missing)}")
    return rules


_LOADED: dict[int, tuple[KnowledgeBase, MonitoringRules]] = {}


def default_rules(kb: KnowledgeBase) -> MonitoringRules:
    """The packaged rules checked against ``kb``, loaded once per knowledge base."""
    hit = _LOADED.get(id(kb))
    if hit is None or hit[0] is not kb:
        hit = (kb, load_rules(kb))
        _LOADED[id(kb)] = hit
    return hit[1]


@dataclass(frozen=True)
class Thresholds:
    """Numbers no source gives: site settings, with the service's documented defaults.

    ``cows_rise_points`` None switches the point-rise test off (band rise still applies).
    """

    cows_rise_points: int | None = None
    escalation_days: int = 3
    early_refill_days: int = 2
    taper_stall_days: int = 3
    craving_min_score: int = 3
    craving_days: int = 2
    # No validated SOWS cut-off exists: a site choice (see Settings.monitoring_sows_crisis_total).
    sows_crisis_total: int = 48
