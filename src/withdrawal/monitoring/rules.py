"""The monitoring alert definitions of the knowledge base, and the site thresholds no source gives.

Thresholds with a source are read from the knowledge base where they already
live; the rest are site settings passed in by the caller (see :class:`Thresholds`).
"""

from __future__ import annotations

from dataclasses import dataclass

from withdrawal.knowledge.monitoring import AlertDefinition, AlertLevel, MonitoringRules

__all__ = ["AlertDefinition", "AlertLevel", "MonitoringRules", "Thresholds"]


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
