"""Morphine milligram equivalents from the knowledge base's cited factor table (``knowledge/data/mme.yaml``).

The table is the CDC 2022 clinical one (tramadol 0.2); :data:`MmeTable.table_label` says so in every
output. Its schema and checks live in :mod:`withdrawal.knowledge.population`. The MME is computed in
Python (:func:`mg_per_day_to_mme`, the per-patient screen) and in SQL (:func:`mme_sql`, the bulk
facts on DuckDB and Spark); both convert a dose with the table's ``dose_units``, in the same order.
"""

from __future__ import annotations

from withdrawal.knowledge.population import MmeTable
from withdrawal.population.sql import Dialect

__all__ = ["MmeTable", "mg_per_day_to_mme", "mme_sql"]


def mg_per_day_to_mme(drug: str, mg_per_day: float, table: MmeTable) -> float:
    """MME/day of one medication given its daily dose in mg, converted to the unit its factor applies
    to by the table's ``dose_units`` (fentanyl transdermal: mcg/h)."""
    f = table.by_drug().get(drug)
    if f is None:
        return 0.0
    return table.dose_unit(f.dose_unit).from_mg_per_day(mg_per_day) * f.factor


def mme_sql(d: Dialect, table: MmeTable, drug: str, mg_per_day: str) -> str:
    """:func:`mg_per_day_to_mme` as one SQL ``CASE`` over the columns ``drug`` (the drug id) and
    ``mg_per_day`` (DOUBLE), for DuckDB and Spark alike; a drug without a factor is 0."""
    whens = " ".join(
        f"WHEN {d.literal(drug_id)} THEN {table.dose_unit(f.dose_unit).sql_from_mg_per_day(mg_per_day)} * {f.factor!r}"
        for drug_id, f in sorted(table.by_drug().items())
    )
    return f"CASE {drug} {whens} ELSE 0.0 END"
