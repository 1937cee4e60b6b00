"""Hypothesis over the SMART endpoints in-process: whatever the query or form, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from withdrawal.app import create_app
from withdrawal.service import Settings
from withdrawal.smart import views as smart_views
from withdrawal.smart.config import SmartSettings

TEXT = st.text(max_size=300) | st.sampled_from(["", "x" * 43, "https://ehr.example.org/fhir", "\x00", "%", "a b"])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data: Path = tmp_path_factory.mktemp("smart-fuzz")
    app = create_app(Settings(environment="test", data_dir=data))
    # SMART on, for an EHR that is never contacted (a configured iss would be; the fuzz names others)
    app.state.smart_settings = SmartSettings(client_id="c", issuers="https://ehr.invalid/fhir",
                                             frame_ancestors="https://ehr.invalid")
    app.state.smart_store = smart_views.Store(600, 1800)
    with TestClient(app) as c:
        yield c


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/smart/launch", "/smart/callback"]),
       params=st.dictionaries(st.sampled_from(["iss", "launch", "state", "code", "error", "other"]), TEXT, max_size=4))
def test_get_never_5xx(client: Any, path: str, params: dict[str, str]) -> None:
    if path == "/smart/launch" and params.get("iss", "").rstrip("/") == "https://ehr.invalid/fhir":
        params["iss"] = "https://other.invalid/fhir"  # the configured one would be contacted
    if path == "/smart/launch" and "iss" not in params and "launch" not in params:
        params["iss"] = ""
    r = client.get(path, params=params)
    assert r.status_code < 500, (path, params, r.status_code)
    assert r.status_code in {200, 302, 400, 401, 403, 404, 409, 422}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/smart/reload", "/smart/save", "/smart/end"]),
       form=st.dictionaries(st.sampled_from(["smart_session", "csrf", "x"]), TEXT, max_size=3),
       origin=st.none() | st.sampled_from(["null", "https://evil.example", "http://testserver"]))
def test_post_never_5xx(client: Any, path: str, form: dict[str, str], origin: str | None) -> None:
    headers = {"origin": origin} if origin else {}
    r = client.post(path, data=form, headers=headers)
    assert r.status_code in {400, 401, 403, 422}, (path, form, r.status_code)
