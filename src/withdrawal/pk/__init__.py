"""Pharmacokinetic simulator: NONMEM-style event engine, tramadol/M1 model, population runs.

Domain code only: no printing, no CLI imports. The CLI lives in ``withdrawal.cli.pk_cmd``.
Names are loaded on first use, so that the management plan's one-patient summary does not
pay for SciPy's start-up.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from withdrawal.pk.engine import simulate_records
    from withdrawal.pk.events import EventRecord, read_event_csv
    from withdrawal.pk.models import MODELS, get_model
    from withdrawal.pk.params import PHENOTYPES, TramadolData, load_tramadol
    from withdrawal.pk.typical_patient import RegimenSummary, summarise_regimen

_WHERE = {
    "RegimenSummary": "typical_patient",
    "summarise_regimen": "typical_patient",
    "simulate_records": "engine",
    "EventRecord": "events",
    "read_event_csv": "events",
    "MODELS": "models",
    "get_model": "models",
    "PHENOTYPES": "params",
    "TramadolData": "params",
    "load_tramadol": "params",
}

__all__ = [
    "MODELS",
    "PHENOTYPES",
    "EventRecord",
    "RegimenSummary",
    "TramadolData",
    "get_model",
    "load_tramadol",
    "read_event_csv",
    "simulate_records",
    "summarise_regimen",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"withdrawal.pk.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'withdrawal.pk' has no attribute {name!r}")
