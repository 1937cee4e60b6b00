"""Agreement with R metafor at relative 1e-5.

Source: tests/data/reference/meta/*.json, made with R 4.2 and metafor 3.8-1 from metadat's
dat.bcg (Colditz 1994; measures RR, OR, RD) and dat.normand1999 (Normand 1999; MD, SMD):
``rma(yi, vi, method=..., test=...)`` after ``escalc(measure, ...)`` with defaults, and
``predict()`` for the prediction interval (see the README there to regenerate).
GEN is checked by feeding escalc's yi/vi back in, which must give the same results.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from withdrawal.evidence.effects import (
    EffectSizes,
    effect_sizes_given,
    escalc_binary,
    escalc_continuous,
)
from withdrawal.evidence.meta import pool

DATASETS = ("bcg", "normand1999")
FIELDS = ("estimate", "se", "ci_low", "ci_high", "statistic", "p", "tau2", "i2", "h2",
          "q", "q_p", "pi_low", "pi_high")
REL = 1e-5


def _ref_dir() -> Path:
    # same folder as the data_dir fixture in tests/conftest.py (needed at collection time)
    from tests_support import data_path

    return data_path() / "reference" / "meta"


def _cases() -> list[Any]:
    cases = []
    for name in DATASETS:
        path = _ref_dir() / f"{name}.json"
        if not path.exists():
            continue
        for entry in json.loads(path.read_text())["results"]:
            kind = "escalc" if "effect_sizes" in entry else f"{entry['method']}-{entry['test']}"
            cases.append(pytest.param(name, entry, id=f"{name}-{entry['measure']}-{kind}"))
    return cases


def _effects(data: Path, name: str, measure: Any) -> EffectSizes:
    with (data / "reference" / "meta" / f"{name}.csv").open() as fh:
        rows = list(csv.DictReader(fh))

    def col(c: str) -> list[float]:
        return [float(r[c]) for r in rows]

    labels = [r["study"] for r in rows]
    if name == "bcg":
        return escalc_binary(measure, col("events_treatment"), col("total_treatment"),
                             col("events_control"), col("total_control"), labels=labels)
    return escalc_continuous(measure, col("mean_treatment"), col("sd_treatment"),
                             col("total_treatment"), col("mean_control"), col("sd_control"),
                             col("total_control"), labels=labels)


def _assert_fields(res: Any, entry: dict[str, Any]) -> None:
    got = res.summary_fields()
    for field in FIELDS:
        ref = entry[field]
        if ref == {}:  # NA in R (no prediction interval for FE models)
            assert got[field] is None, field
        elif ref == 0:
            assert got[field] == pytest.approx(0, abs=1e-12), field
        else:
            assert got[field] == pytest.approx(ref, rel=REL), field


@pytest.mark.parametrize(("name", "entry"), _cases())
def test_matches_metafor(data_dir: Path, name: str, entry: dict[str, Any]) -> None:
    effects = _effects(data_dir, name, entry["measure"])
    if "effect_sizes" in entry:
        np.testing.assert_allclose(effects.yi, entry["effect_sizes"]["yi"], rtol=REL)
        np.testing.assert_allclose(effects.vi, entry["effect_sizes"]["vi"], rtol=REL)
        return
    res = pool(effects, method=entry["method"], test=entry["test"])
    assert res.k == entry["k"]
    _assert_fields(res, entry)


@pytest.mark.parametrize(("name", "entry"),
                         [c for c in _cases() if "effect_sizes" not in c.values[1]])
def test_generic_yi_vi_gives_same_results(data_dir: Path, name: str,
                                          entry: dict[str, Any]) -> None:
    measured = _effects(data_dir, name, entry["measure"])
    given = effect_sizes_given(measured.yi, measured.vi)
    _assert_fields(pool(given, method=entry["method"], test=entry["test"]), entry)


def test_every_reference_entry_is_collected(data_dir: Path) -> None:
    # 5 measures x (7 methods: FE z + 6 x {z, knha} = 13 fits + 1 escalc entry)
    assert len(_cases()) == 5 * 14
