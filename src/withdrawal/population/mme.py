"""Morphine milligram equivalents from the knowledge base's cited factor table (``knowledge/data/mme.yaml``).

The table is the CDC 2022 clinical one (tramadol 0.2); :data:`MmeTable.table_label` says so in every
output. Its schema and checks live in :mod:`withdrawal.knowledge.population`.
"""

from __future__ import annotations

from withdrawal.knowledge.population import MmeTable

__all__ = ["MmeTable", "mg_per_day_to_mme"]


def mg_per_day_to_mme(drug: str, mg_per_day: float, table: MmeTable) -> float:
    """MME/day of one medication given its daily dose in mg (fentanyl: converted to mcg/h)."""
    f = table.by_drug().get(drug)
    if f is None:
        return 0.0
    if f.dose_unit == "mcg_per_h":
        return mg_per_day * 1000.0 / 24.0 * f.factor
    return mg_per_day * f.factor
