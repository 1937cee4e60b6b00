"""The stored summary per patient behind the clinician's patient list (issue 17).

The list used to re-assess every patient on each load (up to 500 in one request). Now each patient has
one ``patient_summaries`` row (tramadol verdict, latest COWS, open alerts) and the list reads a page of
them. A row is rewritten **in the same transaction** as any change to what it summarises: the session
hooks installed by :func:`install` note the patients whose record, scores, doses or plans were flushed,
and recompute their rows just before the commit, so the commit writes both or neither. A row made with
another knowledge-base version (or missing: a record written before this table existed) is recomputed
when a page that shows it is read (:func:`ensure`).

The alerts are those evaluated at the last change; the patient's own page evaluates them again now.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from withdrawal.errors import WithdrawalError
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.monitoring import Thresholds
from withdrawal.service import records
from withdrawal.service.models import (
    MedicationAdministration,
    Patient,
    PatientSummary,
    Plan,
    ScaleAssessment,
    aware,
    utcnow,
)

_PENDING = "summary_pending"


def compute(session: Session, patient: Patient, kb: KnowledgeBase, thresholds: Thresholds, now: datetime
            ) -> dict[str, Any]:
    """The summary's values for one patient, as the full assessment gives them now."""
    cows = records.latest_cows(session, patient.id)
    verdict: str | None
    try:
        assessed = records.assess_record(session, patient, kb)
        verdict = assessed.screen.verdict
        found, _ = records.alerts(session=session, patient=patient, kb=kb, thresholds=thresholds, now=now,
                                  assessed=assessed)
    except WithdrawalError:
        verdict, found = None, []
    return {
        "verdict": verdict,
        "cows_total": cows.total if cows else None,
        "cows_band": cows.band if cows else None,
        "cows_at": cows.recorded_at if cows else None,
        "alerts": [{"code": a.code, "level": a.level, "title": a.title} for a in found],
        "kb_version": kb.version,
        "computed_at": now,
    }


def refresh(session: Session, patient_ids: Iterable[int], kb: KnowledgeBase, thresholds: Thresholds
            ) -> dict[int, PatientSummary]:
    """Recompute and store the summaries of these patients (in the session's transaction; not committed)."""
    now = utcnow()
    out: dict[int, PatientSummary] = {}
    ids = sorted(set(patient_ids))
    if not ids:
        return out
    existing = {s.patient_id: s for s in session.scalars(select(PatientSummary)
                                                          .where(PatientSummary.patient_id.in_(ids)))}
    for pid in ids:
        patient = session.get(Patient, pid)
        row = existing.get(pid)
        if patient is None:
            if row is not None:
                session.delete(row)
            continue
        values = compute(session, patient, kb, thresholds, now)
        if row is None:
            row = PatientSummary(patient_id=pid, **values)
            session.add(row)
        else:
            for key, value in values.items():
                setattr(row, key, value)
        out[pid] = row
    return out


def ensure(session: Session, patients: list[Patient], kb: KnowledgeBase, thresholds: Thresholds, *,
           max_age: timedelta | None = None, aged_budget: int = 0) -> dict[int, PatientSummary]:
    """The summaries of these patients, the missing ones and those made with another knowledge-base
    version recomputed and stored (the caller commits).

    Some alerts depend on the time passing, not only on the record (a taper that has stalled): of the
    summaries older than ``max_age``, the ``aged_budget`` oldest are recomputed too, so that a page stays
    fast while its rows catch up over a few loads (each row says when it was computed)."""
    ids = [p.id for p in patients]
    found = {s.patient_id: s for s in session.scalars(select(PatientSummary)
                                                       .where(PatientSummary.patient_id.in_(ids)))} if ids else {}
    stale = [pid for pid in ids if pid not in found or found[pid].kb_version != kb.version]
    if max_age is not None and aged_budget > 0:
        limit = utcnow() - max_age
        aged = sorted((aware(s.computed_at), pid) for pid, s in found.items()
                      if pid not in stale and aware(s.computed_at) < limit)
        stale += [pid for _, pid in aged[:aged_budget]]
    if stale:
        found.update(refresh(session, stale, kb, thresholds))
    return found


def _patient_of(obj: object) -> int | None:
    if isinstance(obj, Patient):
        return obj.id
    if isinstance(obj, ScaleAssessment | MedicationAdministration | Plan):
        return obj.patient_id
    return None


def install(sessions: sessionmaker[Session], kb: KnowledgeBase, thresholds: Thresholds) -> None:
    """Keep the summaries of the sessions made by ``sessions`` up to date, within each transaction."""

    def after_flush(session: Session, _ctx: object) -> None:
        pending: set[int] = session.info.setdefault(_PENDING, set())
        for obj in (*session.new, *session.dirty, *session.deleted):
            pid = _patient_of(obj)
            if pid is not None:
                pending.add(pid)

    def before_commit(session: Session) -> None:
        session.flush()  # the changes not flushed yet name their patients too
        pending: set[int] = session.info.pop(_PENDING, set())
        if pending:
            with session.no_autoflush:
                refresh(session, pending, kb, thresholds)

    def after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)

    event.listen(sessions, "after_flush", after_flush)
    event.listen(sessions, "before_commit", before_commit)
    event.listen(sessions, "after_rollback", after_rollback)
