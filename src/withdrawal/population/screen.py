"""Run the population screen on an export directory with either engine and write the outputs.

Outputs under ``out``: ``patients/`` (Parquet, one row per patient), ``summary.json``,
``population_rates.png`` and ``malformed_lines.csv`` (file, line, error; header only when none).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from withdrawal.errors import InputError
from withdrawal.fhir.reading import READING_VERSION
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.population.duckdb_engine import EngineResult, Progress
from withdrawal.population.export import BadLine, open_export
from withdrawal.population.mme import default_mme
from withdrawal.population.rules import bulk_gaps
from withdrawal.population.summary import build_summary, preload_chart, write_summary

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("duckdb", "spark")


@dataclass(frozen=True)
class ScreenRun:
    engine: Engine
    as_of: date
    patients: int
    bad_lines: tuple[BadLine, ...]
    patients_path: Path
    summary_path: Path
    chart_path: Path
    malformed_path: Path
    seconds: float
    summary: dict[str, Any]
    stages: dict[str, float] = field(default_factory=dict)  # engine seconds per stage


def run_screen(
    export_dir: Path,
    out: Path,
    *,
    engine: str = "duckdb",
    as_of: date | None = None,
    spark_master: str | None = None,
    spark: Any = None,
    progress: Progress | None = None,
    kb: KnowledgeBase | None = None,
) -> ScreenRun:
    """Screen an export. ``as_of`` defaults to the manifest's transactionTime, else today."""
    if engine not in ENGINES:
        raise InputError("engine", "unknown engine", value=engine, allowed=ENGINES)
    if spark_master is not None and engine != "spark":
        raise InputError("spark_master", "only with --engine spark", value=spark_master)
    kb = kb or default_kb()
    table = default_mme()
    export = open_export(export_dir)
    as_of = as_of or export.transaction_time or date.today()
    out.mkdir(parents=True, exist_ok=True)
    preload_chart()  # import matplotlib in a thread while the engine runs (the engines release the GIL)
    start = time.perf_counter()
    result: EngineResult
    chosen: Engine = "duckdb" if engine == "duckdb" else "spark"
    if chosen == "duckdb":
        from withdrawal.population import duckdb_engine

        result = duckdb_engine.screen(export, out, as_of, kb, table, progress=progress)
    else:
        from withdrawal.population import spark_engine

        result = spark_engine.screen(export, out, as_of, kb, table, master=spark_master or "local[*]",
                                     spark=spark, progress=progress)
    seconds = time.perf_counter() - start
    malformed = out / "malformed_lines.csv"
    with malformed.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "line", "error"])
        for b in result.bad_lines:
            w.writerow([b.file, b.line, b.error])
    meta = {
        "engine": engine,
        "as_of": as_of.isoformat(),
        "kb_version": kb.version,
        "fhir_reading_version": READING_VERSION,
        "rules_left_out": list(bulk_gaps(kb)),
        "mme_table": table.table_label,
        "mme_high_dose_threshold": table.threshold,
        "malformed_lines": len(result.bad_lines),
        "seconds": round(seconds, 3),
        "manifest": export.manifest,
    }
    summary = build_summary(result.by_group, meta)
    summary_path, chart_path = write_summary(summary, out)
    return ScreenRun(engine=chosen, as_of=as_of, patients=result.patients, bad_lines=result.bad_lines,
                     patients_path=result.patients_path, summary_path=summary_path, chart_path=chart_path,
                     malformed_path=malformed, seconds=seconds, summary=summary,
                     stages=dict(result.stages))
