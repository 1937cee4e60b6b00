"""Spark local[2] gives the same rows, summary and bad-line report as DuckDB on the same input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from population_support import AS_OF, rows_by_id, truth_by_id

from withdrawal.knowledge.loader import default_kb
from withdrawal.population.flags import flag_columns
from withdrawal.population.screen import ScreenRun, run_screen

FLAG_COLUMNS = flag_columns(default_kb())


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


_ISOLATED = r"""
import json, sys
from pathlib import Path
from withdrawal.population.screen import run_screen
from withdrawal.population.spark_engine import session

export, out, worker = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]


def probe(_):
    import importlib.util
    return importlib.util.find_spec("withdrawal") is not None


result = {}
for ship in (False, True):
    spark = session("local[1]", 1, python=worker, ship_package=ship)
    can = spark.sparkContext.parallelize([0], 1).map(probe).collect()[0]
    run = run_screen(export, out / str(ship), engine="spark", spark=spark)
    result[str(ship)] = {"import": can, "bad": [[b.file, b.line] for b in run.bad_lines], "patients": run.patients}
    spark.stop()
print(json.dumps(result))
"""


def test_spark_workers_without_the_package(tmp_path: Path) -> None:
    """Python workers are separate processes: the screen (incl. locating bad lines, which runs Python on
    the workers) works when they cannot import ``withdrawal``; with ship_package they can import it."""
    import subprocess
    import sys

    from withdrawal.population.synth import synthesize

    export = tmp_path / "bulk"
    synthesize(export, 40, seed=4, as_of=AS_OF, truth=False)
    cond = export / "Condition.ndjson"
    lines = cond.read_text(encoding="utf-8").splitlines()
    cond.write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n", encoding="utf-8")
    worker = tmp_path / "python-no-site"  # -S: no site-packages, so no (editable) install of withdrawal
    worker.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n', encoding="utf-8")
    worker.chmod(0o755)
    script = tmp_path / "isolated.py"
    script.write_text(_ISOLATED, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script), str(export), str(tmp_path / "out"), str(worker)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["False"] == {"import": False, "bad": [["Condition.ndjson", 2]], "patients": 40}
    assert result["True"] == {"import": True, "bad": [["Condition.ndjson", 2]], "patients": 40}


def test_the_literal_round_trips_on_spark(spark: Any) -> None:
    """The hard cases of ``Dialect.literal`` (test_sql_literal.py) read back as themselves in Spark SQL."""
    from test_sql_literal import HARD

    from withdrawal.population.sql import SparkDialect

    d = SparkDialect()
    got = spark.sql("SELECT " + ", ".join(f"{d.literal(t)} AS v{i}" for i, t in enumerate(HARD))).collect()[0]
    assert tuple(got) == HARD
