"""Benchmark of the population screen (issue 7).

Synthesises N patients (default 1,000,000) as FHIR Bulk NDJSON, then times, each in a fresh
subprocess so that peak memory (ru_maxrss) is per phase:

* floor: DuckDB merely reading the same NDJSON files with the same column types into memory;
* duckdb: the full screen as `withdrawal population screen` runs it (the CLI's imports, read, map codes,
  facts, compiled rules, Parquet, summary and chart; ``--no-chart``: without the chart);
* spark (with --spark): the full screen on Spark local[*], on --spark-n patients (driver and JVM
  peak memory; when it screens the same export, its rows are checked equal to DuckDB's).

Floor and full runs are interleaved (load from other processes hits both alike); it reports best
and median wall time and median CPU time (user + sys, less sensitive to other load) of each whole
process (interpreter start-up, imports and exit included), the ratios (target: full at most 1.5x
the floor), and the engine's seconds per stage for the best full run.

    .venv/bin/python benchmarks/population_screen.py [--n 1000000] [--dir /tmp/pop_bench] [--repeat 3]
        [--spark [--spark-n N]] [--reuse] [--no-chart]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _phase(name: str, export: Path, out: Path, chart: bool = True) -> dict[str, float]:
    start = time.perf_counter()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage0.ru_utime + usage0.ru_stime
    extra: dict[str, float] = {}
    if name == "floor":
        import duckdb

        from withdrawal.population.export import open_export
        from withdrawal.population.staging import TYPES, duck_columns

        exp = open_export(export)
        con = duckdb.connect()
        extra["startup_seconds"] = time.perf_counter() - start
        rows = 0
        for rtype, cols in ((t, duck_columns(t)) for t in TYPES):
            files = exp.of_type(rtype)
            if not files:
                continue
            spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in {"resourceType": "VARCHAR", "id": "VARCHAR",
                                                                 **cols}.items()) + "}"
            paths = "[" + ", ".join(f"'{f.path}'" for f in files) + "]"
            con.execute(f"CREATE TEMP TABLE t_{rtype} AS SELECT * FROM read_json({paths}, "
                        f"format = 'newline_delimited', ignore_errors = true, columns = {spec})")
            rows += con.execute(f"SELECT count(*) FROM t_{rtype}").fetchone()[0]  # type: ignore[index]
        extra["rows"] = rows
    elif name in ("duckdb", "spark"):
        import withdrawal.cli  # noqa: F401  (what `withdrawal population screen` imports before it runs)
        from withdrawal.population.screen import run_screen

        first: list[float] = []

        def progress(_stage: str, _done: int, _total: int) -> None:
            if not first:
                first.append(time.perf_counter())

        options: dict[str, Any] = {} if chart else {"chart": False}  # only when asked: older revisions lack it
        run = run_screen(export, out, engine=name, progress=progress, **options)
        # the engine's first stage is its first read: it began that stage's seconds before the first tick
        extra["startup_seconds"] = first[0] - next(iter(run.stages.values())) - start
        extra["patients"] = run.patients
        extra["engine_seconds"] = run.seconds
        extra.update({f"stage {k}": v for k, v in run.stages.items()})
        if name == "spark":
            extra["jvm_peak_rss_mb"] = _children_peak_mb()
    elif name == "synth":
        from withdrawal.population.synth import synthesize

        n = int(out.name)
        synthesize(export, n, seed=7, truth=False)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": usage.ru_maxrss / 1024, **extra}


def _children_peak_mb() -> float:
    """Peak RSS (VmHWM) of this process's live children, e.g. Spark's JVM (Linux /proc; 0 elsewhere)."""
    me, total = os.getpid(), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == me:
                for line in (stat.parent / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


def _run(name: str, export: Path, out: Path, *extra: str) -> dict[str, float]:
    """One phase in a fresh interpreter; ``process_seconds`` and ``process_cpu_seconds`` are its whole life
    (interpreter start-up, imports and exit included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--phase", name, "--export", str(export), "--out", str(out),
                           *extra], check=True, capture_output=True, text=True)
    process = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "process_seconds": process,
            "process_cpu_seconds": cpu}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/pop_bench"))
    ap.add_argument("--spark", action="store_true", help="also time Spark local[*]")
    ap.add_argument("--spark-n", type=int, default=None, help="patients for the Spark run (default --n)")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing export of the same size")
    ap.add_argument("--repeat", type=int, default=3, help="floor/full runs, interleaved; the best of each is used")
    ap.add_argument("--no-chart", action="store_true", help="full screen without population_rates.png")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--export", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(_phase(args.phase, args.export, args.out, chart=not args.no_chart)))
        return

    def export_of(n: int) -> tuple[Path, dict[str, float] | None]:
        export = args.dir / f"export_{n}"
        if args.reuse and (export / "manifest.json").is_file():
            return export, None
        return export, _run("synth", export, Path(str(n)))

    export, synth = export_of(args.n)
    size_mb = sum(p.stat().st_size for p in export.glob("*.ndjson*")) / 2**20
    if synth:
        print(f"synth      {args.n:>9,} patients  {synth['seconds']:8.1f} s  peak {synth['peak_rss_mb']:7.0f} MiB"
              f"  ({size_mb:,.0f} MiB NDJSON)")
    floors, fulls = [], []
    for _ in range(max(1, args.repeat)):  # interleaved, so that load from other processes hits both alike
        floors.append(_run("floor", export, args.dir / "out_floor"))
        fulls.append(_run("duckdb", export, args.dir / "out_duckdb", *(["--no-chart"] if args.no_chart else [])))
    key = "process_seconds"  # the whole process, as a user of the command waits for it
    floor = min(floors, key=lambda r: r[key])
    full = min(fulls, key=lambda r: r[key])
    med_floor = statistics.median(r[key] for r in floors)
    med_full = statistics.median(r[key] for r in fulls)
    cpu_floor = statistics.median(r["process_cpu_seconds"] for r in floors)
    cpu_full = statistics.median(r["process_cpu_seconds"] for r in fulls)
    print("runs (s)   floor " + " ".join(f"{r[key]:.2f}" for r in floors)
          + " | full " + " ".join(f"{r[key]:.2f}" for r in fulls) + "  (whole process)")
    print(f"floor      DuckDB read_json of the same NDJSON   {floor[key]:6.2f} s best, {med_floor:.2f} s median, "
          f"cpu {cpu_floor:.1f} s, peak {floor['peak_rss_mb']:.0f} MiB  ({int(floor['rows']):,} resources)")
    print(f"duckdb     full screen                           {full[key]:6.2f} s best, {med_full:.2f} s median, "
          f"cpu {cpu_full:.1f} s, peak {full['peak_rss_mb']:.0f} MiB  ({int(full['patients']):,} patients)")
    print(f"           start-up before the first read, and exit: "
          f"{full[key] - full['seconds'] + full['startup_seconds']:.2f} s "
          f"(floor {floor[key] - floor['seconds'] + floor['startup_seconds']:.2f} s)")
    print("stages     " + ", ".join(f"{k[6:]} {v:.2f}" for k, v in full.items() if k.startswith("stage ")))
    print(f"ratio      full / floor: best {full[key] / floor[key]:.2f}x, "
          f"median {med_full / med_floor:.2f}x, cpu {cpu_full / cpu_floor:.2f}x, per pair "
          + " ".join(f"{b[key] / a[key]:.2f}" for a, b in zip(floors, fulls, strict=True))
          + "  (target <= 1.5x)")
    if args.spark:
        spark_export = export
        if args.spark_n and args.spark_n != args.n:
            spark_export, _ = export_of(args.spark_n)
        sp = _run("spark", spark_export, args.dir / "out_spark")
        print(f"spark      local[*] full screen, incl. JVM start {sp['seconds']:8.1f} s  "
              f"(engine {sp['engine_seconds']:.1f} s)  driver peak {sp['peak_rss_mb']:.0f} MiB, "
              f"JVM peak {sp['jvm_peak_rss_mb']:.0f} MiB  "
              f"({int(sp['patients']):,} patients)")
        if spark_export == export:
            print(f"identical  Spark rows == DuckDB rows (every column): {_same_rows(args.dir)}")


def _same_rows(root: Path) -> bool:
    import duckdb

    con = duckdb.connect()
    a, b = (f"read_parquet('{root / d / 'patients'}/*.parquet')" for d in ("out_duckdb", "out_spark"))
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {a}").fetchall()]
    if cols != [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {b}").fetchall()]:
        return False
    sel = ", ".join(cols)
    diff = (f"SELECT count(*) FROM (SELECT {sel} FROM {a} EXCEPT ALL SELECT {sel} FROM {b}) "
            f"UNION ALL SELECT count(*) FROM (SELECT {sel} FROM {b} EXCEPT ALL SELECT {sel} FROM {a})")
    return all(int(r[0]) == 0 for r in con.execute(diff).fetchall())


if __name__ == "__main__":
    main()
