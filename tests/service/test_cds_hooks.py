"""CDS Hooks 2.0 request/response pairs: discovery, cards, prefetch handling, 412, JWT checks."""

from __future__ import annotations

import base64
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from conftest import ISSUER

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
BASE = "http://testserver/cds-services"
SIGN = "withdrawal-order-sign"


def med(rid: str, code: str, display: str, status: str = "active", **kw: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"system": RX, "code": code, "display": display}]},
        **kw,
    }


def bundle(*res: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in res]}


PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1980-04-02", "gender": "female"}
TRAMADOL = med(
    "draft-1",
    "835603",
    "tramadol hydrochloride 50 MG Oral Tablet",
    status="draft",
    dosageInstruction=[
        {
            "timing": {"repeat": {"frequency": 1, "period": 6, "periodUnit": "h"}},
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
        }
    ],
)


def request(
    hook: str = "order-sign",
    *,
    meds: list[dict[str, Any]] = (),
    drafts: list[dict[str, Any]] = (TRAMADOL,),
    prefetch: dict[str, Any] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    ctx: dict[str, Any] = {"userId": "Practitioner/1", "patientId": "p1"}
    if hook != "patient-view":
        ctx["draftOrders"] = bundle(*drafts)
    if hook == "order-select":
        ctx["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts[:1]]
    pf = {
        "patient": PATIENT,
        "conditions": bundle(),
        "medications": bundle(*meds),
        "statements": None,
        "allergies": bundle(),
        "observations": bundle(),
        "procedures": bundle(),
    }
    if prefetch is not None:
        pf.update(prefetch)
        pf = {k: v for k, v in pf.items() if v != "ABSENT"}
    return {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": ctx, "prefetch": pf, **kw}


@pytest.fixture
def cds(app_factory, keys) -> Any:
    with TestClient(app_factory()) as c:

        def call(service: str, body: Any, *, token: str | None = None) -> httpx.Response:
            tok = token or keys.token(f"{BASE}/{service}")
            return c.post(f"/cds-services/{service}", json=body, headers={"Authorization": f"Bearer {tok}"})

        c.call = call  # type: ignore[attr-defined]
        yield c


def test_discovery_lists_services_with_prefetch(cds, keys) -> None:
    r = cds.get("/cds-services", headers={"Authorization": f"Bearer {keys.token(BASE)}"})
    assert r.status_code == 200
    services = {s["id"]: s for s in r.json()["services"]}
    assert {s["hook"] for s in services.values()} == {"patient-view", "order-sign", "order-select"}
    assert services[SIGN]["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert all(s["title"] and s["description"] for s in services.values())


def _check_card(card: dict[str, Any]) -> None:
    assert len(card["summary"]) < 140
    assert card["indicator"] in {"info", "warning", "critical"}
    assert card["source"]["label"] and card["source"]["url"].startswith("http")
    if card.get("suggestions"):
        assert card["selectionBehavior"] in {"at-most-one", "any"}
        for s in card["suggestions"]:
            assert s["uuid"] and s["label"]
            for a in s["actions"]:
                assert a["type"] in {"create", "update", "delete"} and a["description"]


def test_tramadol_with_sertraline_gives_a_warning_card(cds) -> None:
    r = cds.call(SIGN, request(meds=[med("m1", "36437", "sertraline")]))
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    for c in cards:
        _check_card(c)
    sero = [c for c in cards if "serotonergic" in c["summary"]]
    assert sero and sero[0]["indicator"] == "warning"
    assert not any(c["indicator"] == "critical" for c in cards)
    labels = [s["label"] for s in sero[0]["suggestions"]]
    assert "Replace with buprenorphine/naloxone" in labels
    replace = sero[0]["suggestions"][0]
    assert {a["type"] for a in replace["actions"]} == {"delete", "create"}
    assert replace["actions"][0]["resourceId"] == "MedicationRequest/draft-1"
    assert sero[0]["overrideReasons"][0]["code"]


def test_breastfeeding_status_in_prefetch_gives_a_card(cds, keys) -> None:
    """LOINC 63895-7 = LA29252-6 (currently breastfeeding): tramadol is not recommended (label 8.2)."""
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-20",
        "code": {"coding": [{"system": "http://loinc.org", "code": "63895-7"}]},
        "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA29252-6"}]},
    }
    cards = cds.call(SIGN, request(prefetch={"observations": bundle(obs)})).json()["cards"]
    flagged = [c for c in cards if "breastfeeding" in c["summary"].lower()]
    assert flagged and flagged[0]["indicator"] in ("warning", "critical")
    clean = cds.call(SIGN, request()).json()["cards"]
    assert not any("breastfeeding" in c["summary"].lower() for c in clean)
    services = cds.get("/cds-services", headers={"Authorization": f"Bearer {keys.token(BASE)}"}).json()["services"]
    assert all("63895-7" in s["prefetch"]["observations"] for s in services)


