"""Speed of the clinical core.

1. ``withdrawal assess`` on a typical patient, start-up included (wall time of the
   command), against the bare interpreter start-up measured in the same run.
2. The tramadol safety screen in-process on one core (patients per second), over a mix of
   patients (the shared vignettes varied at random), against validation alone as a baseline.

Run: .venv/bin/python benchmarks/core_assess.py [--runs 15] [--patients 20000]
Targets (issue 2): assess well under a second; screen at least 2,000 patients per second.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "patient.json"


def _median_wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _patients(n: int, seed: int) -> list[dict[str, Any]]:
    from withdrawal.knowledge.loader import default_kb

    kb = default_kb()
    rnd = random.Random(seed)
    drugs = sorted(d.name for d in kb.vocabulary.drugs)
    conds = sorted(kb.conditions)
    out = []
    for _ in range(n):
        out.append({
            "age_years": rnd.randint(10, 90),
            "sex": rnd.choice(["female", "male"]),
            "opioid": {"substance": rnd.choice(["heroin", "fentanyl", "methadone", "oxycodone"]),
                       "hours_since_last_use": rnd.uniform(0, 120)},
            "conditions": rnd.sample(conds, rnd.randint(0, 2)),
            "medications": [{"name": d} for d in rnd.sample(drugs, rnd.randint(0, 4))],
            "creatinine_clearance_ml_min": rnd.choice([None, 20, 45, 90]),
            "cyp2d6_phenotype": rnd.choice([None, "poor", "normal", "ultrarapid"]),
        })
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--patients", type=int, default=20000)
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    except (AttributeError, OSError):
        pass

    exe = str(Path(sys.executable).with_name("withdrawal"))
    bare = _median_wall([sys.executable, "-c", "pass"], args.runs)
    cli = _median_wall([exe, "assess", str(EXAMPLE), "--format", "json"], args.runs)
    cli_text = _median_wall([exe, "assess", str(EXAMPLE)], args.runs)
    print(f"interpreter start-up (baseline): {bare * 1000:7.1f} ms")
    print(f"withdrawal assess --format json: {cli * 1000:7.1f} ms  ({cli / bare:.1f}x baseline)")
    print(f"withdrawal assess (text report): {cli_text * 1000:7.1f} ms  ({cli_text / bare:.1f}x baseline)")

    from withdrawal.knowledge.loader import default_kb
    from withdrawal.patient import parse_patient, resolve
    from withdrawal.safety import screen_tramadol

    kb = default_kb()
    raws = _patients(args.patients, seed=1)
    t0 = time.perf_counter()
    parsed = [parse_patient(r) for r in raws]
    t_parse = time.perf_counter() - t0
    t0 = time.perf_counter()
    resolved = [resolve(p, kb) for p in parsed]
    t_resolve = time.perf_counter() - t0
    t0 = time.perf_counter()
    verdicts = [screen_tramadol(p, kb).verdict for p in resolved]
    t_screen = time.perf_counter() - t0
    n = len(raws)
    print(f"patients: {n}; verdicts: " + json.dumps({v: verdicts.count(v) for v in sorted(set(verdicts))}))
    print(f"validate only (baseline):        {n / t_parse:10.0f} patients/s")
    print(f"resolve names and codes:         {n / t_resolve:10.0f} patients/s")
    rate = n / t_screen
    print(f"screen (resolved patients):      {rate:10.0f} patients/s  (target 2,000/s: {rate / 2000:.1f}x)")
    total = t_parse + t_resolve + t_screen
    print(f"validate + resolve + screen:     {n / total:10.0f} patients/s  ({total / t_parse:.1f}x validation time)")


if __name__ == "__main__":
    main()
