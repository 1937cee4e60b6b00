"""Run the population screen on an export directory with either engine and write the outputs.

Outputs under ``out``: ``patients/`` (Parquet, one row per patient), ``summary.json``,
``population_rates.png`` (unless ``chart=False``) and ``malformed_lines.csv`` (file, line, error; header
only when none). Each engine and the chart library are imported only by a run that uses them.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from withdrawal.errors import InputError
from withdrawal.fhir.reading import READING_VERSION
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.population.compiler import bulk_gaps
from withdrawal.population.engine import ENGINES, Engine, EngineResult, Progress
from withdrawal.population.export import BadLine, open_export
from withdrawal.population.summary import MIN_CELL, build_summary, preload_chart, suppress, write_summary


@dataclass(frozen=True)
class ScreenRun:
    engine: Engine
    as_of: date
    patients: int
    bad_lines: tuple[BadLine, ...]
    patients_path: Path
    summary_path: Path
    chart_path: Path | None  # None when no chart was asked for
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
    min_cell: int = MIN_CELL,
    pseudonym_key: bytes | None = None,
    csv_copy: bool = False,
    chart: bool = True,
) -> ScreenRun:
    """Screen an export. ``as_of`` defaults to the manifest's transactionTime, else today.

    ``min_cell``: counts from 1 to ``min_cell - 1`` are suppressed in the summary and chart
    (:func:`~withdrawal.population.summary.suppress`). ``pseudonym_key``: the per-patient output carries
    ``HMAC-SHA256(key, patient id)`` (hex) instead of the id. ``csv_copy``: ``patients.csv`` as well.
    ``chart``: ``population_rates.png`` (the only use of the chart library).
    """
    if min_cell < 1:
        raise InputError("min_cell", "must be at least 1 (1 suppresses nothing)", value=min_cell)
    if pseudonym_key is not None and len(pseudonym_key) < MIN_KEY_BYTES:
        raise InputError("pseudonym_key", f"needs at least {MIN_KEY_BYTES} bytes of key material",
                         value=f"{len(pseudonym_key)} bytes")
    if engine not in ENGINES:
        raise InputError("engine", "unknown engine", value=engine, allowed=ENGINES)
    if spark_master is not None and engine != "spark":
        raise InputError("spark_master", "only with --engine spark", value=spark_master)
    kb = kb or default_kb()
    table = kb.mme
    export = open_export(export_dir)
    as_of = as_of or export.transaction_time or date.today()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result: EngineResult
    chosen: Engine = "duckdb" if engine == "duckdb" else "spark"
    # the chart library is imported in a thread while the engine reads (the engines release the GIL);
    # started after the knowledge base and the engine are imported, so as not to hold them up
    if chosen == "duckdb":
        from withdrawal.population import duckdb_engine

        if chart:
            preload_chart()
        result = duckdb_engine.screen(export, out, as_of, kb, table, progress=progress)
    else:
        from withdrawal.population import spark_engine

        if chart:
            preload_chart()
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
    if pseudonym_key is not None:
        pseudonymize(result.patients_path, pseudonym_key)
    meta["patient_ids"] = "HMAC-SHA256 pseudonyms (keyed)" if pseudonym_key is not None else "as in the export"
    if csv_copy:
        meta["csv"] = str(write_csv(result.patients_path, out / "patients.csv"))
    summary = suppress(build_summary(result.by_group, meta, kb.population_flags), min_cell)
    summary_path, chart_path = write_summary(summary, out, with_chart=chart)
    return ScreenRun(engine=chosen, as_of=as_of, patients=result.patients, bad_lines=result.bad_lines,
                     patients_path=result.patients_path, summary_path=summary_path, chart_path=chart_path,
                     malformed_path=malformed, seconds=seconds, summary=summary,
                     stages=dict(result.stages))


MIN_KEY_BYTES = 16


def pseudonymize(patients: Path, key: bytes) -> None:
    """Replace ``patient_id`` in every Parquet part by its keyed hash (HMAC-SHA256, hex): stable for one
    key, so outputs of one site link up, and not reversible or recomputable without the key."""
    import hashlib
    import hmac

    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    for part in sorted(patients.glob("*.parquet")):
        table = pq.read_table(part)
        ids = table.column("patient_id").to_pylist()
        hashed = pa.array([None if i is None else hmac.new(key, str(i).encode(), hashlib.sha256).hexdigest()
                           for i in ids], pa.string())
        table = table.set_column(table.schema.get_field_index("patient_id"), "patient_id", hashed)
        pq.write_table(table, part, compression="snappy")


def write_csv(patients: Path, target: Path) -> Path:
    """The per-patient rows as one CSV (lists, the finding and option codes, joined with ``;``)."""
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped]
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]
    import pyarrow.dataset as ds  # type: ignore[import-untyped]

    table = ds.dataset(patients, format="parquet").to_table()
    table = table.sort_by("patient_id")
    for i, fld in enumerate(table.schema):
        if pa.types.is_list(fld.type):
            table = table.set_column(i, pa.field(fld.name, pa.string()), pc.binary_join(table.column(i), ";"))
    pacsv.write_csv(table, target)
    return target
