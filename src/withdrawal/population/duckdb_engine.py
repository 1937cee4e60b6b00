"""Population screen on embedded DuckDB.

Each resource type is read once with ``read_json`` (explicit column types, ``ignore_errors``),
projected to the flat staging columns of ``facts.py``; rows that do not parse as an object with
the file's resourceType and an id are counted per file and only those files are re-scanned line
by line to report the bad lines (:func:`~withdrawal.population.export.locate_bad_lines`). The
facts, compiled rules and output are one pipelined query written to Parquet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.population.compiler import compile_screen, windows
from withdrawal.population.engine import EngineResult, Progress, StageClock
from withdrawal.population.export import BadLine, Export, ExportFile, locate_bad_lines
from withdrawal.population.facts import DISTINCT_SQL, VIEWS, Distinct, MapTable, facts_sql, map_tables, summary_sql
from withdrawal.population.flags import flag_columns
from withdrawal.population.mme import MmeTable
from withdrawal.population.sql import BitLayout, Dialect
from withdrawal.population.staging import TYPES, duck_columns, stage_sql

DIALECT = Dialect()


def _sql_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join(DIALECT.literal(str(p)) for p in paths) + "]"


def _read(con: duckdb.DuckDBPyConnection, rtype: str, files: Sequence[ExportFile]) -> list[BadLine]:
    """Stage one resource type into table ``raw_<type>``; return the bad lines of its files."""
    table = f"raw_{rtype.lower()}"
    cols = {"resourceType": "VARCHAR", "id": "VARCHAR", **duck_columns(rtype)}
    if not files:
        nulls = ", ".join(f'CAST(NULL AS {t}) AS "{k}"' for k, t in cols.items())
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {stage_sql(DIALECT, rtype)}, TRUE AS ok "
                    f"FROM (SELECT {nulls}) LIMIT 0")
        return []
    spec = "{" + ", ".join(f"{DIALECT.literal(k)}: {DIALECT.literal(v)}" for k, v in cols.items()) + "}"
    # the file name column only when there are several files (one file: a constant in the query below)
    several = len(files) > 1
    filename = "filename" if several else DIALECT.literal(str(files[0].path))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {stage_sql(DIALECT, rtype)}, "
        f"coalesce(resourceType = {DIALECT.literal(rtype)} AND id IS NOT NULL AND id <> '', FALSE) AS ok"
        + (", filename " if several else " ") +
        f"FROM read_json({_sql_list([f.path for f in files])}, format = 'newline_delimited', "
        f"ignore_errors = true, filename = {str(several).lower()}, columns = {spec}, maximum_object_size = 67108864)"
    )
    dirty = con.execute(f"SELECT {filename} AS f, count(*) FROM {table} WHERE NOT ok GROUP BY f").fetchall()
    bad: list[BadLine] = []
    by_path = {str(f.path): f for f in files}
    for filename, count in sorted(dirty):
        f = by_path.get(str(filename))
        found = locate_bad_lines(f) if f is not None else []
        if len(found) < int(count):
            found.append(BadLine(Path(str(filename)).name, 0,
                                 f"{int(count) - len(found)} row(s) rejected without a located line"))
        bad.extend(found)
    return bad


def screen(
    export: Export,
    out: Path,
    as_of: date,
    kb: KnowledgeBase,
    table: MmeTable,
    *,
    progress: Progress | None = None,
    threads: int | None = None,
) -> EngineResult:
    """Screen every patient of the export; write ``out/patients/part-0.parquet``."""
    clock = StageClock(len(TYPES) + 3, progress)
    tick, stages = clock.tick, clock.stages

    con = duckdb.connect(":memory:")
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute("SET preserve_insertion_order = false")
        bad: list[BadLine] = []
        for rtype in TYPES:
            bad.extend(_read(con, rtype, export.of_type(rtype)))
            con.execute(f"CREATE TEMP VIEW stg_{rtype.lower()} AS "
                        f"SELECT COLUMNS(lambda c: c NOT IN ('ok', 'filename')) FROM raw_{rtype.lower()} WHERE ok")
            tick(f"read {rtype}")
        for name, sql in VIEWS.items():
            con.execute(f"CREATE TEMP VIEW {name} AS {sql}")

        values = Distinct(**{k: con.execute(q).fetchall() for k, q in DISTINCT_SQL.items()})
        layout = BitLayout.of(kb)
        for m in map_tables(kb, layout, values):
            _create_map(con, m)
        tick("map codes")

        compiled = compile_screen(kb, DIALECT)
        facts = facts_sql(DIALECT, as_of, table, windows(kb), layout, compiled.set_words, kb.washout_days)
        query = (f"WITH facts AS ({facts}), "
                 f"ruled AS ({compiled.rules_sql}) {compiled.output_sql}")
        target = out / "patients"
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.parquet"):
            old.unlink()
        path = target / "part-0.parquet"
        con.execute(f"COPY ({query}) TO {DIALECT.literal(str(path))} (FORMAT parquet, COMPRESSION snappy)")
        tick("screen")
        con.execute(f"CREATE TEMP VIEW screened AS SELECT * FROM read_parquet({DIALECT.literal(str(path))})")
        cur = con.execute(summary_sql(flag_columns(kb)))
        names = [c[0] for c in cur.description or ()]
        groups = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        n = int(con.execute("SELECT count(*) FROM screened").fetchone()[0])  # type: ignore[index]
        tick("summary")
        return EngineResult(patients_path=target, by_group=groups, bad_lines=tuple(bad), patients=n,
                            stages=stages)
    finally:
        con.close()


def _create_map(con: duckdb.DuckDBPyConnection, m: MapTable) -> None:
    """The map as a temp table, built in one statement from its columns bound as lists (no quoting, no
    pyarrow or numpy to import; a batched multi-row INSERT took seconds on a large export's maps)."""
    types = {"STRING": "VARCHAR", "BIGINT": "BIGINT", "INT": "INTEGER", "DOUBLE": "DOUBLE"}
    columns = ", ".join(f"unnest(?::{types[t]}[]) AS {n}" for n, t in m.columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {m.name} AS SELECT {columns}",
                [[r[i] for r in m.rows] for i in range(len(m.columns))])
