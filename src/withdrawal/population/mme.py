"""Morphine milligram equivalents: the cited factor table in ``knowledge/data/mme.yaml``.

The table is the CDC 2022 clinical one (tramadol 0.2); :data:`MmeTable.table_label` says so
in every output. Loaded and validated here with the knowledge-base helpers, checked against
the merged source registry and the drug vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import Cited, Frozen, check_citations, data_dir, read_yaml, validate
from withdrawal.knowledge.loader import KnowledgeBase, default_kb

DoseUnit = Literal["mg_per_day", "mcg_per_h"]


class MmeFactor(Frozen):
    drug: str = Field(pattern=r"^[a-z0-9_]+$")
    factor: float = Field(gt=0)
    dose_unit: DoseUnit
    rxcui: str = Field(pattern=r"^[0-9]+$")
    note: str | None = None


class MmeExcluded(Frozen):
    drug: str
    reason: str


class HighDose(Cited):
    mme_per_day_at_least: float = Field(gt=0)
    note: str | None = None


class MmeTable(Cited):
    kb_version: str
    table: str
    table_label: str
    factors: tuple[MmeFactor, ...]
    excluded: tuple[MmeExcluded, ...] = ()
    high_dose: HighDose

    def by_drug(self) -> Mapping[str, MmeFactor]:
        return {f.drug: f for f in self.factors}

    @property
    def threshold(self) -> float:
        return self.high_dose.mme_per_day_at_least


def load_mme(kb: KnowledgeBase, path: Path | None = None) -> MmeTable:
    """Read ``mme.yaml``; every drug must be in the vocabulary with the same RxCUI."""
    path = path or data_dir() / "mme.yaml"
    table = validate(MmeTable, read_yaml(path), path.name)
    check_citations([("mme", table), ("mme.high_dose", table.high_dose)], kb.sources, path.name)
    seen: set[str] = set()
    for f in table.factors:
        drug = kb.drugs.get(f.drug)
        if drug is None:
            raise KnowledgeBaseError(f"{path.name}: unknown drug {f.drug!r}")
        if drug.rxcui != f.rxcui:
            raise KnowledgeBaseError(f"{path.name}: {f.drug} RxCUI {f.rxcui} differs from the vocabulary")
        if f.drug in seen:
            raise KnowledgeBaseError(f"{path.name}: duplicate factor for {f.drug}")
        seen.add(f.drug)
    for ex in table.excluded:
        if ex.drug not in kb.drugs or ex.drug in seen:
            raise KnowledgeBaseError(f"{path.name}: bad exclusion {ex.drug!r}")
    return table


@cache
def default_mme() -> MmeTable:
    """The packaged table, checked against the packaged knowledge base, loaded once."""
    return load_mme(default_kb())


def mg_per_day_to_mme(drug: str, mg_per_day: float, table: MmeTable) -> float:
    """MME/day of one medication given its daily dose in mg (fentanyl: converted to mcg/h)."""
    f = table.by_drug().get(drug)
    if f is None:
        return 0.0
    if f.dose_unit == "mcg_per_h":
        return mg_per_day * 1000.0 / 24.0 * f.factor
    return mg_per_day * f.factor
