"""Population simulation of a tramadol regimen on a regular time grid, in chunks.

The fast path is exact superposition on the grid: with doses every ``m`` grid steps, the
concentration at step ``q*m + s`` is ``sum_i coef_i * A_i[q] * r_i**s`` where
``A_i[q] = rho_i * A_i[q-1] + dose_q`` and ``r_i = exp(-lambda_i * step)``. That is a small
batched matrix product per chunk, in float32 (relative error ~1e-6, far below the model's
uncertainty). Chunks run on a thread pool (NumPy releases the GIL), each with its own random
stream spawned from the seed, so results do not depend on the number of threads.

Only a capped sample of patients per phenotype (the first few of each chunk, so spread over
the run and reproducible) is kept for the percentile bands; onset, coverage and exposure
extremes use every patient.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from withdrawal.errors import InputError
from withdrawal.pk.closed_form import Modes, tramadol_modes
from withdrawal.pk.models import tramadol_defaults
from withdrawal.pk.params import (
    PHENOTYPES,
    Patient,
    Phenotype,
    TramadolData,
    adjust_for_patient,
    load_tramadol,
)

FloatArray = NDArray[np.float64]
Release = Literal["ir", "er"]
Backend = Literal["numpy", "jax"]
PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
BACKENDS = ("numpy", "jax")


@dataclass(frozen=True)
class Regimen:
    """Doses of tramadol HCl every ``interval_h`` hours from time 0, one amount per dose."""

    doses_mg: tuple[float, ...]
    interval_h: float
    release: Release = "ir"

    @classmethod
    def build(cls, *, dose_mg: float, interval_h: float, days: float,
              taper: Sequence[tuple[float, float]] = (), release: str = "ir") -> Regimen:
        """A constant-dose phase then taper steps of (dose_mg, days)."""
        if release not in ("ir", "er"):
            raise InputError("release", "unknown release", value=release, allowed=("ir", "er"))
        if not (interval_h > 0 and math.isfinite(interval_h)):
            raise InputError("interval_h", "must be > 0", value=interval_h)
        doses: list[float] = []
        for step, (amount, n_days) in enumerate([(dose_mg, days), *taper]):
            name = "dose_mg" if step == 0 else "taper"
            if not (amount >= 0 and math.isfinite(amount)) or amount > 1000:
                raise InputError(name, "dose must be 0-1000 mg", value=amount)
            if not (n_days >= 0 and math.isfinite(n_days)) or n_days > 365:
                raise InputError(name, "days must be 0-365", value=n_days)
            doses += [amount] * int(round(n_days * 24 / interval_h))
        if not doses:
            raise InputError("days", "the regimen has no doses", value=days)
        return cls(tuple(doses), interval_h, "er" if release == "er" else "ir")

    @property
    def duration_h(self) -> float:
        return len(self.doses_mg) * self.interval_h

    def dose_list(self) -> list[tuple[float, float]]:
        return [(i * self.interval_h, d) for i, d in enumerate(self.doses_mg)]


@dataclass(frozen=True)
class PhenotypeSummary:
    """Results for one phenotype group."""

    phenotype: Phenotype
    n: int
    band_sample: int
    tramadol_pct: dict[float, FloatArray]
    m1_pct: dict[float, FloatArray]
    onset_h_pct: dict[float, float]
    never_reached: float
    coverage_pct: dict[float, float]
    coverage_mean: float
    tramadol_cmax_pct: dict[float, float]
    m1_cmax_pct: dict[float, float]
    m1_cmax_max: float


@dataclass(frozen=True)
class PopulationResult:
    times_h: FloatArray
    threshold_ng_ml: float
    course_h: float
    n_patients: int
    grid_points: int
    groups: dict[Phenotype, PhenotypeSummary]
    assumptions: tuple[str, ...]


@dataclass
class _Acc:
    """Per-phenotype accumulators for one run."""

    onset: list[NDArray[np.float32]] = field(default_factory=list)
    coverage: list[NDArray[np.float32]] = field(default_factory=list)
    cmax_t: list[NDArray[np.float32]] = field(default_factory=list)
    cmax_m: list[NDArray[np.float32]] = field(default_factory=list)
    band_t: list[NDArray[np.float32]] = field(default_factory=list)
    band_m: list[NDArray[np.float32]] = field(default_factory=list)
    kept: int = 0


def grid_steps(interval_h: float, grid_min: float) -> int:
    """Grid steps per dosing interval; the interval must be a whole number of steps."""
    if not (grid_min > 0 and math.isfinite(grid_min)):
        raise InputError("grid_min", "must be > 0", value=grid_min)
    m = interval_h * 60.0 / grid_min
    if abs(m - round(m)) > 1e-9 or round(m) < 1:
        raise InputError("grid_min", "the dosing interval must be a whole number of grid steps",
                         value=grid_min)
    return int(round(m))


def sample_parameters(rng: np.random.Generator, phenotypes: NDArray[np.int8], patient: Patient,
                      data: TramadolData, variability: bool = True) -> dict[str, FloatArray]:
    """Individual parameters: typical values x phenotype/covariate effects x log-normal BSV."""
    n = phenotypes.size
    base = tramadol_defaults()
    p = {k: np.full(n, v) for k, v in base.items()}
    for idx, ph in enumerate(PHENOTYPES):
        sel = phenotypes == idx
        if not np.any(sel):
            continue
        adj = adjust_for_patient(Patient(ph, patient.strong_cyp2d6_inhibitor, patient.crcl_ml_min,
                                         patient.child_pugh, patient.age_years), data)
        p["MCL"][sel], p["MF"][sel], p["MCLM"][sel] = (
            adj.cl_mult, adj.m1_formation_mult, adj.m1_clearance_mult)
    if variability:
        for name, q in data.variability.items():
            omega = math.sqrt(math.log1p(q.value**2))
            p[name] = p[name] * np.exp(omega * rng.standard_normal(n))
        p["F"] = np.minimum(p["F"], 1.0 - p["FP"] * p["MF"])
    return p


class _Workspace(threading.local):
    """Per-thread output buffers, reused across chunks: fresh 20-MB arrays per chunk cost more
    in page faults than the arithmetic."""

    def get(self, name: str, shape: tuple[int, ...]) -> NDArray[np.float32]:
        buf: NDArray[np.float32] | None = self.__dict__.get(name)
        if buf is None or buf.size < math.prod(shape):
            buf = np.empty(math.prod(shape), dtype=np.float32)
            self.__dict__[name] = buf
        return buf[: math.prod(shape)].reshape(shape)


_WORKSPACE = _Workspace()


def _grid_kernel(modes: Modes, doses: NDArray[np.float64], step_h: float, m: int
                 ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Tramadol and M1 on the grid, shape (P, Q*m), by blockwise superposition.

    The returned arrays are per-thread buffers, valid until the thread's next call.
    """
    rates = modes.rates
    n_p, n_i = rates.shape
    n_q = doses.size
    rho = np.exp(-rates * (m * step_h))
    coef_t = modes.tramadol.astype(np.float32)
    coef_m = modes.m1.astype(np.float32)
    at = _WORKSPACE.get("at", (n_p, n_q, n_i))
    am = _WORKSPACE.get("am", (n_p, n_q, n_i))
    a = np.zeros_like(rates)
    for q in range(n_q):
        a *= rho
        a += doses[q]
        np.multiply(a, coef_t, out=at[:, q, :], casting="same_kind")
        np.multiply(a, coef_m, out=am[:, q, :], casting="same_kind")
    powers = np.exp(-rates[:, :, None] * (step_h * np.arange(m))[None, None, :]).astype(np.float32)
    ct = _WORKSPACE.get("ct", (n_p, n_q, m))
    cm = _WORKSPACE.get("cm", (n_p, n_q, m))
    np.matmul(at, powers, out=ct)
    np.matmul(am, powers, out=cm)
    return ct.reshape(n_p, -1), cm.reshape(n_p, -1)


