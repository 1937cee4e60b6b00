"""Helpers shared by the population tests (imported by name; conftest puts this folder on sys.path)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from withdrawal.population.synth import TRUTH_FILE

AS_OF = date(2026, 1, 1)
N = 1500


def rows_by_id(path: Path) -> dict[str, dict[str, Any]]:
    return {r["patient_id"]: r for r in ds.dataset(path, format="parquet").to_table().to_pylist()}


def truth_by_id(export: Path) -> dict[str, dict[str, Any]]:
    return {r["patient_id"]: r for r in pq.read_table(export / TRUTH_FILE).to_pylist()}
