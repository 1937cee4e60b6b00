"""Population simulation versus a per-patient solve_ivp loop on the same regimen.

Regimen: tramadol HCl IR every 6 h for 14 days (100 mg for 3 days, 75 mg for 4, 50 mg for 7),
15-minute grid (1,344 points), 100,000 patients with between-subject variability and the CPIC
European phenotype mix. The solve_ivp loop integrates the same linear ODEs (LSODA, rtol 1e-6)
for a few patients and is extrapolated. Run: ``.venv/bin/python benchmarks/pk_simulate.py``
(options: --patients N --ivp-patients K --backend numpy|jax --workers W --repeats R).

The population timing is ``simulate_like_cli``: the call ``withdrawal pk simulate --dose-mg 100
--interval-h 6 --days 3 --taper 75:4,50:7 --patients N --seed S`` makes (same defaults,
coverage window from the knowledge base, progress callback); tests/pk/test_benchmark.py checks
that both give the same summary.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp

from withdrawal.pk.models import get_model
from withdrawal.pk.params import Patient, load_tramadol, withdrawal_course
from withdrawal.pk.population import (
    PopulationResult,
    Regimen,
    sample_parameters,
    simulate_population,
)

CLI_ARGS = ["--dose-mg", "100", "--interval-h", "6", "--days", "3", "--taper", "75:4,50:7"]


def regimen() -> Regimen:
    return Regimen.build(dose_mg=100, interval_h=6, days=3, taper=[(75, 4), (50, 7)])


def _no_progress(done: int) -> None:
    """The command's progress callback updates a bar; the benchmark's does nothing."""


def simulate_like_cli(reg: Regimen, *, patients: int, seed: int, backend: str = "numpy",
                      workers: int | None = None,
                      progress: Callable[[int], None] | None = None) -> PopulationResult:
    """Exactly the simulation ``withdrawal pk simulate`` runs with its default options."""
    course = withdrawal_course("heroin")
    return simulate_population(
        reg, n_patients=patients, seed=seed, grid_min=15.0, phenotype=None,
        patient=Patient(strong_cyp2d6_inhibitor=False), threshold_ng_ml=None,
        course_h=course.default_course_h, backend=backend, workers=workers,
        progress=progress or _no_progress)


def ivp_loop(reg: Regimen, n: int, grid_min: float) -> tuple[float, int]:
    """Seconds for n patients with solve_ivp, integrating dose interval by dose interval."""
    model = get_model("tramadol")
    data = load_tramadol()
    rng = np.random.default_rng(0)
    ph = rng.integers(0, 4, n).astype(np.int8)
    params = sample_parameters(rng, ph, Patient(), data)
    m = int(round(reg.interval_h * 60 / grid_min))
    t_local = np.arange(m) * grid_min / 60
    points = 0
    start = time.perf_counter()
    for i in range(n):
        k = model.rate_matrix({name: float(v[i]) for name, v in params.items()})
        y = np.zeros(4)
        for dose in reg.doses_mg:
            y[0] += dose
            sol = solve_ivp(lambda _t, x, k=k: k @ x, (0, reg.interval_h), y, method="LSODA",
                            t_eval=t_local, rtol=1e-6, atol=1e-9, dense_output=True)
            points += sol.y.shape[1]
            y = sol.sol(reg.interval_h)
    return time.perf_counter() - start, points


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--ivp-patients", type=int, default=5)
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    reg = regimen()
    simulate_like_cli(reg, patients=4096, seed=0, backend=args.backend)  # warm-up, load data
    times, cpu = [], []
    for r in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        res = simulate_like_cli(reg, patients=args.patients, seed=r, backend=args.backend,
                                workers=args.workers)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    med, best = statistics.median(times), min(times)
    points = args.patients * res.grid_points
    pop_rate = points / med
    ivp_s, ivp_points = ivp_loop(reg, args.ivp_patients, 15.0)
    ivp_rate = ivp_points / ivp_s
    print(f"cpus: {os.cpu_count()}  backend: {args.backend}  grid points: {res.grid_points}")
    print(f"population: {args.patients:,} patients, median {med:.3f} s / best {best:.3f} s "
          f"of {args.repeats} (CPU {statistics.median(cpu):.3f} s) = {pop_rate:.3e} "
          f"patient-timepoints/s (best {points / best:.3e})")
    print(f"solve_ivp loop: {args.ivp_patients} patients in {ivp_s:.3f} s "
          f"= {ivp_rate:.3e} patient-timepoints/s "
          f"(extrapolated {args.patients:,} patients: {ivp_s / args.ivp_patients * args.patients:,.0f} s)")
    print(f"ratio: {pop_rate / ivp_rate:,.0f}x (median population rate / solve_ivp rate)")


if __name__ == "__main__":
    main()
