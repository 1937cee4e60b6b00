"""The authorization request and the launch cookie, in-process with a mocked EHR discovery."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from withdrawal.app import create_app
from withdrawal.service import Settings
from withdrawal.smart import views as smart_views
from withdrawal.smart.config import SmartSettings


def discovery(methods: list[str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/.well-known/smart-configuration")
        host = f"{request.url.scheme}://{request.url.host}"
        return httpx.Response(200, json={"authorization_endpoint": f"{host}/auth", "token_endpoint": f"{host}/token",
                                         "code_challenge_methods_supported": methods})

    return httpx.MockTransport(answer)


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., TestClient]:
    def build(iss: str, transport: httpx.MockTransport, **smart: Any) -> TestClient:
        app = create_app(Settings(environment="test", data_dir=tmp_path))
        app.state.smart_settings = SmartSettings(client_id="withdrawal", issuers=iss, **smart)
        app.state.smart_store = smart_views.Store(600, 1800)
        app.state.smart_transport = transport
        return TestClient(app, follow_redirects=False)

    return build


def test_the_authorization_request_carries_pkce_s256_aud_launch_and_the_smart_scopes(make: Any) -> None:
    iss = "https://ehr-a.example/fhir"
    with make(iss, discovery(["S256"]), redirect_uri="https://withdrawal.example/smart/callback") as c:
        r = c.get("/smart/launch", params={"iss": iss, "launch": "L-123"})
    assert r.status_code == 302
    url = urlsplit(r.headers["location"])
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://ehr-a.example/auth"
    assert q["response_type"] == "code" and q["client_id"] == "withdrawal" and q["aud"] == iss
    assert q["launch"] == "L-123" and q["redirect_uri"] == "https://withdrawal.example/smart/callback"
    assert q["scope"].split() == ["launch", "openid", "fhirUser", "patient/*.rs", "online_access"]
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43 and len(q["state"]) >= 43
    cookie = r.headers["set-cookie"]
    assert "Secure" in cookie and "SameSite=None" in cookie and "Partitioned" in cookie and "HttpOnly" in cookie
    # the verifier stays on the server, bound to the state; the challenge is its S256
    (launch,) = c.app.state.smart_store._launches.values()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(launch.verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == q["code_challenge"] and 43 <= len(launch.verifier) <= 128
    assert launch.verifier not in r.headers["location"] and launch.verifier not in cookie
    assert launch.bound_to(cookie.split(";", 1)[0].split("=", 1)[1]) and not launch.bound_to("another-browser")


def test_standalone_asks_for_launch_patient(make: Any) -> None:
    iss = "https://ehr-b.example/fhir"
    with make(iss, discovery(["S256"])) as c:
        r = c.get("/smart/launch")  # one EHR configured: /smart/launch alone is a standalone launch
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["scope"][0].split()[0] == "launch/patient" and "launch" not in q
    # plain http to a host that is not loopback, no https redirect URI: no Secure cookie, so Lax
    assert "SameSite=Lax" in r.headers["set-cookie"] and "Secure" not in r.headers["set-cookie"]


def test_an_ehr_without_s256_is_refused(make: Any) -> None:
    iss = "https://ehr-c.example/fhir"
    with make(iss, discovery(["plain"])) as c:
        r = c.get("/smart/launch", params={"iss": iss, "launch": "L"})
    assert r.status_code == 502 and 'data-code="discovery"' in r.text and "S256" in r.text
