"""Monitoring alerts over a patient's course: scores, doses and dispensings over time.

Pure functions: the caller passes the records, the knowledge base, the alert
definitions, the site thresholds and ``now``; nothing here reads a clock,
a database or a setting.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.monitoring.rules import AlertDefinition, AlertLevel, Thresholds


@dataclass(frozen=True)
class ScaleRecord:
    scale: Literal["cows", "sows"]
    total: int
    items: Mapping[str, int]
    recorded_at: datetime


@dataclass(frozen=True)
class DoseRecord:
    """A dose given (``administration``) or a supply handed out (``dispense``)."""

    drug: str
    dose_mg: float
    at: datetime
    kind: Literal["administration", "dispense"] = "administration"
    days_supply: float | None = None


@dataclass(frozen=True)
class Alert:
    code: str
    level: AlertLevel
    title: str
    message: str
    action: str
    evidence: Mapping[str, Any]
    sources: tuple[str, ...]
    verification: str
    threshold_basis: str
    settings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "level": self.level,
            "title": self.title,
            "message": self.message,
            "action": self.action,
            "evidence": dict(self.evidence),
            "sources": list(self.sources),
            "verification": self.verification,
            "threshold_basis": self.threshold_basis,
            "settings": list(self.settings),
        }


@dataclass(frozen=True)
class TrendPoint:
    recorded_at: datetime
    total: int
    band: str | None


def _alert(d: AlertDefinition, evidence: Mapping[str, Any]) -> Alert:
    return Alert(
        code=d.id,
        level=d.level,
        title=d.title,
        message=d.message,
        action=d.action,
        evidence=evidence,
        sources=d.sources,
        verification=d.verification,
        threshold_basis=d.basis,
        settings=d.settings,
    )


def band_of(total: int, scale: str, kb: KnowledgeBase) -> str | None:
    for b in kb.scales[scale].bands:
        if b.min <= total <= b.max:
            return b.key
    return None


def trend(records: Iterable[ScaleRecord], scale: str, kb: KnowledgeBase) -> list[TrendPoint]:
    """Scores of one scale in time order, with their band."""
    pts = sorted((r for r in records if r.scale == scale), key=lambda r: r.recorded_at)
    return [TrendPoint(r.recorded_at, r.total, band_of(r.total, scale, kb)) for r in pts]


def _band_rank(band: str | None, kb: KnowledgeBase) -> int:
    keys = [b.key for b in sorted(kb.scales["cows"].bands, key=lambda b: b.min)]
    return keys.index(band) if band in keys else -1


def daily_totals(doses: Iterable[DoseRecord], drug: str) -> dict[date, float]:
    out: dict[date, float] = defaultdict(float)
    for d in doses:
        if d.drug == drug and d.kind == "administration":
            out[d.at.date()] += d.dose_mg
    return dict(out)


def evaluate(
    *,
    scores: Sequence[ScaleRecord],
    doses: Sequence[DoseRecord],
    kb: KnowledgeBase,
    thresholds: Thresholds,
    tramadol_max_daily_mg: int | None,
    taper_active: bool,
    now: datetime,
    suicidal_ideation: bool = False,
) -> list[Alert]:
    """Every alert that holds for this course at ``now``, most severe first.

    ``suicidal_ideation``: the patient's record names it (it always raises the crisis alert).
    """
    defs = kb.monitoring.by_id()
    alerts: list[Alert] = []
    cows = trend(scores, "cows", kb)
    treatment = sorted(d.at for d in doses if d.kind == "administration" and d.at <= now)
    if cows:
        last = cows[-1]
        start = kb.treatment("buprenorphine").start_cows_min
        if start is not None and last.total >= start:
            alerts.append(
                _alert(
                    defs["buprenorphine_threshold_reached"],
                    {"cows_total": last.total, "threshold": start, "recorded_at": last.recorded_at.isoformat()},
                )
            )
        if treatment:
            first_dose = treatment[0]
            before = [p for p in cows if p.recorded_at <= first_dose]
            after = [p for p in cows if p.recorded_at > first_dose]
            base = before[-1] if before else (after[0] if len(after) > 1 else None)
            if base is not None and last is not base:
                band_up = _band_rank(last.band, kb) > _band_rank(base.band, kb)
                pts = thresholds.cows_rise_points
                rise_up = pts is not None and last.total - base.total >= pts
                if band_up or rise_up:
                    alerts.append(
                        _alert(
                            defs["cows_worsening_on_treatment"],
                            {
                                "from_total": base.total,
                                "from_band": base.band,
                                "to_total": last.total,
                                "to_band": last.band,
                                "treatment_since": first_dose.isoformat(),
                            },
                        )
                    )
    alerts.extend(_tramadol_alerts(doses, defs, thresholds, tramadol_max_daily_mg, taper_active, now))
    alerts.extend(_craving(scores, defs, thresholds))
    signal = crisis_signal(scores, thresholds, suicidal_ideation=suicidal_ideation)
    if signal is not None:
        alerts.append(_alert(defs["patient_crisis_signal"], signal))
    rank = {"critical": 0, "warning": 1, "info": 2}
    return sorted(alerts, key=lambda a: (rank[a.level], a.code))


def _tramadol_alerts(
    doses: Sequence[DoseRecord],
    defs: Mapping[str, AlertDefinition],
    th: Thresholds,
    limit: int | None,
    taper_active: bool,
    now: datetime,
) -> list[Alert]:
    out: list[Alert] = []
    tram = [d for d in doses if d.drug == "tramadol" and d.at <= now]
    last24 = sum(d.dose_mg for d in tram if d.kind == "administration" and now - d.at < timedelta(hours=24))
    if limit is not None and last24 >= limit:
        out.append(_alert(defs["tramadol_dose_at_limit"], {"last_24h_mg": last24, "limit_mg": limit}))
    days = sorted(daily_totals(tram, "tramadol").items())
    run = _consecutive_tail(days)
    n = th.escalation_days
    if len(run) >= n and all(b[1] > a[1] for a, b in zip(run[-n:], run[-n + 1 :], strict=False)):
        out.append(_alert(defs["tramadol_escalating_doses"], {"daily_mg": {d.isoformat(): v for d, v in run[-n:]}}))
    m = th.taper_stall_days
    if taper_active and len(run) >= m and all(b[1] >= a[1] for a, b in zip(run[-m:], run[-m + 1 :], strict=False)):
        out.append(_alert(defs["tramadol_taper_stalled"], {"daily_mg": {d.isoformat(): v for d, v in run[-m:]}}))
    disp = sorted((d for d in tram if d.kind == "dispense" and d.days_supply), key=lambda d: d.at)
    for prev, nxt in zip(disp, disp[1:], strict=False):
        due = prev.at + timedelta(days=prev.days_supply or 0)
        early = (due - nxt.at).total_seconds() / 86400
        if early >= th.early_refill_days:
            out.append(
                _alert(
                    defs["tramadol_early_refill"],
                    {
                        "dispensed_at": nxt.at.isoformat(),
                        "supply_due_to_end": due.isoformat(),
                        "days_early": round(early, 1),
                    },
                )
            )
            break
    return out


def _consecutive_tail(days: list[tuple[date, float]]) -> list[tuple[date, float]]:
    """The last run of calendar-consecutive days."""
    run: list[tuple[date, float]] = []
    for d, v in days:
        if run and d - run[-1][0] != timedelta(days=1):
            run = []
        run.append((d, v))
    return run


CRAVING_ITEM = "craving"


def crisis_signal(
    scores: Sequence[ScaleRecord], thresholds: Thresholds, *, suicidal_ideation: bool = False
) -> dict[str, Any] | None:
    """Why the patient's own report is at crisis level, or None.

    The latest SOWS counts when its total reaches the site's setting (no validated cut-off exists)
    or its craving item ("I feel like shooting up now") is at its maximum, 4; recorded suicidal
    ideation always counts.
    """
    reasons: list[str] = []
    evidence: dict[str, Any] = {}
    sows = sorted((r for r in scores if r.scale == "sows"), key=lambda r: r.recorded_at)
    if sows:
        last = sows[-1]
        if last.total >= thresholds.sows_crisis_total:
            reasons.append("sows_total")
        if last.items.get(CRAVING_ITEM) == 4:
            reasons.append("craving_maximum")
        if reasons:
            evidence.update(
                {
                    "sows_total": last.total,
                    "threshold": thresholds.sows_crisis_total,
                    "craving": last.items.get(CRAVING_ITEM),
                    "recorded_at": last.recorded_at.isoformat(),
                }
            )
    if suicidal_ideation:
        reasons.append("suicidal_ideation")
    if not reasons:
        return None
    return {"reasons": reasons, **evidence}


def _craving(scores: Sequence[ScaleRecord], defs: Mapping[str, AlertDefinition], th: Thresholds) -> list[Alert]:
    per_day: dict[date, int] = {}
    for r in scores:
        if r.scale == "sows" and "craving" in r.items:
            day = r.recorded_at.date()
            per_day[day] = max(per_day.get(day, 0), r.items["craving"])
    run = _consecutive_tail(sorted((d, float(v)) for d, v in per_day.items()))
    high = []
    for d, v in reversed(run):
        if v < th.craving_min_score:
            break
        high.append(d)
    if len(high) >= th.craving_days:
        return [
            _alert(
                defs["sows_craving_high"],
                {"days": [d.isoformat() for d in sorted(high)], "min_score": th.craving_min_score},
            )
        ]
    return []
