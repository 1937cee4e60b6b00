"""Every NONMEM dosing record form against NONMEM's own output (29 scenarios).

Source: tests/pk/data/nmtests-1001 (mrgsolve/nmtests dosing/1001, NONMEM 7, ADVAN2 TRANS2,
CL 1.1 L/h, V 20 L, KA 1.5 /h): bolus, infusion by rate and by modelled rate/duration, lag,
bioavailability, ADDL/II, SS=1 and SS=2 (bolus and infusion, II < DUR and II == DUR), resets
(EVID 3 and 4) and the steady-state constant infusion. NONMEM prints five significant digits:
relative 2e-4.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from withdrawal.pk.engine import simulate_records
from withdrawal.pk.events import read_event_text
from withdrawal.pk.models import get_model

DATA = Path(__file__).parent / "data" / "nmtests-1001"
PARAMS = {"CL": 1.1, "V": 20.0, "KA": 1.5}


def _scenarios() -> dict[str, str]:
    with (DATA / "scenarios.csv").open(newline="") as fh:
        return {row["ID"]: row["descr"] for row in csv.DictReader(fh)}


def _subject(sid: str) -> tuple[str, list[dict[str, str]]]:
    with (DATA / "dosing.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = [r for r in reader if r["ID"] == sid]
    lines = [",".join(header)] + [",".join(r[c] for c in header) for r in rows]
    return "\n".join(lines) + "\n", rows


def test_every_scenario_of_the_benchmark_is_here() -> None:
    assert list(_scenarios()) == [str(i) for i in range(1, 30)]


@pytest.mark.parametrize(("sid", "descr"), list(_scenarios().items()))
def test_matches_nonmem(sid: str, descr: str) -> None:
    text, rows = _subject(sid)
    out = simulate_records(read_event_text(text), get_model("depot1"), PARAMS)
    obs = [i for i, r in enumerate(rows) if r["MDV"] == "0"]
    expected = np.array([float(rows[i]["NM_CP"]) for i in obs])
    assert len(obs) == 131 and expected.max() > 0, descr
    np.testing.assert_allclose(out["CP"][obs], expected, rtol=2e-4, atol=1e-9, err_msg=descr)


def test_whole_data_set_in_one_run_equals_per_subject_runs() -> None:
    text = (DATA / "dosing.csv").read_text()
    out = simulate_records(read_event_text(text), get_model("depot1"), PARAMS)
    with (DATA / "dosing.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    obs = [i for i, r in enumerate(rows) if r["MDV"] == "0"]
    np.testing.assert_allclose(out["CP"][obs], [float(rows[i]["NM_CP"]) for i in obs],
                               rtol=2e-4, atol=1e-9)
