"""Spark local[2] gives the same rows, summary and bad-line report as DuckDB on the same input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from population_support import AS_OF, rows_by_id, truth_by_id

from withdrawal.population.rules import FLAG_COLUMNS
from withdrawal.population.screen import ScreenRun, run_screen


def test_spark_equals_duckdb_and_truth(dirty_export: tuple[Path, list[tuple[str, int]]], export_small: Path,
                                       duck_run: ScreenRun, spark: Any, tmp_path: Path) -> None:
    root, expected = dirty_export
    run = run_screen(root, tmp_path / "spark", engine="spark", as_of=AS_OF, spark=spark)
    assert sorted((b.file, b.line) for b in run.bad_lines) == expected
    duck = run_screen(root, tmp_path / "duck", engine="duckdb", as_of=AS_OF)
    assert [(b.file, b.line, b.error) for b in run.bad_lines] == [(b.file, b.line, b.error) for b in duck.bad_lines]
    spark_rows, duck_rows = rows_by_id(run.patients_path), rows_by_id(duck.patients_path)
    assert spark_rows == duck_rows
    truth = truth_by_id(export_small)
    for pid, t in truth.items():
        for col in ("verdict", "codes", "mme", *FLAG_COLUMNS):
            assert spark_rows[pid][col] == t[col], (pid, col)
    s_sum, d_sum = json.loads(run.summary_path.read_text()), json.loads(duck.summary_path.read_text())
    for key in ("patients", "overall", "by_age_band", "by_sex"):
        assert s_sum[key] == d_sum[key]
