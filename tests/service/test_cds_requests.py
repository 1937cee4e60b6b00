"""CDS Hooks requests as EHRs write them, against the real HTTP server (uvicorn in a subprocess).

Order-select baskets, ``context.patientId`` as ``Patient/<id>``, a prefetched Patient of another id,
medications by reference (contained, in draftOrders, in the prefetch, unresolvable), doses in UCUM
annotation units with the strength from the RxNorm SCD text, a dose that cannot be read, patient-view
of a patient on tramadol, pregnancy on the problem list, and the spec's shapes of the suggested actions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from conftest import Keys, LiveServer, start_server, stop_server

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1980-04-02", "gender": "female"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("cds-live"), keys=keys)
    yield live
    stop_server(live)


def bundle(*res: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in res]}
    if next_url:
        out["link"] = [{"relation": "self", "url": "page-1"}, {"relation": "next", "url": next_url}]
    return out


SEIZURE = {"resourceType": "Condition", "id": "c-seizure", "subject": {"reference": "Patient/p1"},
           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G40.909"}]}}


@pytest.fixture(scope="module")
def fhir() -> Iterator[str]:
    """A loopback FHIR server: page 2 of the conditions holds a seizure disorder; /endless pages forever."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return None

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            port = self.server.server_address[1]
            if self.path.startswith("/fhir/Condition?page=2"):
                body = bundle(SEIZURE)
            elif self.path == "/fhir/Medication/med-s":
                body = {"resourceType": "Medication", "id": "med-s",
                        "code": {"coding": [{"system": RX, "code": "36437", "display": "sertraline"}]}}
            elif self.path.startswith("/fhir/Medication/"):
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            elif self.path.startswith("/fhir/endless"):
                n = int(self.path.rsplit("=", 1)[-1])
                body = bundle(next_url=f"http://127.0.0.1:{port}/fhir/endless?page={n + 1}")
            else:
                body = bundle()
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/fhir+json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/fhir"
    httpd.shutdown()
    httpd.server_close()


def order(rid: str, *, concept: dict[str, Any] | None = None, ref: str | None = None,
          dosage: list[dict[str, Any]] | None = None, contained: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "MedicationRequest", "id": rid, "status": "draft", "intent": "order",
                           "subject": {"reference": "Patient/p1"}}
    if concept is not None:
        res["medicationCodeableConcept"] = concept
    if ref is not None:
        res["medicationReference"] = {"reference": ref}
    if dosage is not None:
        res["dosageInstruction"] = dosage
    if contained is not None:
        res["contained"] = contained
    return res


