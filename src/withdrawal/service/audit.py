"""The audit log: who read or wrote which patient's data, and when.

Rows are added to the request's own transaction, so a write and its audit row
are committed together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from withdrawal.service.models import AuditEntry, User, utcnow


def _row(
    actor: User | str, action: str, resource: str, resource_id: object, patient_id: int | None, outcome: str,
    at: datetime | None = None,
) -> dict[str, Any]:
    if isinstance(actor, User):
        user_id: int | None = actor.id
        name = f"{actor.role}:{actor.username}"
    else:
        user_id, name = None, actor
    return {
        "at": at or utcnow(),
        "user_id": user_id,
        "actor": name[:200],
        "action": action,
        "resource": resource,
        "resource_id": None if resource_id is None else str(resource_id)[:60],
        "patient_id": patient_id,
        "outcome": outcome,
    }


def entry(
    *,
    actor: User | str,
    action: str,
    resource: str,
    resource_id: object = None,
    patient_id: int | None = None,
    outcome: str = "ok",
    reason: str | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """An audit row (timed ``at``, default now), not yet in any session.

    ``reason``: a clinician's override reason, kept in the audit log only (never logged).
    """
    return AuditEntry(**_row(actor, action, resource, resource_id, patient_id, outcome, at), reason=reason)
