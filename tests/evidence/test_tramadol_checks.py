"""The tramadol comparisons: honest bias and influence checks and GRADE certainty.

Source of the judgements: summary.yaml (reasons from the research notes, each cited); the
tests tie the reasons' factual claims to what the engine computes from trials.yaml.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from withdrawal.cli import app
from withdrawal.evidence.bias import RECOMMENDED_STUDIES
from withdrawal.evidence.summary import PooledAnalysis, build_summary
from withdrawal.knowledge.evidence import Grade, GradeDomain

runner = CliRunner()


def _analysis(comparator: str) -> PooledAnalysis:
    return next(a for a in build_summary().analyses if a.analysis.comparator == comparator)


def test_funnel_based_checks_are_withheld_below_ten_trials() -> None:
    for a in build_summary().analyses:
        assert len(a.rows) < RECOMMENDED_STUDIES
        assert a.bias is None and "10 studies" in a.bias_note
        assert a.analysis.grade.publication_bias.judgement == "not assessable"


def test_buprenorphine_heterogeneity_is_nil_but_its_interval_wide() -> None:
    # the inconsistency reason: no statistical heterogeneity, a wide interval with 2 trials
    r = _analysis("buprenorphine").result
    assert r.k == 2 and r.i2 == 0 and r.tau2 == 0
    assert r.i2_ci_low == 0 and r.i2_ci_high is not None and r.i2_ci_high > 90
    assert r.tau2_ci_high is not None and r.tau2_ci_high > 1


def test_imprecision_reasons_match_the_intervals() -> None:
    bup = _analysis("buprenorphine")
    r, fe = bup.result, bup.sensitivity
    assert fe is not None
    # random effects (Hartung-Knapp) includes no difference and a large reduction; FE excludes 1
    assert math.exp(r.ci_low) < 0.75 < 1 < math.exp(r.ci_high)
    assert math.exp(fe.ci_high) < 1
    assert sum(c.total_tramadol + c.total_comparator for c in bup.rows) == 129
    clo = _analysis("clonidine").result
    assert math.exp(clo.ci_low) < 1 < 1.25 < math.exp(clo.ci_high)
    assert sum(c.total_tramadol + c.total_comparator for c in _analysis("clonidine").rows) == 72


def test_leave_one_out_with_two_trials_is_each_trial_alone() -> None:
    bup = _analysis("buprenorphine")
    assert bup.influence is not None
    loo = {row.study: row.estimate for row in bup.influence.leave_one_out}
    yi = dict(zip(bup.result.labels, bup.result.yi, strict=True))
    assert loo["Dunn 2017"] == pytest.approx(yi["Chawla 2013"], rel=1e-12)
    assert loo["Chawla 2013"] == pytest.approx(yi["Dunn 2017"], rel=1e-12)
    clonidine = _analysis("clonidine")
    assert clonidine.influence is None and "one trial" in clonidine.influence_note


def test_certainty_is_very_low_for_both_comparisons() -> None:
    for a in build_summary().analyses:
        g = a.analysis.grade
        assert g.start == "high" and g.certainty == "very low" and g.downgrades == 4
        for _, domain in g.domains():
            assert domain.sources and len(domain.reason) > 40


def _domain(judgement: str) -> GradeDomain:
    return GradeDomain(judgement=judgement, reason="a reason long enough to be one",
                       sources=("ev_dunn2017",), verification="verified")


@pytest.mark.parametrize(("judgements", "certainty"), [
    (["not serious"] * 5, "high"),
    (["serious", "not serious", "not serious", "not serious", "not assessable"], "moderate"),
    (["serious", "not serious", "serious", "not serious", "not serious"], "low"),
    (["very serious", "not serious", "serious", "not serious", "not serious"], "very low"),
    (["very serious"] * 5, "very low"),
])
def test_grade_rates_down_one_level_per_serious_two_per_very_serious(
    judgements: list[str], certainty: str
) -> None:
    names = ("risk_of_bias", "inconsistency", "indirectness", "imprecision",
             "publication_bias")
    domains = {n: _domain(j) for n, j in zip(names, judgements, strict=True)}
    grade = Grade(sources=("ev_grade_handbook",), verification="verified_secondary", **domains)
    assert grade.certainty == certainty


def test_evidence_command_shows_certainty_and_writes_leave_one_out_plots(tmp_path: Path) -> None:
    res = runner.invoke(app, ["evidence", "--format", "json", "--plot-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    certainty = {a["id"]: a["certainty"]["certainty"] for a in out["analyses"]}
    assert certainty == {"completion_vs_buprenorphine": "very low",
                         "completion_vs_clonidine": "very low"}
    bup = out["analyses"][0]
    assert bup["bias"] is None and bup["bias_note_sources"] == ["ev_sterne2011"]
    assert len(bup["influence"]["leave_one_out"]) == 2
    assert bup["result"]["i2_ci_high"] > 90
    names = sorted(Path(p).name for p in out["plots"])
    assert names == ["forest_tramadol.png", "forest_tramadol.svg",
                     "leave_one_out_tramadol.png", "leave_one_out_tramadol.svg"]
    text = runner.invoke(app, ["evidence"])
    assert text.exit_code == 0 and "VERY LOW" in text.output and "not assessable" in text.output
