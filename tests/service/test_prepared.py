"""The CDS calls' write path: prepared INSERTs on the driver connection, on real SQLite and PostgreSQL.

What must hold: a row written this way reads back through the ORM exactly like one
the ORM wrote; a replayed JWT id is refused and rolls the transaction back whole; a
statement that would need column defaults is refused at start-up, not run short.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from withdrawal.service import audit
from withdrawal.service.audit import AuditWriter
from withdrawal.service.cds.jwt_auth import ReplayGuard, replay_key
from withdrawal.service.db import make_engine, migrate
from withdrawal.service.errors import CdsAuthError
from withdrawal.service.models import AuditEntry, CdsJti
from withdrawal.service.prepared import driver_transaction, prepared_insert
from withdrawal.service.responses import FastJSONResponse


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: Any, tmp_path: Path) -> Any:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'p.db'}"
    eng = make_engine(url)
    migrate(eng)
    yield eng
    eng.dispose()


def test_prepared_audit_row_reads_back_like_an_orm_row(engine: Any) -> None:
    with driver_transaction(engine) as cur:
        AuditWriter(engine).write(cur, actor="cds:https://ehr.example", action="cds", resource="svc", resource_id="h1")
    with Session(engine) as s:
        audit.record(s, actor="cds:https://ehr.example", action="cds", resource="svc", resource_id="h2")
        s.commit()
    with Session(engine) as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [r.resource_id for r in rows] == ["h1", "h2"]
    fast, orm = rows
    for col in ("user_id", "actor", "action", "resource", "patient_id", "outcome"):
        assert getattr(fast, col) == getattr(orm, col), col
    assert type(fast.at) is type(orm.at) and (fast.at.tzinfo is None) == (orm.at.tzinfo is None)
    assert timedelta(0) <= orm.at - fast.at < timedelta(seconds=30)


def test_replayed_jti_is_refused_and_rolls_back_the_audit_row(engine: Any) -> None:
    guard, writer = ReplayGuard(engine), AuditWriter(engine)
    claims = {"iss": "https://ehr.example", "jti": "j-1", "exp": (datetime.now(UTC) + timedelta(minutes=5)).timestamp()}
    with driver_transaction(engine) as cur:
        guard.remember(cur, claims, datetime.now(UTC))
        writer.write(cur, actor="cds:x", action="cds", resource="svc", resource_id="first")
    with pytest.raises(CdsAuthError, match="already used"), driver_transaction(engine) as cur:
        writer.write(cur, actor="cds:x", action="cds", resource="svc", resource_id="replay")
        guard.remember(cur, claims, datetime.now(UTC))
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(CdsJti)) == 1
        assert s.scalars(select(AuditEntry.resource_id)).all() == ["first"]  # nothing half-written


def test_expired_jti_rows_are_pruned(engine: Any) -> None:
    guard = ReplayGuard(engine, prune_every_s=0)
    old = {"iss": "i", "jti": "old", "exp": (datetime.now(UTC) - timedelta(hours=1)).timestamp()}
    new = {"iss": "i", "jti": "new", "exp": (datetime.now(UTC) + timedelta(minutes=5)).timestamp()}
    with driver_transaction(engine) as cur:
        guard.remember(cur, old, datetime.now(UTC) - timedelta(hours=2))
    with driver_transaction(engine) as cur:
        guard.remember(cur, new, datetime.now(UTC))
    with Session(engine) as s:
        assert s.scalars(select(CdsJti.jti)).all() == [replay_key("i", "new")]


def test_statement_needing_column_defaults_is_refused(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    with pytest.raises(ValueError, match="outcome"):
        prepared_insert(AuditEntry, eng.dialect, ("at", "actor", "action", "resource"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fast_json_response_is_the_same_json(value: Any) -> None:
    import json

    body = FastJSONResponse(value).body
    assert json.loads(body) == value
    assert body == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
