"""SMART settings, the launch and session store, and the parts of the client that need no EHR."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from pydantic import ValidationError

from withdrawal.smart.client import SmartError, check_patient_id
from withdrawal.smart.config import SmartSettings
from withdrawal.smart.store import Launch, SmartSession, Store


def launch() -> Launch:
    return Launch(iss="https://ehr.example.org/fhir", launch="l1", verifier="v" * 86, binder_digest="x",
                  authorization_endpoint="https://ehr.example.org/auth", token_endpoint="https://ehr.example.org/token",
                  scope="launch", redirect_uri="https://app.example.org/smart/callback")


def test_smart_is_off_until_a_client_id_and_an_issuer_are_set() -> None:
    assert not SmartSettings().enabled
    s = SmartSettings(client_id="c", issuers="https://ehr.example.org/fhir/, https://b.example.org/r4")
    assert s.enabled and s.issuers == ("https://ehr.example.org/fhir", "https://b.example.org/r4")
    assert s.allows("https://ehr.example.org/fhir/") and not s.allows("https://ehr.example.org/other")


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("issuers", "http://ehr.example.org/fhir", "must use https"),
        ("issuers", "https://user:pw@ehr.example.org/fhir", "userinfo"),
        ("issuers", "ftp://ehr.example.org", "not an absolute http(s) URL"),
        ("frame_ancestors", "https://ehr.example.org/chart", "must be an origin"),
        ("redirect_uri", "https://app.example.org/cb?x=1", "query"),
    ],
)
def test_bad_settings_are_refused_by_name(field: str, value: str, says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        SmartSettings(client_id="c", **{field: value})


def test_issuers_need_a_client_id() -> None:
    with pytest.raises(ValidationError, match="WITHDRAWAL_SMART_CLIENT_ID"):
        SmartSettings(issuers="https://ehr.example.org/fhir")


def test_loopback_may_use_http_for_a_local_test_ehr() -> None:
    assert SmartSettings(client_id="c", issuers="http://127.0.0.1:9000/fhir").issuers == ("http://127.0.0.1:9000/fhir",)


def test_a_state_is_single_use_and_expires() -> None:
    store = Store(launch_ttl_s=0.2, session_ttl_s=60)
    state = store.add_launch(launch())
    assert len(state) >= 43
    assert store.take_launch(state) is not None
    assert store.take_launch(state) is None  # used
    late = store.add_launch(launch())
    time.sleep(0.3)
    assert store.take_launch(late) is None  # expired


def test_a_session_token_is_unguessable_short_lived_and_can_be_ended() -> None:
    store = Store(launch_ttl_s=60, session_ttl_s=0.2)
    sess = SmartSession(iss="https://ehr.example.org/fhir", patient="p1", token={"access_token": "a"},
                        token_endpoint="https://ehr.example.org/token", scope="launch")
    tokens = {store.add_session(sess) for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) >= 43 for t in tokens)
    one = next(iter(tokens))
    assert store.session(one) is sess
    assert store.session(one[:-1] + ("A" if one[-1] != "A" else "B")) is None
    store.end_session(one)
    assert store.session(one) is None
    other = next(iter(tokens - {one}))
    time.sleep(0.3)
    assert store.session(other) is None  # expired


def test_the_store_keeps_digests_not_secrets() -> None:
    store = Store(launch_ttl_s=60, session_ttl_s=60)
    state = store.add_launch(launch())
    assert state not in repr(vars(store))


@pytest.mark.parametrize("value", [None, "", "a/b", "x" * 65, "p 1", 5])
def test_a_token_response_without_a_usable_patient_is_refused(value: object) -> None:
    with pytest.raises(SmartError, match="patient"):
        check_patient_id(value)


def test_serve_refuses_several_workers_with_smart_and_names_a_bad_smart_setting(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from withdrawal.cli import app

    monkeypatch.setenv("WITHDRAWAL_SMART_CLIENT_ID", "withdrawal")
    monkeypatch.setenv("WITHDRAWAL_SMART_ISSUERS", "https://ehr.example.org/fhir")
    result = CliRunner().invoke(app, ["serve", "--workers", "2", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--workers 1" in result.output
    monkeypatch.setenv("WITHDRAWAL_SMART_ISSUERS", "http://ehr.example.org/fhir")
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "must use https" in result.output


@pytest.mark.parametrize(("url", "same"), [
    ("https://ehr.example/fhir/Patient/1", True),
    ("https://ehr.example/fhir", True),
    ("https://ehr.example/fhir-other/Patient/1", False),  # a path that only starts with the base's text
    ("https://ehr.example/other/fhir/Patient/1", False),
    ("http://ehr.example/fhir/Patient/1", False),
    ("https://ehr.example:8443/fhir/Patient/1", False),
])
def test_the_access_token_goes_only_to_the_launchs_fhir_base(url: str, same: bool) -> None:
    """A next link or a reference is followed with the bearer token only on the launch's base path."""
    from withdrawal.smart.client import FhirReader

    reader = FhirReader(None, "https://ehr.example/fhir", SmartSettings())  # type: ignore[arg-type]
    assert reader._same_server(url) is same
