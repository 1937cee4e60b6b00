"""The request's unit of work: one commit after the handler, before the answer is sent; a failed request
writes nothing but its refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session
from test_form_fuzz import Browser

from conftest import login
from withdrawal.service.db import make_engine, session_factory
from withdrawal.service.deps import UowDep, unit_of_work
from withdrawal.service.models import AuditEntry, Base


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    engine = make_engine(f"sqlite:///{tmp_path / 'uow.db'}")
    Base.metadata.create_all(engine)
    app = FastAPI()
    app.state.sessions = session_factory(engine)

    @app.post("/ok")
    def ok(uow: UowDep) -> dict[str, str]:
        uow.audit(actor="test", action="create", resource="thing")
        return {"status": "ok"}

    @app.post("/fails")
    def fails(uow: UowDep) -> None:
        uow.audit(actor="test", action="create", resource="thing")
        uow.session.flush()
        raise HTTPException(422, "invalid")

    @app.post("/refused")
    def refused(uow: UowDep) -> None:
        uow.audit(actor="test", action="read", resource="thing")
        uow.refuse(actor="test", action="read", resource="other")
        raise HTTPException(404, "not found")

    @app.post("/shown-again")
    def shown_again(uow: UowDep) -> dict[str, str]:
        uow.refuse(actor="test", action="login", resource="user")
        uow.audit(actor="test", action="create", resource="thing")
        uow.rollback()  # the form is shown again: the write is dropped, the refusal stays
        uow.audit(actor="test", action="create", resource="thing", outcome="invalid")
        return {"status": "again"}

    return app


def _rows(app: FastAPI) -> list[tuple[str, str, str]]:
    with app.state.sessions() as s:
        return [(e.action, e.resource, e.outcome) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_a_request_commits_once_after_its_handler(app: FastAPI) -> None:
    with TestClient(app) as c:
        assert c.post("/ok").status_code == 200
    assert _rows(app) == [("create", "thing", "ok")]


def test_a_failed_request_writes_nothing_but_its_refusals(app: FastAPI) -> None:
    with TestClient(app) as c:
        assert c.post("/fails").status_code == 422
        assert _rows(app) == []
        assert c.post("/refused").status_code == 404
        assert _rows(app) == [("read", "other", "denied")]


def test_rollback_keeps_refusals(app: FastAPI) -> None:
    with TestClient(app) as c:
        assert c.post("/shown-again").status_code == 200
    assert _rows(app) == [("login", "user", "denied"), ("create", "thing", "invalid")]


def test_the_commit_comes_before_the_answer(app: FastAPI) -> None:
    """A commit that fails is a 500, never a 200 whose write was lost (the dependency's scope is the function)."""

    def refuse_commit(_session: Session) -> Any:
        raise RuntimeError("commit refused")

    event.listen(app.state.sessions, "before_commit", refuse_commit)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.post("/ok").status_code == 500
    event.remove(app.state.sessions, "before_commit", refuse_commit)
    assert _rows(app) == []


def test_outside_a_request(app: FastAPI) -> None:
    with pytest.raises(ValueError), unit_of_work(app.state.sessions) as uow:
        uow.audit(actor="test", action="create", resource="thing")
        raise ValueError
    with unit_of_work(app.state.sessions) as uow:
        uow.audit(actor="test", action="create", resource="thing")
    assert _rows(app) == [("create", "thing", "ok")]


def test_a_form_shown_again_audits_no_write(client: TestClient) -> None:
    """A COWS form with errors and a refused taper plan record nothing, and their audit says so: the attempt
    is 'invalid', never a 'create' of something that was not created."""
    app: Any = client.app
    h = login(client, "clinician")
    pid = client.post("/patients", headers=h, json={"display_name": "Form", "data": {
        "age_years": 35, "medications": [{"name": "phenelzine"}]}}).json()["id"]
    web = Browser(client, "clinician")
    assert web.post(f"/app/patients/{pid}/cows", {"sweating": "1"}).status_code == 422
    assert web.post(f"/app/patients/{pid}/plans", {"taper": "1"}).status_code == 422
    with app.state.sessions() as s:
        rows = s.execute(select(AuditEntry.action, AuditEntry.resource, AuditEntry.outcome).where(
            AuditEntry.patient_id == pid, AuditEntry.resource.in_(("assessment", "plan")))).all()
    assert sorted(tuple(r) for r in rows) == [("create", "assessment", "invalid"), ("create", "plan", "invalid")]
