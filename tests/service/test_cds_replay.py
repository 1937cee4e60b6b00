"""The CDS calls' write: the JWT id and the audit row in one transaction, on real SQLite and PostgreSQL.

What must hold: a replayed JWT id is refused and rolls the transaction back whole (no audit row of the
replay), and expired ids are pruned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from withdrawal.service import audit
from withdrawal.service.cds.jwt_auth import ReplayGuard, replay_key
from withdrawal.service.db import make_engine, migrate
from withdrawal.service.errors import CdsAuthError
from withdrawal.service.models import AuditEntry, CdsJti


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: Any, tmp_path: Path) -> Any:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'p.db'}"
    eng = make_engine(url)
    migrate(eng)
    yield eng
    eng.dispose()


def test_replayed_jti_is_refused_and_rolls_back_the_audit_row(engine: Any) -> None:
    guard = ReplayGuard()
    claims = {"iss": "https://ehr.example", "jti": "j-1", "exp": (datetime.now(UTC) + timedelta(minutes=5)).timestamp()}
    with Session(engine) as s:
        guard.remember(s, claims, datetime.now(UTC))
        s.add(audit.entry(actor="cds:x", action="cds", resource="svc", resource_id="first"))
        s.commit()
    with Session(engine) as s, pytest.raises(CdsAuthError, match="already used"):
        s.add(audit.entry(actor="cds:x", action="cds", resource="svc", resource_id="replay"))
        guard.remember(s, claims, datetime.now(UTC))
        s.commit()
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(CdsJti)) == 1
        assert s.scalars(select(AuditEntry.resource_id)).all() == ["first"]  # nothing half-written


def test_expired_jti_rows_are_pruned(engine: Any) -> None:
    guard = ReplayGuard(prune_every_s=0)
    old = {"iss": "i", "jti": "old", "exp": (datetime.now(UTC) - timedelta(hours=1)).timestamp()}
    new = {"iss": "i", "jti": "new", "exp": (datetime.now(UTC) + timedelta(minutes=5)).timestamp()}
    with Session(engine) as s:
        guard.remember(s, old, datetime.now(UTC) - timedelta(hours=2))
        s.commit()
    with Session(engine) as s:
        guard.remember(s, new, datetime.now(UTC))
        s.commit()
    with Session(engine) as s:
        assert s.scalars(select(CdsJti.jti)).all() == [replay_key("i", "new")]
