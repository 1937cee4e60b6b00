"""Benchmark of the population screen (issue 7).

Synthesises N patients (default 1,000,000) as FHIR Bulk NDJSON, then times, each in a fresh
subprocess so that peak memory (ru_maxrss) is per phase:

* floor: DuckDB merely reading the same NDJSON files with the same column types into memory;
* duckdb: the full screen (read, map codes, facts, compiled rules, Parquet, summary and chart);
* spark (with --spark): the full screen on Spark local[*], on --spark-n patients.

    .venv/bin/python benchmarks/population_screen.py [--n 1000000] [--dir /tmp/pop_bench] [--repeat 3]
        [--spark [--spark-n 100000]] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _phase(name: str, export: Path, out: Path) -> dict[str, float]:
    start = time.perf_counter()
    extra: dict[str, float] = {}
    if name == "floor":
        import duckdb

        from withdrawal.population.duckdb_engine import COLUMNS
        from withdrawal.population.export import open_export

        exp = open_export(export)
        con = duckdb.connect()
        rows = 0
        for rtype, cols in COLUMNS.items():
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
        from withdrawal.population.screen import run_screen

        run = run_screen(export, out, engine=name)
        extra["patients"] = run.patients
        extra["engine_seconds"] = run.seconds
    elif name == "synth":
        from withdrawal.population.synth import synthesize

        n = int(out.name)
        synthesize(export, n, seed=7, truth=False)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_rss_mb": peak_mb, **extra}


def _run(name: str, export: Path, out: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--phase", name, "--export", str(export), "--out", str(out)],
                          check=True, capture_output=True, text=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/pop_bench"))
    ap.add_argument("--spark", action="store_true", help="also time Spark local[*]")
    ap.add_argument("--spark-n", type=int, default=None, help="patients for the Spark run (default --n)")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing export of the same size")
    ap.add_argument("--repeat", type=int, default=3, help="floor/full runs, interleaved; the best of each is used")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--export", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(_phase(args.phase, args.export, args.out)))
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
        fulls.append(_run("duckdb", export, args.dir / "out_duckdb"))
    floor = min(floors, key=lambda r: r["seconds"])
    full = min(fulls, key=lambda r: r["seconds"])
    print("runs (s)   floor " + " ".join(f"{r['seconds']:.1f}" for r in floors)
          + " | full " + " ".join(f"{r['seconds']:.1f}" for r in fulls))
    print(f"floor      DuckDB read_json of the same NDJSON   {floor['seconds']:8.1f} s  "
          f"peak {floor['peak_rss_mb']:7.0f} MiB  ({int(floor['rows']):,} resources)")
    print(f"duckdb     full screen                           {full['seconds']:8.1f} s  "
          f"peak {full['peak_rss_mb']:7.0f} MiB  ({int(full['patients']):,} patients)")
    print(f"ratio      full screen / floor (best of {len(floors)})        {full['seconds'] / floor['seconds']:8.2f}x  "
          "(target <= 2x)")
    if args.spark:
        spark_export = export
        if args.spark_n and args.spark_n != args.n:
            spark_export, _ = export_of(args.spark_n)
        sp = _run("spark", spark_export, args.dir / "out_spark")
        print(f"spark      local[*] full screen, incl. JVM start {sp['seconds']:8.1f} s  "
              f"(engine {sp['engine_seconds']:.1f} s)  driver peak {sp['peak_rss_mb']:7.0f} MiB  "
              f"({int(sp['patients']):,} patients)")


if __name__ == "__main__":
    main()
