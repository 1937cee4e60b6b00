"""The SMART launch's searches page through a Bundle as the CDS service's fetches do (``fhir.next_link``,
``fhir.resources_of``): the same pages served to both readers give the same pages read and the same resources."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests_support import run_async
from withdrawal.service.cds.prefetch import FhirPolicy, FhirServer, Limiter
from withdrawal.smart.client import FhirReader, oauth_client
from withdrawal.smart.config import SmartSettings

ISS = "https://ehr.example/fhir"
FIRST = f"{ISS}/Condition?patient=p1&_count=200"
PAGES = 4


def _condition(n: int) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": f"c{n}", "subject": {"reference": "Patient/p1"},
            "code": {"text": f"condition {n}"}}


def _page(n: int, links: list[Any], extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    entries = [{"resource": _condition(n * 10 + i)} for i in range(2)] + [{"resource": r} for r in extra or []]
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}


def _next(url: str) -> dict[str, str]:
    return {"relation": "next", "url": url}


def _served(pages: dict[str, dict[str, Any]]) -> tuple[httpx.MockTransport, list[str]]:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        body = pages.get(str(request.url))
        return httpx.Response(200, json=body) if body is not None else httpx.Response(404)

    return httpx.MockTransport(handler), asked


async def _smart(pages: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    transport, asked = _served(pages)
    smart = SmartSettings(client_id="c", issuers=ISS, max_pages=PAGES)
    client = oauth_client(smart, scope="patient/*.read", redirect_uri="https://app.example/cb",
                          token_endpoint="https://ehr.example/token", transport=transport,
                          token={"access_token": "t", "token_type": "Bearer", "expires_at": time.time() + 3600})
    async with client:
        got = await FhirReader(client, ISS, smart)._search("Condition", "p1")
    return [str(r.get("id")) for r in got], asked


async def _cds(pages: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    transport, asked = _served(pages)
    async with FhirServer(ISS, token="t", policy=FhirPolicy.from_settings((ISS,), ()), limiter=Limiter(2),
                          timeout_s=5, deadline_s=10, transport=transport, max_pages=PAGES) as fhir:
        assert await fhir.refused() is None
        async with fhir.deadline():
            got = await fhir.read(FIRST, PAGES)
    return [str(r.get("id")) for r in got or []], asked


def _both(pages: dict[str, dict[str, Any]]) -> None:
    smart, cds = run_async(_smart(pages)), run_async(_cds(pages))
    assert smart == cds


P2, P3, P4 = (f"{ISS}/Condition?page={n}" for n in (2, 3, 4))
SCENARIOS = {
    "chain": {FIRST: _page(1, [_next(P2)]), P2: _page(2, [_next(P3)]), P3: _page(3, [])},
    "two next links: the first": {FIRST: _page(1, [_next(P2), _next(P3)]), P2: _page(2, []), P3: _page(3, [])},
    "next elsewhere": {FIRST: _page(1, [_next("https://other.example/fhir/Condition?page=2")])},
    "past the page limit": {FIRST: _page(1, [_next(P2)]), P2: _page(2, [_next(P3)]), P3: _page(3, [_next(P4)]),
                            P4: _page(4, [_next(FIRST)])},
    "nested and outcome": {FIRST: _page(1, [{"relation": "self", "url": FIRST}, _next(P2)], [
        {"resourceType": "OperationOutcome", "id": "oo", "issue": []},
        {"resourceType": "Bundle", "id": "b", "entry": [{"resource": _condition(99)}]}]), P2: _page(2, [])},
    "odd links": {FIRST: _page(1, [{"relation": "next", "url": 7}, "next", _next(P2)]), P2: _page(2, [])},
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_launch_and_the_cds_fetch_page_alike(name: str) -> None:
    _both(SCENARIOS[name])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from([FIRST, P2, P3, P4, "https://other.example/x", "self"]), max_size=3),
                min_size=4, max_size=4))
def test_any_links_are_followed_alike(links: list[list[str]]) -> None:
    urls = [FIRST, P2, P3, P4]
    pages = {url: _page(n, [{"relation": "self", "url": u} if u == "self" else _next(u) for u in links[n]])
             for n, url in enumerate(urls)}
    _both(pages)
