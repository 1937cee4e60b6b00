"""The audit log: who read or wrote which patient's data, and when.

Rows are added to the request's own transaction, so a write and its audit row
are committed together or not at all.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from withdrawal.service.models import AuditEntry, User, utcnow


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
    if isinstance(actor, User):
        user_id: int | None = actor.id
        name = f"{actor.role}:{actor.username}"
    else:
        user_id, name = None, actor
    session.add(
        AuditEntry(
            at=utcnow(),
            user_id=user_id,
            actor=name[:200],
            action=action,
            resource=resource,
            resource_id=None if resource_id is None else str(resource_id)[:60],
            patient_id=patient_id,
            outcome=outcome,
        )
    )
