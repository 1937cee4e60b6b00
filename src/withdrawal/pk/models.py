"""Linear compartment models for the event engine: rate matrix and outputs.

Amounts are in mg (tramadol compartments in mg tramadol HCl as dosed, the M1 compartment in mg
M1), volumes in L, so ``A / (V / 1000)`` is ng/mL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from withdrawal.errors import InputError
from withdrawal.pk.params import load_tramadol

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LinearModel:
    """dA/dt = K(params) A + inputs; outputs are linear in A."""

    name: str
    compartments: tuple[str, ...]
    parameters: tuple[str, ...]
    defaults: Mapping[str, float]
    rate_matrix: Callable[[Mapping[str, float]], FloatArray]
    outputs: Callable[[FloatArray, Mapping[str, float]], dict[str, FloatArray]]
    output_names: tuple[str, ...]
    description: str

    @property
    def n(self) -> int:
        return len(self.compartments)

    def resolve(self, overrides: Mapping[str, float]) -> dict[str, float]:
        """Defaults merged with overrides; unknown or missing names are input errors."""
        for key in overrides:
            if key not in self.parameters:
                raise InputError("param", f"unknown parameter for model {self.name}",
                                 value=key, allowed=self.parameters)
        params = {**self.defaults, **overrides}
        missing = [p for p in self.parameters if p not in params]
        if missing:
            raise InputError("param", f"model {self.name} needs a value for {missing[0]} "
                             "(give it as --param NAME=VALUE)", value=None, allowed=self.parameters)
        for key, value in params.items():
            if not np.isfinite(value) or value < 0:
                raise InputError("param", f"{key} must be a finite non-negative number", value=value)
        return params


def _depot1_k(p: Mapping[str, float]) -> FloatArray:
    if p["V"] <= 0:
        raise InputError("param", "V must be > 0", value=p["V"])
    ka, k = p["KA"], p["CL"] / p["V"]
    return np.array([[-ka, 0.0], [ka, -k]])


def _depot1_out(a: FloatArray, p: Mapping[str, float]) -> dict[str, FloatArray]:
    return {"CP": a[:, 1] / (p["V"] / 1000.0)}


DEPOT1 = LinearModel(
    name="depot1",
    compartments=("depot", "central"),
    parameters=("CL", "V", "KA"),
    defaults={},
    rate_matrix=_depot1_k,
    outputs=_depot1_out,
    output_names=("CP",),
    description="one compartment with first-order absorption (NONMEM ADVAN2 TRANS2)",
)

TRAMADOL_PARAMETERS = (
    "F", "KA", "CL", "V", "FM", "FP", "KM", "VM", "FREL_ER", "KREL_ER",
    "MF", "MCL", "MCLM", "SALT", "M1R",
)


def tramadol_defaults() -> dict[str, float]:
    """Typical normal-metabolizer values from the cited data, plus unit multipliers."""
    data = load_tramadol()
    names = ("F", "KA", "CL", "V", "FM", "FP", "KM", "VM", "FREL_ER", "KREL_ER")
    out = {n: data.t(n) for n in names}
    out.update(MF=1.0, MCL=1.0, MCLM=1.0, SALT=data.salt_base_per_hcl, M1R=data.m1_per_hcl)
    return out


def tramadol_rates(p: Mapping[str, float]) -> dict[str, float]:
    """First-order rate constants (1/h) and routing fractions of the tramadol model."""
    if p["V"] <= 0 or p["VM"] <= 0:
        raise InputError("param", "V and VM must be > 0", value=(p["V"], p["VM"]))
    k = p["CL"] * p["MCL"] / p["V"]
    kf = p["FM"] * p["MF"] * p["CL"] / p["V"]
    if kf > k:
        raise InputError("param", "M1 formation clearance exceeds total tramadol clearance",
                         value=kf * p["V"])
    if p["F"] > 1 or p["F"] + p["FP"] * p["MF"] > 1:
        raise InputError("param", "F + FP x MF must not exceed 1 (mass balance)", value=p["F"])
    return {"ka": p["KA"], "k": k, "kf": kf, "km": p["KM"] * p["MCLM"], "kr": p["KREL_ER"]}


def _tramadol_k(p: Mapping[str, float]) -> FloatArray:
    r = tramadol_rates(p)
    k = np.zeros((4, 4))
    k[0, 0] = -r["ka"]
    k[1, 0] = r["ka"] * p["F"]
    k[2, 0] = r["ka"] * p["FP"] * p["MF"] * p["M1R"]
    k[1, 1] = -r["k"]
    k[2, 1] = r["kf"] * p["M1R"]
    k[2, 2] = -r["km"]
    k[3, 3] = -r["kr"]
    k[0, 3] = r["kr"] * p["FREL_ER"]
    return k


def _tramadol_out(a: FloatArray, p: Mapping[str, float]) -> dict[str, FloatArray]:
    return {
        "CP": a[:, 1] * p["SALT"] / (p["V"] / 1000.0),
        "CM1": a[:, 2] / (p["VM"] / 1000.0),
    }


TRAMADOL = LinearModel(
    name="tramadol",
    compartments=("gut", "tramadol", "m1", "er_release"),
    parameters=TRAMADOL_PARAMETERS,
    defaults={},  # filled lazily by get_model so importing does not read the data file
    rate_matrix=_tramadol_k,
    outputs=_tramadol_out,
    output_names=("CP", "CM1"),
    description=(
        "tramadol parent (1 cmt) with first-order absorption from the gut (CMT 1, IR) or "
        "first-order release (CMT 4, ER) and an M1 compartment (CMT 3) fed by presystemic and "
        "systemic CYP2D6 O-demethylation. Doses mg tramadol HCl; CP ng/mL tramadol base, "
        "CM1 ng/mL M1"
    ),
)

MODELS = ("depot1", "tramadol")


def get_model(name: str) -> LinearModel:
    """A model by name, with its default parameters loaded."""
    if name == "depot1":
        return DEPOT1
    if name == "tramadol":
        return LinearModel(**{**TRAMADOL.__dict__, "defaults": tramadol_defaults()})
    raise InputError("model", "unknown model", value=name, allowed=MODELS)
