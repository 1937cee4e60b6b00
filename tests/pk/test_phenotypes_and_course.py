"""Phenotype ordering, phenoconversion, covariates and the plan-facing course summary."""

from __future__ import annotations

import time

import numpy as np
import pytest

from withdrawal.errors import InputError
from withdrawal.pk.params import PHENOTYPES, Patient, adjust_for_patient
from withdrawal.pk.population import Regimen, simulate_population
from withdrawal.pk.typical_patient import summarise_regimen

Q6H = [(6.0 * i, 50.0) for i in range(28)]
BASE = {"strong_cyp2d6_inhibitor": False, "crcl_ml_min": None, "child_pugh": None, "age_years": 40,
            "doses": Q6H, "course_hours": 240.0}


def test_m1_exposure_orders_poor_intermediate_normal_ultrarapid() -> None:
    peaks = [summarise_regimen(phenotype=p, **BASE).peak_m1_ng_ml for p in PHENOTYPES]
    assert peaks == sorted(peaks) and len(set(peaks)) == 4


def test_population_m1_median_orders_by_phenotype() -> None:
    reg = Regimen.build(dose_mg=50, interval_h=6, days=3)
    medians = [simulate_population(reg, n_patients=400, seed=2, phenotype=p)
               .groups[p].m1_cmax_pct[50.0] for p in PHENOTYPES]
    assert medians == sorted(medians)


def test_strong_inhibitor_phenoconverts_to_poor() -> None:
    res = summarise_regimen(phenotype="ultrarapid", **{**BASE, "strong_cyp2d6_inhibitor": True})
    assert res.phenotype_used == "poor"
    assert any("phenoconversion" in a for a in res.assumptions)


def test_summary_reports_threshold_source_and_onset() -> None:
    res = summarise_regimen(phenotype="normal", **BASE)
    assert res.threshold_ng_ml == 84.0
    assert "pk_lee2019" in res.threshold_source
    assert res.onset_h is not None and 0 < res.onset_h < 240
    assert 0 < res.coverage_fraction < 1


def test_poor_metabolizer_never_reaches_default_threshold_on_50mg_q6h() -> None:
    res = summarise_regimen(phenotype="poor", **BASE)
    assert res.onset_h is None and res.coverage_fraction == 0.0


def test_summary_is_fast() -> None:
    summarise_regimen(phenotype="normal", **BASE)
    start = time.perf_counter()
    summarise_regimen(phenotype="normal", **BASE)
    assert time.perf_counter() - start < 0.05


def test_renal_and_hepatic_effects_move_m1_the_cited_way() -> None:
    normal = adjust_for_patient(Patient("normal"))
    renal = adjust_for_patient(Patient("normal", crcl_ml_min=50))
    hepatic = adjust_for_patient(Patient("normal", child_pugh="B"))
    assert renal.m1_clearance_mult == pytest.approx(1 / 1.3)  # +30% M1 exposure, ER label
    assert hepatic.m1_formation_mult == pytest.approx(0.5 * normal.m1_formation_mult)


@pytest.mark.parametrize("kwargs, field", [
    ({"phenotype": "fast"}, "phenotype"),
    ({"phenotype": "normal", "child_pugh": "D"}, "child_pugh"),
    ({"phenotype": "normal", "course_hours": -1.0}, "course_hours"),
    ({"phenotype": "normal", "doses": []}, "doses"),
])
def test_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as err:
        summarise_regimen(**{**BASE, **kwargs})  # type: ignore[arg-type]
    assert err.value.field == field


def test_population_is_reproducible_and_thread_independent() -> None:
    reg = Regimen.build(dose_mg=100, interval_h=6, days=2, taper=[(50, 1)])
    a = simulate_population(reg, n_patients=3000, seed=7, chunk=512, workers=1)
    b = simulate_population(reg, n_patients=3000, seed=7, chunk=512, workers=2)
    for p in a.groups:
        assert a.groups[p].m1_cmax_pct == b.groups[p].m1_cmax_pct
        np.testing.assert_array_equal(a.groups[p].m1_pct[50.0], b.groups[p].m1_pct[50.0])


def test_population_grid_matches_closed_form_for_typical_patient() -> None:
    from withdrawal.pk.closed_form import concentrations, tramadol_modes
    from withdrawal.pk.models import tramadol_defaults
    from withdrawal.pk.population import _grid_kernel

    reg = Regimen.build(dose_mg=100, interval_h=6, days=2, taper=[(50, 1)])
    p = {k: np.array([v]) for k, v in tramadol_defaults().items()}
    ct, cm = _grid_kernel(tramadol_modes(p, "ir"), np.array(reg.doses_mg), 0.25, 24)
    times = np.arange(ct.shape[1]) * 0.25
    rt, rm = concentrations(tramadol_modes(p, "ir"), reg.dose_list(), times)
    np.testing.assert_allclose(ct[0], rt[0], rtol=1e-4, atol=1e-3)  # float32 kernel
    np.testing.assert_allclose(cm[0], rm[0], rtol=1e-4, atol=1e-3)


def test_jax_backend_missing_is_a_clear_error() -> None:
    pytest.importorskip("numpy")
    try:
        import jax  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="JAX is not installed"):
            simulate_population(Regimen.build(dose_mg=50, interval_h=6, days=1),
                                n_patients=10, seed=1, backend="jax")
    else:
        pytest.skip("jax installed")


def test_jax_backend_matches_numpy() -> None:
    """The optional JAX backend (CPU here; GPU where present) gives the NumPy results."""
    pytest.importorskip("jax")
    runs = {
        backend: simulate_population(Regimen.build(dose_mg=100, interval_h=6, days=3), n_patients=300, seed=3,
                                     backend=backend)
        for backend in ("numpy", "jax")
    }
    for ph, g in runs["numpy"].groups.items():
        other = runs["jax"].groups[ph]
        assert other.n == g.n
        np.testing.assert_allclose(other.m1_pct[50.0], g.m1_pct[50.0], rtol=1e-4, atol=1e-3)
