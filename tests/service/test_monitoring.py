"""Monitoring alerts as pure domain functions, and their knowledge-base file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests_support import kb_with
from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.loader import KnowledgeBase, load_kb
from withdrawal.monitoring import DoseRecord, ScaleRecord, Thresholds, evaluate

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def run(kb: KnowledgeBase, scores=(), doses=(), *, limit=400, taper=False, th=Thresholds()) -> list[str]:
    found = evaluate(
        scores=list(scores),
        doses=list(doses),
        kb=kb,
        thresholds=th,
        tramadol_max_daily_mg=limit,
        taper_active=taper,
        now=NOW,
    )
    return [a.code for a in found]


def cows(total: int, hours_ago: float) -> ScaleRecord:
    return ScaleRecord("cows", total, {}, NOW - timedelta(hours=hours_ago))


def dose(mg: float, days_ago: float, drug: str = "tramadol", **kw) -> DoseRecord:
    return DoseRecord(drug, mg, NOW - timedelta(days=days_ago), **kw)


def test_every_alert_cites_known_sources(kb: KnowledgeBase) -> None:
    rules = kb.monitoring
    assert len(rules.alerts) == 8
    for a in rules.alerts:
        assert all(s in kb.sources for s in a.sources)
        assert (a.basis == "kb") == (a.kb_ref is not None)


def test_unknown_setting_in_monitoring_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="made_up_days"):
        load_kb(kb_with(tmp_path, "monitoring.yaml", ("monitoring_craving_days", "made_up_days")))


def test_buprenorphine_threshold_comes_from_the_kb(kb: KnowledgeBase) -> None:
    start = kb.treatment("buprenorphine").start_cows_min
    assert start is not None
    assert "buprenorphine_threshold_reached" in run(kb, [cows(start, 1)])
    assert "buprenorphine_threshold_reached" not in run(kb, [cows(start - 1, 1)])


def test_worsening_band_after_treatment(kb: KnowledgeBase) -> None:
    given = [dose(4, 0.5, drug="buprenorphine")]
    assert "cows_worsening_on_treatment" in run(kb, [cows(10, 14), cows(14, 1)], given)
    assert "cows_worsening_on_treatment" not in run(kb, [cows(10, 14), cows(12, 1)], given)
    assert "cows_worsening_on_treatment" not in run(kb, [cows(10, 14), cows(14, 1)])  # no treatment: not "despite"
    # the point-rise setting is off unless a site sets it
    assert "cows_worsening_on_treatment" in run(
        kb, [cows(10, 14), cows(12, 1)], given, th=Thresholds(cows_rise_points=2)
    )


def test_dose_at_limit(kb: KnowledgeBase) -> None:
    doses = [dose(100, h / 24) for h in (1, 7, 13, 19)]
    assert run(kb, doses=doses, limit=400)[0] == "tramadol_dose_at_limit"
    assert "tramadol_dose_at_limit" not in run(kb, doses=doses, limit=500)


def test_escalation_stalled_taper_and_early_refill(kb: KnowledgeBase) -> None:
    up = [dose(100, 3), dose(150, 2), dose(200, 1)]
    assert "tramadol_escalating_doses" in run(kb, doses=up)
    flat = [dose(200, 3), dose(200, 2), dose(200, 1)]
    assert "tramadol_taper_stalled" in run(kb, doses=flat, taper=True)
    assert "tramadol_taper_stalled" not in run(kb, doses=flat, taper=False)
    down = [dose(200, 3), dose(150, 2), dose(100, 1)]
    assert not {"tramadol_taper_stalled", "tramadol_escalating_doses"} & set(run(kb, doses=down, taper=True))
    refills = [dose(0.1, 20, kind="dispense", days_supply=30), dose(0.1, 5, kind="dispense", days_supply=30)]
    assert "tramadol_early_refill" in run(kb, doses=refills)
    on_time = [dose(0.1, 40, kind="dispense", days_supply=30), dose(0.1, 10, kind="dispense", days_supply=30)]
    assert "tramadol_early_refill" not in run(kb, doses=on_time)


def test_craving_high_on_consecutive_days(kb: KnowledgeBase) -> None:
    def sows(v: int, days_ago: int) -> ScaleRecord:
        return ScaleRecord("sows", v, {"craving": v}, NOW - timedelta(days=days_ago))

    assert "sows_craving_high" in run(kb, [sows(4, 1), sows(3, 0)])
    assert "sows_craving_high" not in run(kb, [sows(4, 2), sows(3, 0)])  # not consecutive
    assert "sows_craving_high" not in run(kb, [sows(4, 1), sows(1, 0)])


def test_patient_crisis_signal(kb: KnowledgeBase) -> None:
    """SOWS at the site's crisis total, craving at its maximum, or recorded suicidal ideation."""
    from withdrawal.monitoring import crisis_signal

    def sows(total: int, craving: int, hours_ago: float = 1) -> ScaleRecord:
        return ScaleRecord("sows", total, {"craving": craving}, NOW - timedelta(hours=hours_ago))

    assert "patient_crisis_signal" in run(kb, [sows(64, 4)])
    assert "patient_crisis_signal" in run(kb, [sows(10, 4)])  # craving at its maximum always counts
    assert "patient_crisis_signal" in run(kb, [sows(48, 0)])  # the default total: a site choice
    assert "patient_crisis_signal" not in run(kb, [sows(47, 3)])
    assert "patient_crisis_signal" not in run(kb, [sows(64, 4, hours_ago=30), sows(12, 1)])  # the latest counts
    assert "patient_crisis_signal" not in run(kb, [sows(50, 0)], th=Thresholds(sows_crisis_total=60))
    found = evaluate(scores=[], doses=[], kb=kb, thresholds=Thresholds(),
                     tramadol_max_daily_mg=400, taper_active=False, now=NOW, suicidal_ideation=True)
    assert found[0].code == "patient_crisis_signal" and found[0].level == "critical"  # most severe first
    assert crisis_signal([sows(64, 4)], Thresholds())["reasons"] == ["sows_total", "craving_maximum"]
    assert kb.monitoring.by_id()["patient_crisis_signal"].settings == ("monitoring_sows_crisis_total",)
