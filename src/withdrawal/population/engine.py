"""What every engine (``duckdb_engine``, ``spark_engine``) takes and returns.

The engines' common types live here, so that neither engine imports the other and
``screen.py`` can name them without importing an engine (and so DuckDB or PySpark).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from withdrawal.population.export import BadLine

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("duckdb", "spark")

Progress = Callable[[str, int, int], None]
"""Told after each stage: the stage's name, stages done, stages in all."""


@dataclass(frozen=True)
class EngineResult:
    patients_path: Path
    by_group: list[dict[str, Any]]  # the (age_band, sex) count rows of ``facts.summary_sql``
    bad_lines: tuple[BadLine, ...]
    patients: int
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage, in order


class StageClock:
    """Seconds spent in each stage, in order, with the progress callback told after each."""

    def __init__(self, steps: int, progress: Progress | None) -> None:
        self.steps = steps
        self.progress = progress
        self.done = 0
        self.stages: dict[str, float] = {}
        self._last = time.perf_counter()

    def tick(self, stage: str) -> None:
        self.done += 1
        now = time.perf_counter()
        self.stages[stage] = round(now - self._last, 3)
        self._last = now
        if self.progress is not None:
            self.progress(stage, self.done, self.steps)