def test_card_sources_list_primary_first_and_mark_the_others(cds) -> None:
    """The CNS-depressant finding cites the label (primary) and label copies and interaction sites (secondary)."""
    cards = cds.call(SIGN, request(meds=[med("m1", "25480", "gabapentin")])).json()["cards"]
    card = next(c for c in cards if "cns depressant" in c["summary"].lower())
    links = card["detail"].split("Sources:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    marked = [("(secondary source)" in line or "(low-trust source)" in line) for line in links]
    assert any(marked) and not all(marked)
    assert marked == sorted(marked)  # every unmarked (primary) link before the marked ones
    assert card["source"]["url"].startswith("https://api.fda.gov/")  # the card's own source: the primary label


def test_tramadol_with_phenelzine_stopped_within_14_days_is_critical(cds) -> None:
    stopped = med(
        "m2",
        "8123",
        "phenelzine",
        status="stopped",
        dispenseRequest={"validityPeriod": {"end": time.strftime("%Y-%m-%d", time.gmtime(time.time() - 5 * 86400))}},
    )
    cards = cds.call(SIGN, request(meds=[stopped])).json()["cards"]
    crit = [c for c in cards if c["indicator"] == "critical"]
    assert crit and "maoi" in crit[0]["summary"].lower()
    assert crit[0]["source"]["url"].startswith("http")


def test_clean_patient_gets_no_blocking_card(cds) -> None:
    cards = cds.call(SIGN, request()).json()["cards"]
    assert cards and all(c["indicator"] == "info" for c in cards)


def test_tramadol_dose_over_limit_is_flagged(cds) -> None:
    big = {
        **TRAMADOL,
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 1, "period": 4, "periodUnit": "h"}},
                "doseAndRate": [{"doseQuantity": {"value": 100, "unit": "mg"}}],
            }
        ],
    }
    cards = cds.call(SIGN, request(drafts=[big])).json()["cards"]
    assert any("exceeds" in c["summary"] and c["indicator"] == "warning" for c in cards)


def test_other_order_interacting_with_patients_tramadol(cds) -> None:
    fluox = med("draft-2", "4493", "fluoxetine 20 MG Oral Capsule", status="draft")
    body = request(meds=[med("m3", "10689", "tramadol")], drafts=[fluox])
    cards = cds.call(SIGN, body).json()["cards"]
    assert cards and any(c["indicator"] in {"warning", "critical"} for c in cards)
    assert all("fluoxetine" in c["summary"].lower() for c in cards)
    # the same order for a patient not on tramadol: no card
    assert cds.call(SIGN, request(drafts=[fluox])).json()["cards"] == []


def test_order_select_reads_the_unselected_basket_as_context(cds) -> None:
    """order-select: the selected order is screened, the rest of draftOrders is context (CDS Hooks 2.0)."""
    other = med("draft-9", "36437", "sertraline", status="draft")
    body = request("order-select", drafts=[other, TRAMADOL])  # sertraline selected, tramadol in the basket
    cards = cds.call("withdrawal-order-select", body).json()["cards"]
    assert any("sertraline with the patient's tramadol" in c["summary"] for c in cards)
    body = request("order-select", drafts=[TRAMADOL, other])  # tramadol selected, sertraline in the basket
    cards = cds.call("withdrawal-order-select", body).json()["cards"]
    sero = [c for c in cards if "serotonergic" in c["summary"]]
    assert sero and sero[0]["indicator"] == "warning"
    deleted = {a.get("resourceId") for s in sero[0]["suggestions"] for a in s["actions"] if a["type"] == "delete"}
    assert deleted == {"MedicationRequest/draft-1"}  # only the selected order is proposed for removal


def test_patient_view_on_tramadol(cds) -> None:
    r = cds.call("withdrawal-patient-view", request("patient-view", meds=[med("m3", "10689", "tramadol")]))
    cards = r.json()["cards"]
    assert len(cards) == 1 and "tramadol" in cards[0]["summary"].lower()
    _check_card(cards[0])
    assert cds.call("withdrawal-patient-view", request("patient-view")).json()["cards"] == []


