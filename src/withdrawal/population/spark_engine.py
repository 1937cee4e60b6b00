"""Population screen on Apache Spark (``local[*]`` or a cluster given by its master URL).

The same staging columns, facts SQL and compiled rules as the DuckDB engine, in Spark SQL
(:class:`~withdrawal.population.sql.SparkDialect`). NDJSON is read with an explicit schema in
PERMISSIVE mode; a line that does not parse lands in ``_corrupt_record`` and is skipped. The bad
lines are then located by scanning only the files that had such rows, with the same line checker
as DuckDB, inside Spark (``textFile().zipWithIndex()``), so a cluster needs no local copy.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.population.compiler import compile_screen, windows
from withdrawal.population.engine import EngineResult, Progress, StageClock
from withdrawal.population.export import BadLine, Export, ExportFile, check_lines
from withdrawal.population.facts import DISTINCT_SQL, VIEWS, Distinct, facts_sql, map_tables, summary_sql
from withdrawal.population.flags import flag_columns
from withdrawal.population.mme import MmeTable
from withdrawal.population.sql import BitLayout, SparkDialect
from withdrawal.population.staging import TYPES, empty_sql, spark_schema, stage_sql

DIALECT = SparkDialect()


def package_root() -> Path:
    """The directory holding the ``withdrawal`` package (``src/`` of a checkout, or site-packages)."""
    import withdrawal

    return Path(withdrawal.__file__).resolve().parent.parent


def session(master: str = "local[*]", shuffle_partitions: int = 8, *, python: str | None = None,
            ship_package: bool = True) -> Any:
    """A SparkSession for ``master`` (``local[*]``, ``spark://HOST:7077``, ...).

    Spark's Python workers are separate processes. ``python`` is their interpreter: by default this
    interpreter (``sys.executable``) on a local master, ``$PYSPARK_PYTHON`` (else Spark's default) on a
    cluster. The screen ships no Python that needs this package (rules go as SQL, the line checker is
    pickled by value), but with ``ship_package`` the workers can import ``withdrawal`` anyway: on a
    local master through ``spark.executorEnv.PYTHONPATH`` (the package's parent directory), on a
    cluster as a zip added with ``addPyFile``."""
    import os

    from pyspark.sql import SparkSession

    local = master.startswith("local")
    worker_python = python or (sys.executable if local else os.environ.get("PYSPARK_PYTHON"))
    builder = SparkSession.builder
    if worker_python:
        builder = builder.config("spark.pyspark.python", worker_python)
        # PySpark's RDD API starts its workers with $PYSPARK_PYTHON (else "python3" on PATH), not the
        # configuration: without this a local session ran whatever "python3" came first on PATH.
        os.environ["PYSPARK_PYTHON"] = worker_python
    if ship_package and local:
        paths = [str(package_root()), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        builder = builder.config("spark.executorEnv.PYTHONPATH", os.pathsep.join(paths))
    spark = (
        builder.master(master)
        .appName("withdrawal-population-screen")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    if ship_package and not local:
        spark.sparkContext.addPyFile(str(_package_zip()))
    return spark


def _package_zip() -> Path:
    """``withdrawal.zip`` of the installed package (sources and data, no caches), for ``addPyFile``."""
    import tempfile
    import zipfile

    root = package_root()
    target = Path(tempfile.mkdtemp(prefix="withdrawal-pkg-")) / "withdrawal.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((root / "withdrawal").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                zf.write(path, path.relative_to(root).as_posix())
    return target


def _read(spark: Any, rtype: str, files: Sequence[ExportFile]) -> tuple[Any, list[BadLine]]:
    schema = f"resourceType STRING, id STRING, {spark_schema(rtype)}, _corrupt_record STRING"
    raw = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .json([str(f.path) for f in files])
        .selectExpr("*", "_metadata.file_path AS filename")
    )
    view = f"src_{rtype.lower()}"
    raw.createOrReplaceTempView(view)
    staged = spark.sql(
        f"SELECT {stage_sql(DIALECT, rtype)}, coalesce(resourceType = {DIALECT.literal(rtype)} AND id IS NOT NULL "
        f"AND id <> '' AND _corrupt_record IS NULL, FALSE) AS ok, filename FROM {view}"
    ).cache()
    dirty = staged.where("NOT ok").groupBy("filename").count().collect()
    bad: list[BadLine] = []
    by_name = {f.path.name: f for f in files}
    for row in sorted(dirty, key=lambda r: str(r["filename"])):
        name = str(row["filename"]).rsplit("/", 1)[-1]
        f = by_name.get(name)
        found = _locate(spark, f) if f is not None else []
        if len(found) < int(row["count"]):
            found.append(BadLine(name, 0, f"{int(row['count']) - len(found)} row(s) rejected without a located line"))
        bad.extend(found)
    staged.where("ok").drop("ok", "filename").createOrReplaceTempView(f"stg_{rtype.lower()}")
    return staged, bad


def _locate(spark: Any, f: ExportFile) -> list[BadLine]:
    from pyspark import cloudpickle

    from withdrawal.population import export as export_module

    # ship the line checker by value: executors of a cluster need not have this package installed
    cloudpickle.register_pickle_by_value(export_module)  # type: ignore[no-untyped-call]
    rtype, name = f.type, f.path.name
    lines = spark.sparkContext.textFile(str(f.path)).zipWithIndex()
    found = lines.mapPartitions(
        lambda part: ((b.line, b.error) for b in check_lines(((i + 1, t) for t, i in part), rtype, name))
    ).collect()
    return [BadLine(name, int(line), str(err)) for line, err in sorted(found)]


def _empty_view(spark: Any, rtype: str) -> None:
    schema = f"resourceType STRING, id STRING, {spark_schema(rtype)}"
    spark.createDataFrame([], schema).createOrReplaceTempView(f"src_{rtype.lower()}")
    spark.sql(empty_sql(DIALECT, rtype)).createOrReplaceTempView(f"stg_{rtype.lower()}")


def screen(
    export: Export,
    out: Path,
    as_of: date,
    kb: KnowledgeBase,
    table: MmeTable,
    *,
    master: str = "local[*]",
    spark: Any = None,
    progress: Progress | None = None,
) -> EngineResult:
    """Screen every patient of the export; write ``out/patients/`` (Parquet part files)."""
    clock = StageClock(len(TYPES) + 3, progress)
    tick, stages = clock.tick, clock.stages

    spark = spark or session(master)
    cached = []
    try:
        bad: list[BadLine] = []
        for rtype in TYPES:
            files = export.of_type(rtype)
            if files:
                staged, found = _read(spark, rtype, files)
                cached.append(staged)
                bad.extend(found)
            else:
                _empty_view(spark, rtype)
            tick(f"read {rtype}")
        for name, sql in VIEWS.items():
            spark.sql(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

        values = Distinct(**{k: [tuple(r) for r in spark.sql(q).collect()] for k, q in DISTINCT_SQL.items()})
        layout = BitLayout.of(kb)
        for m in map_tables(kb, layout, values):
            spark.createDataFrame(list(m.rows), m.ddl()).createOrReplaceTempView(m.name)
        tick("map codes")

        compiled = compile_screen(kb, DIALECT)
        facts = facts_sql(DIALECT, as_of, table, windows(kb), layout, compiled.set_words, kb.washout_days)
        spark.sql(facts).createOrReplaceTempView("facts")
        spark.sql(compiled.rules_sql).createOrReplaceTempView("ruled")
        result = spark.sql(compiled.output_sql)
        target = out / "patients"
        result.write.mode("overwrite").parquet(str(target))
        tick("screen")
        spark.read.parquet(str(target)).createOrReplaceTempView("screened")
        rows = [r.asDict() for r in spark.sql(summary_sql(flag_columns(kb))).collect()]
        n = int(spark.sql("SELECT count(*) FROM screened").collect()[0][0])
        tick("summary")
        return EngineResult(patients_path=target, by_group=rows, bad_lines=tuple(bad), patients=n, stages=stages)
    finally:
        for df in cached:
            df.unpersist()
