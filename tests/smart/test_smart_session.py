"""A launched session's reload and save over real HTTP (no browser) against the loopback test EHR:
what each request reads from the EHR, and that a refreshed token is kept whatever the request does next.
"""

from __future__ import annotations

import re
import time
from typing import TypeVar

import httpx
import jwt
import pytest
from ehr import CLIENT_ID, App, Ehr

from tests_support import free_port, run_async
from withdrawal.smart import client as smart_client
from withdrawal.smart.client import Endpoints, SmartError, discover, fhir_user
from withdrawal.smart.config import SmartSettings

T = TypeVar("T")
RECORD_READS = ["Patient", "Condition", "MedicationRequest", "MedicationStatement", "AllergyIntolerance",
                "Observation"]


def launch(app: App, ehr: Ehr) -> str:
    """A standalone launch through the EHR's authorization server; the page's session token."""
    with httpx.Client(timeout=30) as http:
        launched = http.get(f"{app.base_url}/smart/launch", params={"iss": ehr.fhir})
        assert launched.status_code == 302, launched.text
        binder = launched.headers["set-cookie"].split(";", 1)[0]
        back = http.get(launched.headers["location"])
        assert back.status_code == 302
        # the binding cookie is Secure: sent by hand, as a browser sends it to loopback
        page = http.get(back.headers["location"], headers={"cookie": binder})
    assert page.status_code == 200 and 'id="smart-patient"' in page.text, page.text
    found = re.search(r'name="smart_session" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def post(app: App, action: str, token: str) -> httpx.Response:
    return httpx.post(f"{app.base_url}/smart/{action}", data={"smart_session": token}, timeout=30)


def test_a_save_reads_the_ehr_record_once(ehr: Ehr, app: App) -> None:
    token = launch(app, ehr)
    ehr.events.clear()
    saved = post(app, "save", token)
    assert saved.status_code == 200 and 'id="smart-saved"' in saved.text, saved.text
    assert ehr.seen("fhir") == RECORD_READS  # read once, saved and assessed from the same reading
    ehr.events.clear()
    reloaded = post(app, "reload", token)
    assert reloaded.status_code == 200 and 'id="smart-saved"' not in reloaded.text
    assert ehr.seen("fhir") == RECORD_READS


def test_a_token_refreshed_during_a_save_that_fails_is_kept(ehr: Ehr, app: App) -> None:
    """The EHR rotates refresh tokens: the one the failed save's refresh replaced is spent."""
    ehr.controls.expires_in = 32  # the app refreshes 30 s before expiry: due 1-2 s after the launch
    token = launch(app, ehr)
    assert ehr.seen("refresh") == []
    time.sleep(2.1)
    ehr.controls.expires_in = 3600
    ehr.controls.failing_search = "Observation"  # the save's read fails after the refresh
    ehr.events.clear()
    failed = post(app, "save", token)
    assert failed.status_code == 502 and 'data-code="fhir"' in failed.text, failed.text
    assert ehr.seen("refresh") == ["ok"] and "Observation 500" in ehr.seen("fhir")
    ehr.controls.failing_search = None
    ehr.events.clear()
    reloaded = post(app, "reload", token)
    assert reloaded.status_code == 200 and 'data-verdict="avoid"' in reloaded.text, reloaded.text
    assert ehr.seen("refresh") == []  # the new access token was kept, and with it the new refresh token
    assert ehr.seen("fhir") == RECORD_READS


def test_a_refresh_is_said_on_the_page_of_the_request_that_made_it(ehr: Ehr, app: App) -> None:
    ehr.controls.expires_in = 32
    token = launch(app, ehr)
    time.sleep(2.1)
    ehr.controls.expires_in = 3600
    ehr.events.clear()
    saved = post(app, "save", token)
    assert saved.status_code == 200 and 'id="smart-saved"' in saved.text
    assert 'id="smart-refreshed"' in saved.text and ehr.seen("refresh") == ["ok"]
    assert ehr.seen("fhir") == RECORD_READS
    again = post(app, "reload", token)
    assert again.status_code == 200 and 'id="smart-refreshed"' not in again.text


def test_discovery_and_the_jwk_set_are_fetched_once_and_cached(ehr: Ehr) -> None:
    settings = SmartSettings(client_id=CLIENT_ID, issuers=ehr.fhir)
    smart_client._discovered.clear()
    smart_client._jwks.clear()
    now = int(time.time())
    claims = {"iss": ehr.base, "sub": "dr", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
              "fhirUser": f"{ehr.fhir}/{ehr.practitioner}"}
    id_token = jwt.encode(claims, ehr.signing_key, algorithm="RS256", headers={"kid": "ehr-1"})

    async def twice() -> list[str | None]:
        users = []
        for _ in range(2):
            found = await discover(ehr.fhir, settings)
            assert found.token_endpoint == f"{ehr.base}/token" and found.jwks_uri == f"{ehr.base}/jwks"
            users.append(await fhir_user(id_token, found, settings))
        return users

    assert run_async(twice()) == [f"{ehr.fhir}/{ehr.practitioner}"] * 2
    assert ehr.seen("discovery") == ["ok"] and ehr.seen("jwks") == ["ok"]


def test_a_jwk_set_that_cannot_be_reached_refuses_the_id_token(ehr: Ehr) -> None:
    settings = SmartSettings(client_id=CLIENT_ID, issuers=ehr.fhir)
    nowhere = f"http://127.0.0.1:{free_port()}/jwks"  # nothing listens there
    id_token = jwt.encode({"iss": ehr.base, "aud": CLIENT_ID}, ehr.signing_key, algorithm="RS256")
    endpoints = Endpoints(f"{ehr.base}/authorize", f"{ehr.base}/token", (), ehr.base, nowhere)
    with pytest.raises(SmartError, match="ConnectError") as refused:
        run_async(fhir_user(id_token, endpoints, settings))
    assert refused.value.code == "id_token" and refused.value.status == 400
    missing = Endpoints(f"{ehr.base}/authorize", f"{ehr.base}/token", (), ehr.base, f"{ehr.base}/no-jwks")
    with pytest.raises(SmartError, match=r"JWK Set: HTTP 404") as refused:
        run_async(fhir_user(id_token, missing, settings))
    assert refused.value.code == "id_token"
