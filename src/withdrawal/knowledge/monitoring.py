"""Schema of the monitoring alert definitions, ``data/monitoring.yaml``, and their cross-checks.

Thresholds with a source are read from the knowledge base where they already live (``kb_ref``);
the rest are site settings named here and passed in by the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import Cited, Frozen, Source, check_citations

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
    alerts: tuple[AlertDefinition, ...]

    def by_id(self) -> Mapping[str, AlertDefinition]:
        return {a.id: a for a in self.alerts}


def check_monitoring(rules: MonitoringRules, sources: Mapping[str, Source], where: str) -> None:
    """Every citation, knowledge-base reference and setting name known; every alert the service raises defined."""
    check_citations(((a.id, a) for a in rules.alerts), sources, where)
    for a in rules.alerts:
        if a.basis == "kb" and a.kb_ref not in KB_REFS:
            raise KnowledgeBaseError(f"{where}: {a.id}: unknown kb_ref {a.kb_ref!r} (allowed: {sorted(KB_REFS)})")
        if a.basis == "setting" and not a.settings:
            raise KnowledgeBaseError(f"{where}: {a.id}: basis 'setting' needs the setting names")
        for s in a.settings:
            if s not in SETTING_NAMES:
                raise KnowledgeBaseError(f"{where}: {a.id}: unknown setting {s!r}")
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
        raise KnowledgeBaseError(f"{where}: alerts missing: {sorted(missing)}")