def every(hours: int, value: float, unit: str) -> list[dict[str, Any]]:
    return [{"timing": {"repeat": {"frequency": 1, "period": hours, "periodUnit": "h"}},
             "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                                               "code": unit}}]}]


TRAMADOL_SCD = {"coding": [{"system": RX, "code": "835603", "display": "tramadol hydrochloride 50 MG Oral Tablet"}]}
TRAMADOL = order("t1", concept=TRAMADOL_SCD, dosage=every(6, 1, "{tablet}"))
SERTRALINE = order("s1", concept={"coding": [{"system": RX, "code": "36437", "display": "sertraline"}]})


def call(server: LiveServer, keys: Keys, hook: str, *, drafts: list[dict[str, Any]] = (),
         selections: list[str] | None = None, records: list[dict[str, Any]] = (), conditions: list[Any] = (),
         patient: dict[str, Any] = PATIENT, patient_id: str = "p1", extra: dict[str, Any] | None = None,
         fhir_server: str | None = None, conditions_next: str | None = None) -> Any:
    service = {"order-select": "withdrawal-order-select", "order-sign": "withdrawal-order-sign",
               "patient-view": "withdrawal-patient-view"}[hook]
    url = f"{server.url}/cds-services/{service}"
    ctx: dict[str, Any] = {"userId": "Practitioner/1", "patientId": patient_id}
    if hook != "patient-view":
        ctx["draftOrders"] = bundle(*drafts)
    if selections is not None:
        ctx["selections"] = selections
    body = {"hook": hook, "hookInstance": "2a9c0f5e-0d7c-4bd4-9a51-3d0b0b1f2c11", "context": ctx,
            "prefetch": {"patient": patient, "conditions": bundle(*conditions, next_url=conditions_next),
                         "medications": bundle(*records), "statements": None, "allergies": bundle(),
                         "observations": bundle(), "procedures": bundle(), **(extra or {})}}
    if fhir_server:
        body["fhirServer"] = fhir_server
    r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {keys.token(url)}"}, timeout=30)
    return r


def summaries(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [c["summary"] for c in r.json()["cards"]]


def test_order_select_basket_is_context(server: LiveServer, keys: Keys) -> None:
    r = call(server, keys, "order-select", drafts=[TRAMADOL, SERTRALINE], selections=["MedicationRequest/t1"])
    cards = r.json()["cards"]
    assert any("serotonergic" in c["summary"] and c["indicator"] == "warning" for c in cards), summaries(r)


def test_patient_id_as_a_reference_and_another_patient_refused(server: LiveServer, keys: Keys) -> None:
    r = call(server, keys, "order-sign", drafts=[TRAMADOL, SERTRALINE], patient_id="Patient/p1")
    assert any("serotonergic" in s for s in summaries(r))
    other = {**PATIENT, "id": "someone-else"}
    r = call(server, keys, "order-sign", drafts=[TRAMADOL], patient=other)
    assert r.status_code == 412 and "not the context patient" in r.text


def test_medication_by_reference(server: LiveServer, keys: Keys) -> None:
    sertraline = {"resourceType": "Medication", "id": "med-s", "code": SERTRALINE["medicationCodeableConcept"]}
    # a Medication contained in the draft
    contained = order("s2", ref="#m", contained=[{**sertraline, "id": "m"}])
    assert any("serotonergic" in s for s in summaries(call(server, keys, "order-sign", drafts=[TRAMADOL, contained])))
    # a Medication entry of the draftOrders Bundle
    by_ref = order("s3", ref="Medication/med-s")
    r = call(server, keys, "order-sign", drafts=[TRAMADOL, by_ref, sertraline])
    assert any("serotonergic" in s for s in summaries(r))
    # a Medication in the prefetch
    r = call(server, keys, "order-sign", drafts=[TRAMADOL, by_ref], extra={"medicationResources": bundle(sertraline)})
    assert any("serotonergic" in s for s in summaries(r))
    # the tramadol order itself by reference, to a Medication the request does not carry: a card, never silence
    lost = order("t9", ref="Medication/not-sent", dosage=every(6, 1, "{tablet}"))
    r = call(server, keys, "order-sign", drafts=[lost])
    cards = r.json()["cards"]
    assert cards and "Order not screened" in cards[0]["summary"] and cards[0]["indicator"] == "warning"


def test_ucum_annotation_units_with_the_scd_strength(server: LiveServer, keys: Keys) -> None:
    # 2 {tablet} of 50 mg every 4 h = 600 mg/day, over the 400 mg/day limit
    high = order("t2", concept=TRAMADOL_SCD, dosage=every(4, 2, "{tablet}"))
    assert any("600 mg/day exceeds" in s for s in summaries(call(server, keys, "order-sign", drafts=[high])))
    pill = order("t3", concept=TRAMADOL_SCD, dosage=every(4, 2, "{pill}"))
    assert any("600 mg/day exceeds" in s for s in summaries(call(server, keys, "order-sign", drafts=[pill])))
    ok = order("t4", concept=TRAMADOL_SCD, dosage=every(6, 1, "{tablet}"))
    assert not any("dose" in s.lower() for s in summaries(call(server, keys, "order-sign", drafts=[ok])))
    # a unit that cannot be read: the dose was not checked, and the card says so
    odd = order("t5", concept=TRAMADOL_SCD, dosage=every(6, 1, "{puff}"))
    r = call(server, keys, "order-sign", drafts=[odd])
    card = next(c for c in r.json()["cards"] if "dose not checked" in c["summary"])
    assert card["indicator"] == "warning" and "400 mg/day" in card["detail"]


def test_patient_view_own_tramadol_is_not_a_reason_against_itself(server: LiveServer, keys: Keys) -> None:
    mine = {**order("r1", concept=TRAMADOL_SCD, dosage=every(6, 1, "{tablet}")), "status": "active"}
    r = call(server, keys, "patient-view", records=[mine])
    cards = r.json()["cards"]
    assert len(cards) == 1 and "tramadol acceptable" in cards[0]["summary"], summaries(r)
    assert "dependence" not in cards[0]["detail"].lower()


def test_pregnancy_on_the_problem_list(server: LiveServer, keys: Keys) -> None:
    for coding in ({"system": SCT, "code": "77386006"}, {"system": ICD, "code": "O09.90"}):
        cond = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                "clinicalStatus": {"coding": [{"code": "active"}]}, "code": {"coding": [coding]}}
        r = call(server, keys, "order-sign", drafts=[TRAMADOL], conditions=[cond])
        assert any("pregnancy" in s for s in summaries(r)), coding


def test_suggested_actions_follow_the_spec(server: LiveServer, keys: Keys) -> None:
    r = call(server, keys, "order-sign", drafts=[TRAMADOL, SERTRALINE])
    card = next(c for c in r.json()["cards"] if "serotonergic" in c["summary"])
    replace = next(s for s in card["suggestions"] if s["label"].startswith("Replace"))
    delete = next(a for a in replace["actions"] if a["type"] == "delete")
    assert delete["resourceId"] == "MedicationRequest/t1"  # a string (CDS Hooks 2.0)
    create = next(a for a in replace["actions"] if a["type"] == "create")["resource"]
    assert create["resourceType"] == "MedicationRequest" and create["status"] == "draft"
    assert create["intent"] == "order" and create["subject"] == {"reference": "Patient/p1"}
    assert create["medicationCodeableConcept"]["coding"][0] == {"system": RX, "code": "1819",
                                                                 "display": "buprenorphine"}
    assert create["dosageInstruction"][0]["text"]
    for c in r.json()["cards"]:
        assert c["source"].get("url", "https://").startswith("https://")
        for link in c.get("links", []):
            assert link["url"].startswith("https://") or link.get("type") == "smart"



def test_paginated_prefetch_is_followed_on_the_fhir_server(server: LiveServer, keys: Keys, fhir: str) -> None:
    r = call(server, keys, "order-sign", drafts=[TRAMADOL], fhir_server=fhir,
             conditions_next=f"{fhir}/Condition?page=2")
    assert any("seizure" in s for s in summaries(r))  # the seizure disorder was on page 2
    assert not any("cut short" in s for s in summaries(r))


def test_data_cut_short_is_said_and_never_clean(server: LiveServer, keys: Keys, fhir: str) -> None:
    # a next page but no fhirServer to read it from
    r = call(server, keys, "order-sign", drafts=[TRAMADOL], conditions_next=f"{fhir}/Condition?page=2")
    cards = r.json()["cards"]
    assert "incomplete screen" in cards[0]["summary"] and "cut short: conditions" in cards[0]["summary"]
    assert cards[0]["indicator"] == "warning"
    assert not any(c["summary"].startswith("Tramadol: no patient-specific") for c in cards)
    # a next link to another origin: never followed with the token
    r = call(server, keys, "order-sign", drafts=[TRAMADOL], fhir_server=fhir,
             conditions_next="http://127.0.0.2:9/fhir/Condition?page=2")
    assert any("cut short: conditions" in s for s in summaries(r))
    # more pages than the limit (5)
    r = call(server, keys, "patient-view", records=[{**TRAMADOL, "status": "active"}], fhir_server=fhir,
             conditions_next=f"{fhir}/endless?page=2")
    assert any("cut short: conditions" in c["detail"] for c in r.json()["cards"])


def test_cors_for_configured_browser_origins_only(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> None:
    ehr = "https://ehr.example.org"
    live = start_server(tmp_path_factory.mktemp("cors"), keys=keys,
                        extra_env={"WITHDRAWAL_CDS_CORS_ORIGINS": ehr})
    try:
        url = f"{live.url}/cds-services/withdrawal-order-sign"
        pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
        ok = httpx.options(url, headers={"Origin": ehr, **pre})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ehr
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        other = httpx.options(url, headers={"Origin": "https://evil.example", **pre})
        assert "access-control-allow-origin" not in other.headers
        r = call(live, keys, "order-sign", drafts=[TRAMADOL, SERTRALINE])
        assert r.status_code == 200
        r = httpx.get(f"{live.url}/cds-services", headers={"Origin": ehr, "Authorization":
                                                           f"Bearer {keys.token(f'{live.url}/cds-services')}"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ehr
        page = httpx.get(f"{live.url}/health", headers={"Origin": ehr})
        assert "access-control-allow-origin" not in page.headers  # CDS paths only
    finally:
        stop_server(live)
    from withdrawal.service.config import Settings

    with pytest.raises(ValueError, match="cds_cors_origins"):
        Settings(cds_cors_origins=("http://ehr.example.org",))


def test_extended_release_has_its_own_limits(server: LiveServer, keys: Keys) -> None:
    er = {"text": "tramadol hydrochloride 100 MG 24 HR Extended Release Oral Tablet"}
    daily = [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
              "doseAndRate": [{"doseQuantity": {"value": 4, "unit": "{tablet}"}}]}]
    r = call(server, keys, "order-sign", drafts=[order("e1", concept=er, dosage=daily)])  # 400 mg/day ER
    assert any("400 mg/day exceeds this patient's limit (extended release) of 300" in s for s in summaries(r))
    ir = order("i1", concept=TRAMADOL_SCD, dosage=every(6, 2, "{tablet}"))  # 400 mg/day IR: within its limit
    assert not any("exceeds" in s for s in summaries(call(server, keys, "order-sign", drafts=[ir])))
    crcl = {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "2164-2"}]},
            "effectiveDateTime": "2026-11-01", "valueQuantity": {"value": 20, "unit": "mL/min"}}
    once = [{**daily[0], "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "{tablet}"}}]}]
    r = call(server, keys, "order-sign", drafts=[order("e2", concept=er, dosage=once)],
             extra={"observations": bundle(crcl)})
    card = next(c for c in r.json()["cards"] if "Extended-release tramadol is not for this patient" in c["summary"])
    assert card["indicator"] == "warning" and "30 mL/min" in card["summary"]


def test_tonsillectomy_procedure_in_a_child(server: LiveServer, keys: Keys) -> None:
    teen = {**PATIENT, "birthDate": "2012-03-01"}
    for code, system in (("0CTPXZZ", "http://www.cms.gov/Medicare/Coding/ICD10"), ("173422009", SCT)):
        proc = {"resourceType": "Procedure", "id": "x1", "status": "completed", "subject": {"reference": "Patient/p1"},
                "performedDateTime": "2026-11-20", "code": {"coding": [{"system": system, "code": code}]}}
        r = call(server, keys, "order-sign", drafts=[TRAMADOL], patient=teen, extra={"procedures": bundle(proc)})
        cards = r.json()["cards"]
        assert any(c["indicator"] == "critical" and "tonsillectomy" in c["summary"].lower() for c in cards), code
    r = call(server, keys, "order-sign", drafts=[TRAMADOL], patient=teen, extra={"procedures": bundle(
        {"resourceType": "Procedure", "id": "x2", "status": "not-done", "subject": {"reference": "Patient/p1"},
         "code": {"coding": [{"system": SCT, "code": "173422009"}]}})})
    assert not any("tonsillectomy" in s.lower() for s in summaries(r))


def test_medication_reference_fetched_from_the_fhir_server(server: LiveServer, keys: Keys, fhir: str) -> None:
    by_ref = order("s4", ref="Medication/med-s")
    r = call(server, keys, "order-sign", drafts=[TRAMADOL, by_ref], fhir_server=fhir)
    assert any("serotonergic" in s for s in summaries(r))
    lost = order("s5", ref="Medication/nowhere")
    r = call(server, keys, "order-sign", drafts=[TRAMADOL, lost], fhir_server=fhir)
    assert "Order not screened: MedicationRequest/s5: medication not identified (Medication/nowhere not in the data)" \
        in summaries(r)


def test_a_record_order_by_reference_is_read_from_the_fhir_server(server: LiveServer, keys: Keys, fhir: str) -> None:
    """The record's own active order points to a Medication its search does not return: fetched from
    fhirServer (sertraline: serotonergic with the tramadol ordered); without a server it is named as not
    screened (the screen is incomplete), never dropped."""
    taken = {**order("r1", ref="Medication/med-s"), "status": "active"}
    r = call(server, keys, "order-sign", drafts=[TRAMADOL], records=[taken], fhir_server=fhir)
    assert any("serotonergic" in s for s in summaries(r)), summaries(r)
    assert not any("not identified" in s for s in summaries(r))
    r = call(server, keys, "order-sign", drafts=[TRAMADOL], records=[taken])
    named = " ".join(c["summary"] + " " + c.get("detail", "") for c in r.json()["cards"])
    assert "MedicationRequest/r1: medication not identified (Medication/med-s not in the data)" in named
    assert not any(s.startswith("Tramadol: no patient-specific") for s in summaries(r))


def test_the_medications_prefetch_includes_the_medications_its_orders_reference(server: LiveServer,
                                                                                keys: Keys) -> None:
    """The template asks for _include=MedicationRequest:medication (US Core: a server whose orders reference
    a Medication SHALL support it); a prefetch that carries the included Medication is screened by it with no
    server to ask."""
    discovery = httpx.get(f"{server.url}/cds-services", headers={"Authorization": f"Bearer {keys.token(f'{server.url}/cds-services')}"})
    templates = {s["id"]: s["prefetch"]["medications"] for s in discovery.json()["services"] if s.get("prefetch")}
    assert templates and all(t.endswith("&_include=MedicationRequest:medication") for t in templates.values())
    taken = {**order("r2", ref="Medication/med-inc"), "status": "active"}
    included = {"resourceType": "Medication", "id": "med-inc", "code": SERTRALINE["medicationCodeableConcept"]}
    r = call(server, keys, "order-sign", drafts=[TRAMADOL], records=[taken, included])
    assert any("serotonergic" in s for s in summaries(r)), summaries(r)
    assert not any("not identified" in s for s in summaries(r))


def test_a_versioned_medication_reference_is_read_by_its_id(server: LiveServer, keys: Keys, fhir: str) -> None:
    """Medication/med-s/_history/2 names med-s, as the mapper reads a reference: fetched as Medication/med-s
    (it was requested as one escaped id and the order stayed not screened)."""
    r = call(server, keys, "order-sign", drafts=[TRAMADOL, order("s6", ref="Medication/med-s/_history/2")],
             fhir_server=fhir)
    assert any("serotonergic" in s for s in summaries(r)), summaries(r)
    assert not any(s.startswith("Order not screened") for s in summaries(r))


def test_cards_list_what_was_not_recognised(server: LiveServer, keys: Keys) -> None:
    out_of_scope = {"resourceType": "Condition", "id": "c9", "subject": {"reference": "Patient/p1"},
                    "code": {"coding": [{"system": ICD, "code": "L98.9"}]}}
    r = call(server, keys, "order-sign", drafts=[TRAMADOL], conditions=[out_of_scope])
    clean = next(c for c in r.json()["cards"] if c["summary"].startswith("Tramadol: no patient-specific"))
    assert "Not recognised" in clean["detail"] and "L98.9" in clean["detail"]
    in_scope = {**out_of_scope, "code": {"coding": [{"system": ICD, "code": "G98.8"}]}}
    r = call(server, keys, "order-sign", drafts=[TRAMADOL], conditions=[in_scope])
    cards = r.json()["cards"]
    assert "incomplete screen" in cards[0]["summary"] and "G98.8" in cards[0]["summary"]
    assert not any(c["summary"].startswith("Tramadol: no patient-specific") for c in cards)  # never clean
