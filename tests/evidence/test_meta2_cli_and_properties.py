"""Bad input, sparse data, single-study subgroups and properties of the deeper analyses."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from withdrawal.cli import app
from withdrawal.errors import InputError
from withdrawal.evidence.bias import bias_checks, egger_test, influence, rank_test
from withdrawal.evidence.effects import effect_sizes_given, escalc_binary
from withdrawal.evidence.meta import ConvergenceError, pool
from withdrawal.evidence.mh import mantel_haenszel, peto
from withdrawal.evidence.regression import meta_regression, subgroup_analysis

BCG = Path(__file__).resolve().parents[1] / "data" / "reference" / "meta2" / "bcg.csv"
runner = CliRunner()
SETTINGS = settings(max_examples=25, deadline=None)
studies = st.lists(
    st.tuples(st.floats(-3, 3, allow_nan=False), st.floats(0.01, 2.0, allow_nan=False)),
    min_size=3, max_size=9,
)


def _run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, ["meta", *args])
    return res.exit_code, res.output


@pytest.mark.parametrize(("args", "words"), [
    (["--mods", "latitude"], ["mods", "latitude", "ablat", "year", "alloc"]),
    (["--subgroup", "country"], ["subgroup", "country", "ablat"]),
    (["--method", "PETO", "--measure", "RR"], ["measure", "OR"]),
    (["--method", "MH", "--measure", "SMD"], ["measure", "RR", "OR", "RD"]),
    (["--method", "MH", "--test", "knha"], ["test", "z"]),
    (["--method", "MH", "--bias"], ["method", "REML"]),
    (["--funnel-plot", "f.jpg"], ["plot", ".png", ".svg"]),
])
def test_bad_options_exit_2_naming_field_and_allowed_values(
    args: list[str], words: list[str]
) -> None:
    code, out = _run(str(BCG), *args)
    assert code == 2, out
    for word in words:
        assert word in out
    assert "Traceback" not in out


def _csv(tmp_path: Path, rows: list[list[object]], extra: str = "") -> Path:
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["study", "events_treatment", "total_treatment", "events_control",
                    "total_control"] + ([extra] if extra else []))
        w.writerows(rows)
    return path


def test_bias_tests_on_two_studies_exit_2(tmp_path: Path) -> None:
    data = _csv(tmp_path, [["a", 3, 20, 5, 20], ["b", 4, 30, 9, 31]])
    code, out = _run(str(data), "--bias")
    assert code == 2 and "bias" in out and "3" in out


def test_a_one_study_subgroup_is_fitted_as_metafor_does(tmp_path: Path) -> None:
    # metafor: rma() of one study gives tau2 0 and the z test even under knha
    rows = [["a", 3, 20, 5, 20, "x"], ["b", 4, 30, 9, 31, "x"], ["c", 7, 25, 6, 25, "x"],
            ["d", 2, 40, 12, 41, "y"]]
    data = _csv(tmp_path, rows, extra="grp")
    code, out = _run(str(data), "--subgroup", "grp", "--method", "REML", "--test", "knha",
                     "--format", "json")
    assert code == 0, out
    import json

    y = json.loads(out)["subgroups"]["y"]
    es = escalc_binary("RR", [2], [40], [12], [41])
    se = math.sqrt(float(es.vi[0]))
    assert y["k"] == 1 and y["tau2"] == 0 and y["q_p"] == 1
    assert y["estimate"] == pytest.approx(float(es.yi[0]), rel=1e-12)
    assert y["se"] == pytest.approx(se, rel=1e-12)
    assert y["ci_high"] == pytest.approx(float(es.yi[0]) + 1.959963984540054 * se, rel=1e-9)


def test_mantel_haenszel_text_output(tmp_path: Path) -> None:
    code, out = _run(str(BCG), "--method", "MH", "--measure", "OR")
    # metafor 3.8-1 rma.mh(measure="OR") on dat.bcg: estimate -0.4734 (tests/data/reference/meta2)
    assert code == 0 and "Mantel-Haenszel" in out and "-0.4734" in out


def test_peto_needs_no_correction_for_a_zero_cell() -> None:
    # one table 0/10 vs 3/10: O - E = -1.5, V = 3*17*10*10/(20^2*19) (Yusuf 1985)
    res = peto([0], [10], [3], [10])
    v = 3 * 17 * 10 * 10 / (20**2 * 19)
    assert res.estimate == pytest.approx(-1.5 / v, rel=1e-12)
    assert res.se == pytest.approx(math.sqrt(1 / v), rel=1e-12)


def test_mantel_haenszel_handles_zero_cells_without_adding_half() -> None:
    # MH RR of two tables, one with a zero cell: sum(a n2/n) / sum(c n1/n) on raw counts
    res = mantel_haenszel("RR", [0, 4], [10, 20], [3, 6], [10, 20])
    expected = (0 + 4 * 20 / 40) / (3 * 10 / 20 + 6 * 20 / 40)
    assert res.estimate == pytest.approx(math.log(expected), rel=1e-12)


def test_text_output_shows_every_part(tmp_path: Path) -> None:
    funnel, infl = tmp_path / "funnel.svg", tmp_path / "infl.png"
    code, out = _run(str(BCG), "--mods", "alloc", "--subgroup", "alloc", "--bias",
                     "--influence", "--funnel-plot", str(funnel), "--influence-plot",
                     str(infl))
    assert code == 0, out
    for text in ("allocrandom", "Test of subgroup differences", "Egger", "Kendall",
                 "Trim-and-fill", "Leave-one-out", "Cumulative", "Q-profile"):
        assert text in out
    assert funnel.read_text().startswith("<?xml")
    assert infl.read_bytes()[:4] == b"\x89PNG"


@SETTINGS
@given(studies)
def test_pm_estimate_lies_in_its_q_profile_interval(data: list[tuple[float, float]]) -> None:
    # Q(tau2_PM) = k - 1 lies between the chi-square quantiles that define the interval
    res = pool(effect_sizes_given(*zip(*data, strict=True)), method="PM")
    # both roots come from uniroot with tolerance eps^0.25 (about 1.2e-4)
    assert res.tau2_ci_low is not None and res.tau2_ci_low <= res.tau2 + 3e-4
    if res.tau2_ci_high is not None:
        assert res.tau2 <= res.tau2_ci_high + 3e-4
        assert res.i2_ci_low is not None and res.i2_ci_high is not None
        assert res.i2_ci_low <= res.i2_ci_high


@SETTINGS
@given(studies, st.lists(st.sampled_from("ab"), min_size=9, max_size=9))
def test_fixed_effect_subgroups_partition_q(data: list[tuple[float, float]],
                                            groups: list[str]) -> None:
    groups = groups[: len(data)]
    if len(set(groups)) < 2:
        groups = ["a"] + ["b"] * (len(data) - 1)
    es = effect_sizes_given(*zip(*data, strict=True))
    sub = subgroup_analysis(es, "g", groups, method="FE")
    total = pool(es, method="FE").q
    within = sum(f.q for f in sub.fits.values())
    assert sub.q_between + within == pytest.approx(total, rel=1e-8, abs=1e-8)


@SETTINGS
@given(studies, st.floats(0.1, 10), st.floats(-5, 5))
def test_qm_does_not_change_when_a_moderator_is_rescaled(
    data: list[tuple[float, float]], scale: float, shift: float
) -> None:
    es = effect_sizes_given(*zip(*data, strict=True))
    mod = [float(i) for i in range(es.k)]
    a = meta_regression(es, {"m": mod}, method="DL")
    b = meta_regression(es, {"m": [scale * m + shift for m in mod]}, method="DL")
    assert b.qm == pytest.approx(a.qm, rel=1e-6, abs=1e-9)
    assert b.coefficients[1].estimate * scale == pytest.approx(a.coefficients[1].estimate,
                                                               rel=1e-6, abs=1e-9)


@SETTINGS
@given(studies)
def test_bias_and_influence_are_well_formed(data: list[tuple[float, float]]) -> None:
    es = effect_sizes_given(*zip(*data, strict=True))
    if np.ptp(es.vi) == 0:
        with pytest.raises(InputError, match="standard errors"):
            bias_checks(es, method="DL")
        return
    try:
        checks = bias_checks(es, method="DL")
    except ConvergenceError:
        reject()  # trim-and-fill that does not converge is refused by name, as metafor's trimfill errors
    tau, p = checks.rank_test.tau, checks.rank_test.p
    if tau is None or p is None:  # R's NA: every standardised deviate tied
        assert np.ptp(es.yi) == 0
    else:
        assert -1 <= tau <= 1 and 0 <= p <= 1
    assert checks.trimfill.k0 >= 0 and len(checks.trimfill.filled_yi) == checks.trimfill.k0
    infl = influence(es, method="FE")
    w = 1 / es.vi
    for i, row in enumerate(infl.leave_one_out):
        keep = np.arange(es.k) != i
        expected = float(np.sum(w[keep] * es.yi[keep]) / np.sum(w[keep]))
        assert row.estimate == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert infl.cumulative[-1].estimate == pytest.approx(infl.full.estimate, rel=1e-12)


def test_bias_functions_refuse_two_studies() -> None:
    es = effect_sizes_given([0.1, 0.2], [0.1, 0.1])
    for fn in (egger_test, rank_test):
        with pytest.raises(InputError) as info:
            fn(es)
        assert info.value.field == "bias"


def test_subgroup_with_zero_standard_error_is_refused_by_name() -> None:
    # knha scales the variance by the residual mean square, 0 when the effects are identical
    es = effect_sizes_given([0.2, 0.2, 0.5, 0.1], [0.1, 0.2, 0.1, 0.3])
    with pytest.raises(InputError) as info:
        subgroup_analysis(es, "grp", ["a", "a", "b", "b"], method="DL", test="knha")
    assert info.value.field == "grp" and "'a'" in str(info.value)


def test_mantel_haenszel_leaves_double_zero_studies_out_of_q_only() -> None:
    # metafor rma.mh(drop00 = TRUE): the 0/10 vs 0/12 study adds nothing to the OR or to Q
    with_zero = mantel_haenszel("OR", [3, 5, 0], [20, 25, 10], [6, 9, 0], [21, 24, 12])
    without = mantel_haenszel("OR", [3, 5], [20, 25], [6, 9], [21, 24])
    assert with_zero.estimate == pytest.approx(without.estimate, rel=1e-12)
    assert with_zero.q == pytest.approx(without.q, rel=1e-12)
    assert with_zero.q_df == 1 and with_zero.k == 3
