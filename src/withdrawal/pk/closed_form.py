"""Closed-form tramadol/M1 concentrations as sums of exponentials, vectorised over patients.

The tramadol model is a chain (ER release -> gut -> tramadol -> M1, plus gut -> M1), so the
response to one dose is ``sum_i c_i exp(-lambda_i t)`` with partial-fraction coefficients
``1 / prod_{j != i} (lambda_j - lambda_i)``. Equal rates make those singular; rates closer than
``SEPARATION`` (relative) are pulled apart by that much, an exact solution of a model whose
rate differs by at most that much. In float64 use that is 1e-8, about the square root of the
float64 resolution: the model error (~1e-8) and the cancellation in the partial fractions
(~1e-16 / 1e-8) then both stay far below the 1e-6 agreement with solve_ivp, also for equal
rates (KA = KM, or KM = CL/V). The float32 population kernel passes 1e-3 so that
cancellation stays below float32 resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
SEPARATION = 1e-8


def chain_coefficients(rates: Sequence[FloatArray]) -> list[FloatArray]:
    """Coefficients of exp(-rate_i t) in the convolution of exp(-rate_j t) over all j."""
    out = []
    for i, li in enumerate(rates):
        den = np.ones_like(li)
        for j, lj in enumerate(rates):
            if j != i:
                den = den * (lj - li)
        out.append(1.0 / den)
    return out


def separate(rates: list[FloatArray], separation: float = SEPARATION) -> list[FloatArray]:
    """Nudge rates that (nearly) coincide so partial fractions stay well conditioned."""
    rates = [np.array(r, dtype=np.float64, copy=True) for r in rates]
    for i in range(len(rates)):
        for j in range(i):
            gap = separation * np.maximum(rates[i], rates[j])
            close = np.abs(rates[i] - rates[j]) < gap
            if np.any(close):
                rates[i] = np.where(close, rates[j] + gap, rates[i])
    return rates


@dataclass(frozen=True)
class Modes:
    """Per-patient exponential modes: conc(t) per mg HCl dose = sum_i coef[:, i] exp(-rate[:, i] t)."""

    rates: FloatArray  # (P, I) 1/h
    tramadol: FloatArray  # (P, I) ng/mL tramadol base per mg HCl
    m1: FloatArray  # (P, I) ng/mL M1 per mg HCl


def tramadol_modes(p: Mapping[str, FloatArray], release: str,
                   separation: float = SEPARATION) -> Modes:
    """Modes of the tramadol model for arrays of individual parameters (names as in models)."""
    ka, v, vm = p["KA"], p["V"], p["VM"]
    k = p["CL"] * p["MCL"] / v
    kf = p["FM"] * p["MF"] * p["CL"] / v
    km = p["KM"] * p["MCLM"]
    f, fpm = p["F"], p["FP"] * p["MF"]
    t_scale = p["SALT"] * 1000.0 / v
    m_scale = p["M1R"] * 1000.0 / vm
    if release == "ir":
        a, b, c = separate([ka, k, km], separation)
        ab, ac, abc = (chain_coefficients(x) for x in ([a, b], [a, c], [a, b, c]))
        rates = [a, b, c]
        tram = [t_scale * f * a * ab[0], t_scale * f * a * ab[1], np.zeros_like(a)]
        m1 = [
            m_scale * (fpm * a * ac[0] + f * a * kf * abc[0]),
            m_scale * f * a * kf * abc[1],
            m_scale * (fpm * a * ac[1] + f * a * kf * abc[2]),
        ]
    else:
        r, a, b, c = separate([p["KREL_ER"], ka, k, km], separation)
        g = r * p["FREL_ER"]
        rab, rac, rabc = (chain_coefficients(x) for x in ([r, a, b], [r, a, c], [r, a, b, c]))
        rates = [r, a, b, c]
        tram = [t_scale * g * f * a * rab[0], t_scale * g * f * a * rab[1],
                t_scale * g * f * a * rab[2], np.zeros_like(a)]
        m1 = [
            m_scale * g * (fpm * a * rac[0] + f * a * kf * rabc[0]),
            m_scale * g * (fpm * a * rac[1] + f * a * kf * rabc[1]),
            m_scale * g * f * a * kf * rabc[2],
            m_scale * g * (fpm * a * rac[2] + f * a * kf * rabc[3]),
        ]
    return Modes(np.stack(rates, 1), np.stack(tram, 1), np.stack(m1, 1))


def concentrations(modes: Modes, doses: Sequence[tuple[float, float]], times: FloatArray
                   ) -> tuple[FloatArray, FloatArray]:
    """Tramadol and M1 (ng/mL) at ``times`` for (time_h, dose_mg HCl) doses; any dose times."""
    ct = np.zeros((modes.rates.shape[0], times.size))
    cm = np.zeros_like(ct)
    for t_dose, amount in doses:
        dt = times - t_dose
        on = dt >= 0
        e = np.exp(-modes.rates[:, :, None] * np.where(on, dt, 0.0)[None, None, :]) * on
        ct += amount * np.einsum("pi,pit->pt", modes.tramadol, e)
        cm += amount * np.einsum("pi,pit->pt", modes.m1, e)
    return ct, cm
