"""The steady-state constant infusion (SS=1, AMT=0, RATE>0, II=0) against closed forms.

NONMEM's documented behaviour (NONMEM Users Guide, data item SS; nmtests 1001 scenario 29): the
system starts at the steady state of an infusion at RATE run for ever, and the record gives no
further input. For ADVAN2 with the infusion into the depot that state is A1 = R/KA and
A2 = R/(CL/V) (input equals elimination in each compartment); into the central compartment it is
A2 = R V / CL, i.e. Css = R / CL.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from withdrawal.pk.engine import simulate_records
from withdrawal.pk.events import read_event_text
from withdrawal.pk.models import get_model

HEADER = "ID,TIME,EVID,AMT,CMT,SS,II,ADDL,RATE,F2\n"


def _run(rows: str, cl: float = 1.1, v: float = 20.0, ka: float = 1.5) -> dict[str, np.ndarray]:
    return simulate_records(read_event_text(HEADER + rows), get_model("depot1"),
                            {"CL": cl, "V": v, "KA": ka})


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(0.1, 500), cl=st.floats(0.2, 50), v=st.floats(2, 300),
       ka=st.floats(0.05, 5), cmt=st.sampled_from([1, 2]))
def test_state_at_the_record_is_the_closed_form_steady_state(
    rate: float, cl: float, v: float, ka: float, cmt: int
) -> None:
    out = _run(f"1,0,1,0,{cmt},1,0,0,{rate},1\n1,0,0,0,2,0,0,0,0,1\n", cl, v, ka)
    k = cl / v
    a1 = rate / ka if cmt == 1 else 0.0
    np.testing.assert_allclose(out["A1"], [a1, a1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["A2"], [rate / k] * 2, rtol=1e-9)
    np.testing.assert_allclose(out["CP"], [1000 * rate / cl] * 2, rtol=1e-9)


def test_infusion_does_not_continue_after_the_record() -> None:
    # into the central compartment: pure washout from Css, C(t) = Css exp(-k t)
    out = _run("1,0,1,0,2,1,0,0,10,1\n1,5,0,0,2,0,0,0,0,1\n1,24,0,0,2,0,0,0,0,1\n")
    css = 1000 * 10 / 1.1
    k = 1.1 / 20
    np.testing.assert_allclose(out["CP"], [css, css * math.exp(-5 * k),
                                           css * math.exp(-24 * k)], rtol=1e-9)


def test_ss1_replaces_and_ss2_adds() -> None:
    # a bolus first, then SS=1 infusion replaces the state; SS=2 on top adds its steady state
    ss1 = _run("1,0,1,500,2,0,0,0,0,1\n1,2,1,0,2,1,0,0,10,1\n")
    ss2 = _run("1,0,1,500,2,0,0,0,0,1\n1,2,1,0,2,2,0,0,10,1\n")
    css_amount = 10 / (1.1 / 20)
    assert ss1["A2"][1] == pytest.approx(css_amount, rel=1e-12)
    assert ss2["A2"][1] == pytest.approx(css_amount + 500 * math.exp(-2 * 1.1 / 20), rel=1e-12)


def test_bioavailability_does_not_scale_a_steady_state_infusion() -> None:
    # F scales amounts (a RATE>0 infusion's duration); a constant infusion has none
    full = _run("1,0,1,0,2,1,0,0,10,1\n")
    half = _run("1,0,1,0,2,1,0,0,10,0.5\n")
    assert half["CP"][0] == pytest.approx(full["CP"][0], rel=1e-12)


def test_then_a_regular_infusion_continues_it_at_steady_state() -> None:
    # SS=1 infusion plus an ordinary infusion at the same rate from the same time: flat at Css
    out = _run("1,0,1,0,2,1,0,0,10,1\n1,0,1,480,2,0,0,0,10,1\n1,12,0,0,2,0,0,0,0,1\n"
               "1,47,0,0,2,0,0,0,0,1\n")
    np.testing.assert_allclose(out["CP"], [1000 * 10 / 1.1] * 4, rtol=1e-9)
