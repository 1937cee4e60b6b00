"""Every PK parameter cites a registered source; fitted numbers match their derivation."""

from __future__ import annotations

import pytest

from withdrawal.knowledge.loader import default_kb
from withdrawal.pk.calibrate import fit_er_release, fit_m1
from withdrawal.pk.params import load_tramadol


def test_every_pk_entry_cites_a_registered_source() -> None:
    data = load_tramadol()
    sources = default_kb().sources
    entries = list(data.cited_entries())
    assert len(entries) > 30
    for name, entry in entries:
        assert entry.sources, name
        for sid in entry.sources:
            assert sid in sources, f"{name} cites unregistered {sid}"
            assert sid.startswith("pk_"), f"{name}: {sid} is not a pk_ source"


def test_pk_sources_merge_without_duplicates() -> None:
    merged = default_kb().sources
    assert "pk_lintz1986" in merged and "pk_calc" in merged


def test_fitted_m1_parameters_reproduce_from_rouini2009() -> None:
    km, vm = fit_m1()
    data = load_tramadol()
    assert data.t("KM") == pytest.approx(km, rel=1e-5)
    assert data.t("VM") == pytest.approx(vm, rel=1e-5)


def test_fitted_er_release_reproduces_from_swiss_label() -> None:
    assert load_tramadol().t("KREL_ER") == pytest.approx(fit_er_release(), rel=1e-5)


def test_salt_ratio_is_base_over_hcl() -> None:
    assert load_tramadol().salt_base_per_hcl == pytest.approx(0.8785, abs=1e-3)
