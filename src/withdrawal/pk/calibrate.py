"""Reproduce the fitted numbers in tramadol.yaml (M1 KM and VM, ER KREL_ER).

Kept in the package so the derivation is code, not a claim: tests re-run it and compare with
the data file.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from withdrawal.pk.closed_form import concentrations, tramadol_modes
from withdrawal.pk.models import tramadol_defaults

ROUINI_M1_TMAX_H = 2.4  # Rouini 2009, 100 mg oral, mean
ROUINI_M1_CMAX = 88.7  # ng/mL, same study
SWISS_RETARD_TMAX_H = 4.9  # Swiss label, 100 mg retard


def peak(release: str, analyte: str, **overrides: float) -> tuple[float, float]:
    """(tmax_h, Cmax ng/mL) after a single 100 mg HCl dose for the typical patient."""
    p = {k: np.array([v]) for k, v in {**tramadol_defaults(), **overrides}.items()}
    modes = tramadol_modes(p, release)

    def conc(t: float) -> float:
        ct, cm = concentrations(modes, [(0.0, 100.0)], np.array([t]))
        return float((cm if analyte == "m1" else ct)[0, 0])

    res = minimize_scalar(lambda t: -conc(t), bounds=(0.05, 30.0), method="bounded",
                          options={"xatol": 1e-9})
    return float(res.x), conc(float(res.x))


def fit_m1() -> tuple[float, float]:
    """(KM, VM) giving Rouini's mean M1 tmax and Cmax with the other typical values."""
    km = brentq(lambda k: peak("ir", "m1", KM=k, VM=1.0)[0] - ROUINI_M1_TMAX_H, 0.05, 3.0,
                xtol=1e-10)
    cmax_at_v1 = peak("ir", "m1", KM=km, VM=1.0)[1]
    return float(km), float(cmax_at_v1 / ROUINI_M1_CMAX)


def fit_er_release() -> float:
    """KREL_ER giving the Swiss retard tmax."""
    return float(brentq(lambda r: peak("er", "tramadol", KREL_ER=r)[0] - SWISS_RETARD_TMAX_H,
                        0.05, 1.1, xtol=1e-10))