def test_null_prefetch_means_no_data_and_operation_outcome_is_ignored(cds) -> None:
    oo = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]}
    body = request(prefetch={"conditions": None, "medications": bundle(oo, med("m1", "36437", "sertraline"))})
    cards = cds.call(SIGN, body).json()["cards"]
    assert any("serotonergic" in c["summary"] for c in cards)


def test_a_bundle_in_a_prefetched_bundle_is_read_as_the_mapper_reads_it(cds) -> None:
    # a Bundle's entries, nested Bundles too, an OperationOutcome passed over: the reading table's rows, as
    # ``fhir.resources_of`` reads them for every path
    oo = {"resourceType": "OperationOutcome", "issue": []}
    nested = bundle(bundle(oo, med("m1", "36437", "sertraline")))
    cards = cds.call(SIGN, request(prefetch={"medications": nested})).json()["cards"]
    assert any("serotonergic" in c["summary"] for c in cards), [c["summary"] for c in cards]


def test_missing_prefetch_without_fhir_server_is_412(cds) -> None:
    assert cds.call(SIGN, request(prefetch={"patient": "ABSENT"})).status_code == 412
    assert cds.call(SIGN, request(prefetch={"patient": None})).status_code == 412
    oo = {"resourceType": "OperationOutcome", "issue": []}
    assert cds.call(SIGN, request(prefetch={"medications": oo})).status_code == 412
    body = request()
    del body["prefetch"]
    assert cds.call(SIGN, body).status_code == 412


def test_missing_prefetch_is_fetched_from_fhir_server_with_the_token(app_factory, keys) -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        path = req.url.path
        if path.endswith("/Patient/p1"):
            return httpx.Response(200, json=PATIENT)
        if path.endswith("/MedicationRequest"):
            return httpx.Response(200, json=bundle(med("m1", "36437", "sertraline")))
        if path.endswith("/Condition"):
            return httpx.Response(200, json=bundle())
        return httpx.Response(500)

    app = app_factory(fhir_transport=httpx.MockTransport(handler), cds_fhir_servers=("https://fhir.example.org/r4",))
    with TestClient(app) as c:
        body = request()
        del body["prefetch"]
        body["fhirServer"] = "https://fhir.example.org/r4"
        body["fhirAuthorization"] = {
            "access_token": "tok-123",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds",
        }
        r = c.post(
            f"/cds-services/{SIGN}", json=body, headers={"Authorization": f"Bearer {keys.token(f'{BASE}/{SIGN}')}"}
        )
        assert r.status_code == 200, r.text
        assert any("serotonergic" in card["summary"] for card in r.json()["cards"])
        assert seen and all(q.headers["authorization"] == "Bearer tok-123" for q in seen)
        assert seen[0].url.host == "fhir.example.org"


def test_fhir_server_failure_for_required_data_is_412(app_factory, keys) -> None:
    transport = httpx.MockTransport(lambda req: httpx.Response(503))
    with TestClient(app_factory(fhir_transport=transport, cds_fhir_servers=("https://fhir.example.org/r4",))) as c:
        body = request(prefetch={"patient": "ABSENT"}, fhirServer="https://fhir.example.org/r4")
        r = c.post(
            f"/cds-services/{SIGN}", json=body, headers={"Authorization": f"Bearer {keys.token(f'{BASE}/{SIGN}')}"}
        )
        assert r.status_code == 412


