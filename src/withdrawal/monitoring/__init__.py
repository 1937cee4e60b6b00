"""Monitoring of a withdrawal course: trends and alerts (pure domain code, no I/O)."""

from withdrawal.monitoring.alerts import (
    Alert,
    DoseRecord,
    ScaleRecord,
    TrendPoint,
    band_of,
    crisis_signal,
    evaluate,
    trend,
)
from withdrawal.monitoring.rules import AlertDefinition, MonitoringRules, Thresholds

__all__ = [
    "Alert",
    "AlertDefinition",
    "DoseRecord",
    "MonitoringRules",
    "ScaleRecord",
    "Thresholds",
    "TrendPoint",
    "band_of",
    "crisis_signal",
    "evaluate",
    "trend",
]