def _jax_kernel() -> Callable[[Modes, NDArray[np.float64], float, int],
                              tuple[NDArray[np.float32], NDArray[np.float32]]]:
    """The same kernel in JAX (GPU when present); JAX is imported only here."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise InputError("backend", "JAX is not installed; install it with "
                         "`pip install withdrawal[jax]` or use --backend numpy",
                         value="jax", allowed=BACKENDS) from None

    @jax.jit  # type: ignore[untyped-decorator,unused-ignore]
    def run(rates: Any, ct: Any, cmc: Any, doses: Any, step: Any, sgrid: Any) -> Any:
        rho = jnp.exp(-rates * step * sgrid.shape[0])

        def body(a: Any, d: Any) -> Any:
            a = rho * a + d
            return a, a

        _, acc = jax.lax.scan(body, jnp.zeros_like(rates), doses)
        acc = jnp.moveaxis(acc, 0, 1)
        powers = jnp.exp(-rates[:, :, None] * (step * sgrid)[None, None, :])
        t = jnp.matmul(acc * ct[:, None, :], powers).reshape(rates.shape[0], -1)
        m1 = jnp.matmul(acc * cmc[:, None, :], powers).reshape(rates.shape[0], -1)
        return t, m1

    def kernel(modes: Modes, doses: NDArray[np.float64], step_h: float, m: int
               ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        f32 = jnp.float32
        t, m1 = run(jnp.asarray(modes.rates, f32), jnp.asarray(modes.tramadol, f32),
                    jnp.asarray(modes.m1, f32), jnp.asarray(doses, f32), f32(step_h),
                    jnp.arange(m, dtype=f32))
        return np.asarray(t), np.asarray(m1)

    return kernel


def simulate_population(
    regimen: Regimen,
    *,
    n_patients: int,
    seed: int,
    grid_min: float = 15.0,
    phenotype: str | None = None,
    patient: Patient | None = None,
    threshold_ng_ml: float | None = None,
    course_h: float | None = None,
    chunk: int = 2048,
    band_sample: int = 5_000,
    band_every: int = 4,
    backend: str = "numpy",
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    data: TramadolData | None = None,
) -> PopulationResult:
    """Simulate ``n_patients`` virtual patients on ``regimen`` and summarise per phenotype.

    ``phenotype`` fixes everyone's CYP2D6 phenotype; None draws it from the CPIC European
    frequencies. ``course_h`` (default: the regimen length) is the window for coverage.
    """
    data = data or load_tramadol()
    if not 1 <= n_patients <= 100_000_000:
        raise InputError("patients", "must be 1-100,000,000", value=n_patients)
    if backend not in BACKENDS:
        raise InputError("backend", "unknown backend", value=backend, allowed=BACKENDS)
    kernel = _jax_kernel() if backend == "jax" else _grid_kernel
    from withdrawal.pk.params import check_phenotype

    fixed = check_phenotype(phenotype)
    patient = patient or Patient()
    thr = data.m1_threshold.value if threshold_ng_ml is None else threshold_ng_ml
    if not (thr > 0 and math.isfinite(thr)):
        raise InputError("threshold", "must be > 0 ng/mL", value=thr)
    m = grid_steps(regimen.interval_h, grid_min)
    step_h = grid_min / 60.0
    doses = np.asarray(regimen.doses_mg, dtype=np.float64)
    n_grid = doses.size * m
    course = regimen.duration_h if course_h is None else course_h
    if not course > 0:
        raise InputError("course_h", "must be > 0", value=course)
    n_course = min(n_grid, int(math.ceil(course / step_h)))
    freqs = data.phenotype_frequencies.normalised()
    probs = np.array([freqs[p] for p in PHENOTYPES])
    starts = list(range(0, n_patients, chunk))
    seeds = np.random.SeedSequence(seed).spawn(len(starts))
    accs = {p: _Acc() for p in PHENOTYPES}
    per_chunk = max(1, math.ceil(band_sample / len(starts)))

    def run_chunk(i: int) -> tuple[NDArray[np.int8], tuple[NDArray[Any], ...]]:
        size = min(chunk, n_patients - starts[i])
        rng = np.random.default_rng(seeds[i])
        if fixed is None:
            ph = rng.choice(len(PHENOTYPES), size=size, p=probs).astype(np.int8)
        else:
            ph = np.full(size, PHENOTYPES.index(fixed), dtype=np.int8)
        params = sample_parameters(rng, ph, patient, data)
        ct, cm = kernel(tramadol_modes(params, regimen.release, 1e-3), doses, step_h, m)
        above = cm[:, :n_course] >= thr
        cmax_m = cm.max(axis=1)
        hit = (cm[:, :n_course].max(axis=1) if n_course < n_grid else cmax_m) >= thr
        onset = np.where(hit, above.argmax(axis=1) * step_h, np.inf).astype(np.float32)
        cover = (np.count_nonzero(above, axis=1) / n_course).astype(np.float32)
        keep = np.zeros(size, dtype=bool)
        for idx in range(len(PHENOTYPES)):
            keep[np.flatnonzero(ph == idx)[:per_chunk]] = True
        rows = np.flatnonzero(keep)
        return ph, (onset, cover, ct.max(axis=1), cmax_m,
                    ct[rows, ::band_every], cm[rows, ::band_every], keep)

    def collect(ph: NDArray[np.int8], res: tuple[NDArray[Any], ...]) -> None:
        for idx, name in enumerate(PHENOTYPES):
            sel = ph == idx
            if not np.any(sel):
                continue
            acc = accs[name]
            for lst, arr in zip((acc.onset, acc.coverage, acc.cmax_t, acc.cmax_m), res[:4],
                                strict=True):
                lst.append(arr[sel])
            kept = sel[res[6]]
            acc.band_t.append(res[4][kept])
            acc.band_m.append(res[5][kept])
            acc.kept += int(kept.sum())

    n_workers = workers or min(len(starts), os.cpu_count() or 1)
    done = 0
    if backend == "jax" or n_workers == 1:
        for i in range(len(starts)):
            ph, res = run_chunk(i)
            collect(ph, res)
            done += ph.size
            if progress:
                progress(done)
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            for ph, res in pool.map(run_chunk, range(len(starts))):
                collect(ph, res)
                done += ph.size
                if progress:
                    progress(done)
    times = np.asarray((np.arange(n_grid) * step_h)[::band_every], dtype=np.float64)
    groups = {p: _summarise(p, accs[p]) for p in PHENOTYPES if accs[p].onset}
    notes = _population_assumptions(data, patient, fixed, band_sample)
    return PopulationResult(times, thr, course, n_patients, n_grid, groups, notes)


def _pct(values: NDArray[np.float32]) -> dict[float, float]:
    return {q: float(v) for q, v in zip(PERCENTILES, np.percentile(values, PERCENTILES),
                                         strict=True)}


def _summarise(name: Phenotype, acc: _Acc) -> PhenotypeSummary:
    onset = np.concatenate(acc.onset)
    cover = np.concatenate(acc.coverage)
    cmax_t = np.concatenate(acc.cmax_t)
    cmax_m = np.concatenate(acc.cmax_m)
    band_t = np.ascontiguousarray(np.concatenate(acc.band_t).T)  # (time, patients)
    band_m = np.ascontiguousarray(np.concatenate(acc.band_m).T)
    finite = onset[np.isfinite(onset)]
    return PhenotypeSummary(
        phenotype=name,
        n=int(onset.size),
        band_sample=int(band_t.shape[1]),
        tramadol_pct=dict(zip(PERCENTILES, np.percentile(band_t, PERCENTILES, axis=1),
                              strict=True)),
        m1_pct=dict(zip(PERCENTILES, np.percentile(band_m, PERCENTILES, axis=1), strict=True)),
        onset_h_pct=_pct(finite) if finite.size else dict.fromkeys(PERCENTILES, math.inf),
        never_reached=float(1.0 - finite.size / onset.size),
        coverage_pct=_pct(cover),
        coverage_mean=float(cover.mean()),
        tramadol_cmax_pct=_pct(cmax_t),
        m1_cmax_pct=_pct(cmax_m),
        m1_cmax_max=float(cmax_m.max()),
    )


def _population_assumptions(data: TramadolData, patient: Patient, fixed: str | None,
                            band_sample: int) -> tuple[str, ...]:
    notes = [
        "between-subject variability uses total CVs of published summary statistics "
        "(no population-model omegas were readable), so spread is overstated",
        "M1 elimination rate and volume were fitted to one study's mean M1 Cmax and tmax "
        "(Rouini 2009): M1 predictions are exploratory",
        f"percentile bands use about {band_sample} patients per phenotype (a fixed sample); "
        "onset, coverage and extremes use all patients",
        f"M1 threshold {data.m1_threshold.value:g} ng/mL ({', '.join(data.m1_threshold.sources)}) "
        "is an analgesia anchor, not a validated withdrawal-relief level (exploratory)",
    ]
    covariate_notes = adjust_for_patient(
        Patient("normal", patient.strong_cyp2d6_inhibitor, patient.crcl_ml_min,
                patient.child_pugh, patient.age_years), data).assumptions
    notes += [f"all patients: {n}" for n in covariate_notes]
    if fixed is None:
        notes.append(f"phenotypes drawn from {data.phenotype_frequencies.population} CPIC "
                     "frequencies, indeterminate left out")
    return tuple(notes)


def percentile_table(result: PopulationResult) -> Mapping[str, Any]:
    """A JSON-ready summary of a population result (bands omitted)."""
    return {
        "n_patients": result.n_patients,
        "grid_points": result.grid_points,
        "threshold_ng_ml": result.threshold_ng_ml,
        "course_h": result.course_h,
        "assumptions": list(result.assumptions),
        "groups": {
            p: {
                "n": g.n,
                "onset_h_percentiles": _keys(g.onset_h_pct),
                "never_reached_fraction": g.never_reached,
                "coverage_mean": g.coverage_mean,
                "coverage_percentiles": _keys(g.coverage_pct),
                "tramadol_cmax_ng_ml_percentiles": _keys(g.tramadol_cmax_pct),
                "m1_cmax_ng_ml_percentiles": _keys(g.m1_cmax_pct),
                "m1_cmax_ng_ml_max": g.m1_cmax_max,
            }
            for p, g in result.groups.items()
        },
    }


def _keys(d: Mapping[float, float]) -> dict[str, float | None]:
    return {f"p{q:g}": (None if math.isinf(v) else round(v, 4)) for q, v in d.items()}