def _b64(d: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


def test_bad_jwts_are_refused(cds, keys) -> None:
    aud = f"{BASE}/{SIGN}"
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": aud, "iat": now, "exp": now + 300, "jti": "x1", "sub": "c"}
    none_token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    pem = keys.rsa.public_key().public_bytes(encoding=Encoding.PEM, format=PublicFormat.SubjectPublicKeyInfo)
    hs_token = jwt.encode(
        {**claims, "jti": "x2"}, "a-shared-secret-that-is-long-enough-32b", algorithm="HS256", headers={"kid": "rsa1"}
    )
    # key confusion: HS256 "signed" with the RSA public key as the shared secret
    signing_input = f"{_b64({'alg': 'HS256', 'kid': 'rsa1'})}.{_b64({**claims, 'jti': 'x3'})}"
    sig = base64.urlsafe_b64encode(hmac.new(pem, signing_input.encode(), "sha256").digest()).decode().rstrip("=")
    confusion = f"{signing_input}.{sig}"
    bad = {
        "none": none_token,
        "hs256": hs_token,
        "key-confusion": confusion,
        "wrong-aud": keys.token("https://elsewhere.example/cds-services/x"),
        "expired": keys.token(aud, exp_in=-600),
        "wrong-iss": keys.token(aud, iss="https://evil.example"),
        "no-jti": keys.token(aud, drop=("jti",)),
        "unknown-kid": keys.token(aud, kid="nope"),
        "garbage": "not.a.jwt",
        # a header nested deeper than the JSON parser's recursion limit: refused, not a 500
        "deep-header": base64.urlsafe_b64encode(b'{"a":' * 5000 + b"1" + b"}" * 5000).rstrip(b"=").decode()
        + ".e30.c2ln",
    }
    for name, tok in bad.items():
        r = cds.call(SIGN, request(), token=tok)
        assert r.status_code == 401, name
    assert cds.post(f"/cds-services/{SIGN}", json=request()).status_code == 401
    # RS384 from the same key set is accepted; replaying its jti is not
    good = keys.token(aud, alg="RS384", jti="once")
    assert cds.call(SIGN, request(), token=good).status_code == 200
    assert cds.call(SIGN, request(), token=good).status_code == 401


def test_feedback_is_stored(cds, keys) -> None:
    card = cds.call(SIGN, request(meds=[med("m1", "36437", "sertraline")])).json()["cards"][0]
    fb = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-27T10:00:00Z",
                "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "discussed"},
            }
        ]
    }
    tok = keys.token(f"{BASE}/{SIGN}/feedback")
    r = cds.post(f"/cds-services/{SIGN}/feedback", json=fb, headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200 and r.json() == {"received": 1}
    from sqlalchemy import select

    from withdrawal.service.models import CdsFeedback

    with cds.app.state.sessions() as s:
        row = s.scalar(select(CdsFeedback))
        assert row is not None and row.outcome == "overridden" and row.client == ISSUER


def test_malformed_cds_requests_are_4xx(cds) -> None:
    for body in ({}, {"hook": "order-sign"}, [], {"hook": "order-sign", "hookInstance": "x", "context": "no"}):
        assert cds.call(SIGN, body).status_code in (400, 422)
    assert cds.call(SIGN, request("patient-view")).status_code == 400
    assert cds.call("nope", request()).status_code == 404


@pytest.mark.parametrize("key", ["statements", "allergies", "observations", "procedures"])
def test_a_prefetch_key_left_out_with_no_server_is_named_not_read_as_empty(cds, key: str) -> None:
    """CDS Hooks: a key with no data is null; a key left out was not filled. Without a fhirServer to fetch
    it from, the record is incomplete (a tramadol allergy, an MAOI statement, a tonsillectomy or a
    pregnancy could be in it): named, never the clean card. The same request with the key null is clean."""
    body = request()
    body["prefetch"][key] = None
    assert all(c["indicator"] == "info" for c in cds.call(SIGN, body).json()["cards"])
    del body["prefetch"][key]
    cards = cds.call(SIGN, body).json()["cards"]
    assert any(c["indicator"] in ("warning", "critical") for c in cards), cards
    named = " ".join(c["summary"] + " " + c.get("detail", "") for c in cards)
    assert f"record not had: {key}" in named, named


def test_a_draft_order_starting_later_is_screened(cds) -> None:
    """An order signed today for a course that starts next week (dispenseRequest.validityPeriod.start in the
    future, as EHRs write a post-dated prescription) is screened like any draft: with an MAOI stopped five
    days ago it is the critical card, not 'order not screened'."""
    week = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 7 * 86400))
    later = {**TRAMADOL, "dispenseRequest": {"validityPeriod": {"start": week}}}
    stopped = med("m2", "8123", "phenelzine", status="stopped", dispenseRequest={"validityPeriod": {
        "end": time.strftime("%Y-%m-%d", time.gmtime(time.time() - 5 * 86400))}})  # fmt: skip
    cards = cds.call(SIGN, request(meds=[stopped], drafts=[later])).json()["cards"]
    assert any(c["indicator"] == "critical" and "maoi" in c["summary"].lower() for c in cards), cards
    assert not any(c["summary"].startswith("Order not screened") for c in cards)
