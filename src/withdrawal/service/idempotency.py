"""``Idempotency-Key`` on the REST API's writes: a retry after a lost acknowledgement creates nothing twice.

The key is the client's (per user); the row that remembers it (which resource the write
created, and a digest of the request) is inserted in the same transaction as the write,
so a write and its key commit together or not at all. A retry with the same key and the
same request gets the resource created the first time (same status, same body); the same
key with a different request is a 422. Two concurrent requests with one key: one commits,
the other meets the unique constraint and answers with the first one's resource. Keys
older than :data:`RETENTION` are forgotten (deleted as new keys are written).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Annotated

from fastapi import Header, HTTPException
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from withdrawal.service.deps import UnitOfWork
from withdrawal.service.models import IdempotencyKey, User, aware, utcnow

RETENTION = timedelta(hours=24)

IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique text (a UUID); a retry with the same key and body returns the first answer.",
    ),
]


def fingerprint(scope: str, body: BaseModel) -> str:
    """A digest of what the request asks for: the operation and its validated body."""
    data = json.dumps([scope, body.model_dump(mode="json")], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def seen(session: Session, user: User, key: str | None, scope: str, body: BaseModel) -> int | None:
    """The id of the resource this key already created, or None (a new key, or no key)."""
    if key is None:
        return None
    row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.user_id == user.id, IdempotencyKey.key == key))
    if row is None or aware(row.created_at) < utcnow() - RETENTION:
        return None
    if row.fingerprint != fingerprint(scope, body):
        raise HTTPException(
            422, [{"field": "Idempotency-Key", "message": "already used for a different request; use a new key"}]
        )
    return row.resource_id


def remember(
    session: Session, user: User, key: str | None, scope: str, body: BaseModel, resource: str, resource_id: int
) -> None:
    """Add the key's row to the write's transaction (committed by :func:`commit`)."""
    if key is None:
        return
    now = utcnow()
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < now - RETENTION,
        )
    )
    session.add(
        IdempotencyKey(
            user_id=user.id, key=key, fingerprint=fingerprint(scope, body), resource=resource,
            resource_id=resource_id, created_at=now,
        )
    )


def commit(uow: UnitOfWork, user: User, key: str | None, scope: str, body: BaseModel) -> int | None:
    """Commit the write now; when a concurrent request with the same key won, roll back and return its resource id.

    The one place a route commits before it returns: its answer depends on whether this write won.
    """
    try:
        uow.commit()
    except IntegrityError:
        uow.rollback()
        if key is None:
            raise
        first = seen(uow.session, user, key, scope, body)
        if first is None:
            raise HTTPException(409, "the write conflicts with a concurrent request; retry") from None
        return first
    return None


