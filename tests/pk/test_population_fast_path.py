"""The fused, block-wise population summaries equal the plain NumPy computation."""

from __future__ import annotations

import numpy as np
import pytest

from withdrawal.pk.closed_form import tramadol_modes
from withdrawal.pk.params import Patient, load_tramadol
from withdrawal.pk.population import (
    PERCENTILES,
    Regimen,
    _chunk_summaries,
    _grid_kernel,
    _numpy_blocks,
    percentiles_along_rows,
    sample_parameters,
)


@pytest.mark.parametrize("release, n_course, block", [("ir", 200, 64), ("ir", 288, 50),
                                                      ("er", 100, 7)])
def test_chunk_summaries_match_full_grid(release: str, n_course: int, block: int) -> None:
    reg = Regimen.build(dose_mg=100, interval_h=6, days=2, taper=[(50, 1)], release=release)
    rng = np.random.default_rng(5)
    ph = rng.integers(0, 4, 300).astype(np.int8)
    modes = tramadol_modes(sample_parameters(rng, ph, Patient(), load_tramadol()), release, 1e-3)
    doses, step, m, thr = np.array(reg.doses_mg), 0.25, 24, 84.0
    ct, cm = (x.copy() for x in _grid_kernel(modes, doses, step, m))
    rows = np.sort(rng.choice(300, 40, replace=False))
    onset, cover, cmax_t, cmax_m, band_t, band_m = _chunk_summaries(
        _numpy_blocks(modes, doses, step, m), 300, thr, n_course, step, rows, 4, block)
    above = cm[:, :n_course] >= thr
    want_onset = np.where(above.any(axis=1), above.argmax(axis=1) * step, np.inf)
    assert 0 < np.isfinite(want_onset).sum() < 300  # both cases occur
    np.testing.assert_array_equal(onset, want_onset.astype(np.float32))
    np.testing.assert_array_equal(cover, (above.sum(axis=1) / n_course).astype(np.float32))
    np.testing.assert_array_equal(cmax_t, ct.max(axis=1))
    np.testing.assert_array_equal(cmax_m, cm.max(axis=1))
    np.testing.assert_array_equal(band_t, ct[rows, ::4])
    np.testing.assert_array_equal(band_m, cm[rows, ::4])


def test_percentiles_along_rows_equal_numpy() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 1000, 5047):
        x = rng.lognormal(size=(30, n)).astype(np.float32)
        np.testing.assert_array_equal(percentiles_along_rows(x), np.percentile(x, PERCENTILES,
                                                                               axis=1))
    x[4, 3] = np.nan
    np.testing.assert_array_equal(percentiles_along_rows(x),
                                  np.percentile(x, PERCENTILES, axis=1))
