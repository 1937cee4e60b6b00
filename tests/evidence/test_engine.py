"""Unit tests of effect sizes, special cases and errors of the engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from withdrawal.errors import InputError
from withdrawal.evidence import meta
from withdrawal.evidence.effects import effect_sizes_given, escalc_binary, escalc_continuous
from withdrawal.evidence.meta import ConvergenceError, pool, rma, zeroin


def test_zero_cell_adds_half_to_every_cell_of_that_study_only() -> None:
    es = escalc_binary("OR", [0, 5], [10, 10], [3, 4], [10, 10])
    assert es.adjusted == (True, False)
    assert es.yi[0] == pytest.approx(math.log((0.5 * 7.5) / (10.5 * 3.5)))
    assert es.vi[0] == pytest.approx(1 / 0.5 + 1 / 10.5 + 1 / 3.5 + 1 / 7.5)
    assert es.yi[1] == pytest.approx(math.log((5 * 6) / (5 * 4)))


def test_smd_is_hedges_g_with_large_sample_variance() -> None:
    es = escalc_continuous("SMD", [55], [47], [155], [75], [64], [156])
    # metafor 3.8-1, dat.normand1999 study 1: yi -0.355169640940107, vi 0.0130646755415297
    assert es.yi[0] == pytest.approx(-0.355169640940107, rel=1e-12)
    assert es.vi[0] == pytest.approx(0.0130646755415297, rel=1e-12)


def test_all_equal_effects_give_zero_tau2_and_knha_se_zero() -> None:
    res = rma([0.2, 0.2, 0.2], [0.1, 0.2, 0.3], method="REML", test="knha")
    assert res.tau2 == 0 and res.q == pytest.approx(0, abs=1e-15)
    assert res.i2 == 0


def test_homogeneous_data_truncate_tau2_at_zero() -> None:
    # SJ is positive by construction (tau2_0 * Q_w / (k-1)), as in metafor
    for method in ("FE", "DL", "REML", "PM", "ML", "HE"):
        res = rma([0.1, 0.12, 0.11, 0.09], [0.5, 0.4, 0.6, 0.5], method=method)
        assert res.tau2 == 0, method


def test_zeroin_agrees_with_scipy_brentq() -> None:
    def f(x: float) -> float:
        return x**3 - 2 * x - 5

    root, ok = zeroin(f, 2.0, 3.0, f(2.0), f(3.0), tol=1e-12)
    assert ok and root == pytest.approx(optimize.brentq(f, 2, 3), abs=1e-11)


def test_pm_above_search_interval_raises() -> None:
    with pytest.raises(ConvergenceError, match="PM"):
        # mad(yi) = 0, so the interval is metafor's [0, 100]; tau^2 is about 2e7
        rma([0.0, 0.0, 0.0, 0.0, 1e4], [1e-6] * 5, method="PM")


def test_reml_nonconvergence_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meta, "MAXITER", 0)
    with pytest.raises(ConvergenceError, match="REML"):
        rma([0.1, 0.9, -0.5, 1.2], [0.01, 0.02, 0.03, 0.01], method="REML")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"method": "XX"}, "method"), ({"test": "t"}, "test"), ({"level": 120}, "level")],
)
def test_bad_options_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as err:
        pool(effect_sizes_given([0.1, 0.2], [0.1, 0.1]), **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: effect_sizes_given([0.1], [0.0]), "vi"),
        (lambda: effect_sizes_given([0.1, 0.2], [0.1]), "vi"),
        (lambda: escalc_binary("RR", [12], [10], [1], [10]), "events_treatment"),
        (lambda: escalc_binary("MD", [1], [10], [1], [10]), "measure"),
        (lambda: escalc_continuous("SMD", [1], [1], [1], [1], [1], [5]), "total_treatment"),
        (lambda: effect_sizes_given([float("nan")], [0.1]), "yi"),
    ],
)
def test_bad_input_names_the_field(call, field: str) -> None:
    with pytest.raises(InputError) as err:
        call()
    assert err.value.field == field


def test_back_transform_for_ratio_measures() -> None:
    es = escalc_binary("RR", [26], [36], [28], [31])
    res = pool(es, "FE")
    assert res.back(res.estimate) == pytest.approx((26 / 36) / (28 / 31))
    d = res.to_dict()
    assert d["back_transformed"]["estimate"] == pytest.approx(np.exp(res.estimate))


@pytest.mark.xfail(strict=True, reason="vi = 0 is allowed by metafor for FE/HE/SJ fits; "
                   "this engine requires positive sampling variances")
def test_zero_variance_study_like_metafor() -> None:
    rma([0.1, 0.3], [0.0, 0.1], method="HE")
