"""The audit log: who read or wrote which patient's data, and when.

Rows are added to the request's own transaction, so a write and its audit row
are committed together or not at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from withdrawal.service.models import AuditEntry, User, utcnow

_INSERT = insert(AuditEntry)


def _row(
    actor: User | str, action: str, resource: str, resource_id: object, patient_id: int | None, outcome: str
) -> dict[str, Any]:
    if isinstance(actor, User):
        user_id: int | None = actor.id
        name = f"{actor.role}:{actor.username}"
    else:
        user_id, name = None, actor
    return {
        "at": utcnow(),
        "user_id": user_id,
        "actor": name[:200],
        "action": action,
        "resource": resource,
        "resource_id": None if resource_id is None else str(resource_id)[:60],
        "patient_id": patient_id,
        "outcome": outcome,
    }


def record(
    session: Session,
    *,
    actor: User | str,
    action: str,
    resource: str,
    resource_id: object = None,
    patient_id: int | None = None,
    outcome: str = "ok",
) -> None:
    """Add an audit row to the session (written when the session flushes or commits)."""
    session.add(AuditEntry(**_row(actor, action, resource, resource_id, patient_id, outcome)))


def write(
    conn: Connection | Session,
    *,
    actor: User | str,
    action: str,
    resource: str,
    resource_id: object = None,
    patient_id: int | None = None,
    outcome: str = "ok",
) -> None:
    """Insert an audit row now, in the transaction ``conn`` is in (one prepared INSERT, no ORM unit of work)."""
    conn.execute(_INSERT, _row(actor, action, resource, resource_id, patient_id, outcome))
