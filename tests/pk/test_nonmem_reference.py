"""The event engine against NONMEM's own output.

Source: tests/data/reference/pk-nonmem (mrgsolve/nmtests dosing/1001, NONMEM 7, ADVAN2 TRANS2,
CL 1.1 L/h, V 20 L, KA 1.5 /h). NONMEM prints five significant digits: relative 2e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from withdrawal.pk.engine import simulate_records
from withdrawal.pk.events import read_event_csv
from withdrawal.pk.models import get_model

SCENARIOS = ["01", "03", "15", "17", "28"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_depot1_matches_nonmem_on_observation_rows(data_dir: Path, scenario: str) -> None:
    folder = data_dir / "reference" / "pk-nonmem"
    ref = json.loads((folder / f"scenario{scenario}.json").read_text())
    records = read_event_csv(folder / f"scenario{scenario}.csv")
    out = simulate_records(records, get_model("depot1"), ref["parameters"])
    rows = [o["row"] for o in ref["observations"]]
    expected = np.array([o["CP"] for o in ref["observations"]])
    assert len(rows) > 100
    np.testing.assert_allclose(out["CP"][rows], expected, rtol=2e-4, atol=1e-9)
