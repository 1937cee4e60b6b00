"""The withdrawal course comes from the core knowledge base only (one source of truth)."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from withdrawal.cli import app
from withdrawal.errors import InputError
from withdrawal.knowledge.base import data_dir
from withdrawal.knowledge.loader import default_kb
from withdrawal.pk.params import TramadolData, withdrawal_course
from withdrawal.pk.population import Regimen, simulate_population


def test_pk_data_has_no_withdrawal_course_of_its_own() -> None:
    raw = yaml.safe_load((data_dir() / "pk" / "tramadol.yaml").read_text())
    assert not any("withdrawal" in key for key in raw)
    assert not any("withdrawal" in key for key in TramadolData.model_fields)
    sources = default_kb().sources
    assert "pk_withdrawal_who_boca" not in sources
    assert "pk_withdrawal_medscape_reference" not in sources


def test_course_is_the_knowledge_base_heroin_timeline() -> None:
    timeline = default_kb().timeline("heroin")
    assert timeline is not None and timeline.duration_days is not None
    assert timeline.onset_h is not None and timeline.peak_h is not None
    course = withdrawal_course("heroin")
    assert course.onset_h == (timeline.onset_h.low, timeline.onset_h.high)
    assert course.peak_h == (timeline.peak_h.low, timeline.peak_h.high)
    assert course.duration_days == (timeline.duration_days.low, timeline.duration_days.high)
    assert course.default_course_h == timeline.duration_days.high * 24
    assert course.sources == tuple(timeline.sources) and course.sources


def test_cli_default_course_is_the_knowledge_base_course_and_cites_it() -> None:
    course = withdrawal_course("heroin")
    res = CliRunner().invoke(app, ["pk", "simulate", "--dose-mg", "50", "--interval-h", "6",
                                   "--days", "3", "--patients", "300", "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["course_h"] == course.default_course_h
    assert out["course_sources"] == list(course.sources)
    assert all(s in out["course_note"] for s in course.sources)
    # the 3-day regimen is simulated over the whole course (washout after the last dose)
    assert out["grid_points"] == course.default_course_h * 4


def test_cli_course_days_overrides_the_default() -> None:
    res = CliRunner().invoke(app, ["pk", "simulate", "--dose-mg", "50", "--interval-h", "6",
                                   "--days", "3", "--patients", "300", "--course-days", "2",
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["course_h"] == 48.0 and out["course_sources"] == []
    assert out["grid_points"] == 3 * 96  # the regimen outlasts the course


def test_coverage_counts_the_course_after_the_last_dose() -> None:
    reg = Regimen.build(dose_mg=100, interval_h=6, days=3)
    short = simulate_population(reg, n_patients=500, seed=4, phenotype="ultrarapid", course_h=72)
    long = simulate_population(reg, n_patients=500, seed=4, phenotype="ultrarapid", course_h=240)
    assert long.grid_points == 960 and short.grid_points == 288
    g_short, g_long = short.groups["ultrarapid"], long.groups["ultrarapid"]
    # the same covered hours during the regimen, plus a few while M1 washes out after it
    extra_h = g_long.coverage_mean * 240 - g_short.coverage_mean * 72
    assert 0 < extra_h < 12
    assert g_long.m1_cmax_pct == g_short.m1_cmax_pct
    assert g_long.onset_h_pct == g_short.onset_h_pct


@pytest.mark.parametrize("course_h", [0.0, -1.0, float("nan"), float("inf"), 1e9])
def test_bad_course_is_an_input_error(course_h: float) -> None:
    with pytest.raises(InputError) as err:
        simulate_population(Regimen.build(dose_mg=50, interval_h=6, days=1), n_patients=10,
                            seed=1, course_h=course_h)
    assert err.value.field == "course_h"
