"""The CDS request decoder keeps only the elements the reading table reads (``fhir.decoding``): what it
decodes and what the readers read cannot disagree. Records drawn from every row of the table, with
elements no reader reads added around them, get the same cards (and the same patient read from them)
whether the body is decoded narrow, as the route does, or whole by ``json.loads``."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests_support import without_uuids
from withdrawal.fhir.decoding import Resource, decoder
from withdrawal.fhir.generate import RecordGenerator
from withdrawal.fhir.mapping import resources_of
from withdrawal.fhir.questionnaire import CODE_SYSTEM, HOURS_CODE, QUESTIONNAIRE_URL, to_patient_at_bedside
from withdrawal.fhir.reading import elements_read
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.service.cds import hooks
from withdrawal.service.cds.prefetch import PREFETCH, assemble
from withdrawal.service.cds.schemas import REQUEST_DECODER, CdsRequest

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
AS_OF: date = NOW.date()
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
KEY_OF = {"Patient": "patient", "Condition": "conditions", "MedicationRequest": "medications",
          "MedicationStatement": "statements", "AllergyIntolerance": "allergies", "Observation": "observations",
          "QuestionnaireResponse": "observations", "Procedure": "procedures", "Medication": "medications"}


def _noise(rng: random.Random) -> dict[str, Any]:
    """Elements no reader reads, as real records carry them (narrative, meta, encounter, category ...)."""
    return {
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation"]},
        "text": {"status": "generated", "div": "<div>" + "x" * rng.randint(0, 50) + "</div>"},
        "encounter": {"reference": f"urn:uuid:{rng.getrandbits(64)}"},
        "identifier": [{"system": "urn:x", "value": str(rng.random())}],
        "extension": [{"url": "urn:x", "valueString": "status"}],
        "note": [{"text": "code status subject"}],
    }


def _bedside(rng: random.Random, kb: KnowledgeBase, pid: str) -> list[dict[str, Any]]:
    """A COWS response, a scored SOWS Observation and the hours since the last opioid (the bedside readers)."""
    cows, sows = kb.scales["cows"], kb.scales["sows"]
    items = [{"linkId": i.id, "answer": [{"valueInteger": rng.choice(i.allowed_scores)}]} for i in cows.items]
    scores = {i.id: rng.choice(i.allowed_scores) for i in sows.items}
    subject = {"reference": f"Patient/{pid}"}
    return [
        {"resourceType": "QuestionnaireResponse", "id": "qr-1", "status": rng.choice(("completed", "in-progress")),
         "questionnaire": QUESTIONNAIRE_URL.format(scale="cows"), "authored": "2026-05-31T08:00:00Z",
         "subject": subject, "item": items},
        {"resourceType": "Observation", "id": "sows-1", "status": "final", "subject": subject,
         "code": {"coding": [{"system": CODE_SYSTEM, "code": "sows-total"}]},
         "effectiveDateTime": "2026-05-30T08:00:00Z", "valueInteger": sum(scores.values()) + (rng.random() < 0.3),
         "component": [{"code": {"coding": [{"system": CODE_SYSTEM, "code": f"sows.{k}"}]}, "valueInteger": v}
                       for k, v in scores.items()]},
        {"resourceType": "Observation", "id": "hours-1", "status": "final", "subject": subject,
         "code": {"coding": [{"system": CODE_SYSTEM, "code": HOURS_CODE}]}, "effectiveDateTime": "2026-05-31T09:00:00Z",
         "valueQuantity": {"value": rng.randint(0, 72), "unit": "h"}},
    ]


def _unread(rng: random.Random, pid: str) -> list[dict[str, Any]]:
    """Observations no reader reads (vital signs, labs), some with words or shapes that come close."""
    out: list[dict[str, Any]] = []
    for i in range(rng.randint(0, 12)):
        code = rng.choice(("8867-4", "29463-7x", " 2164-2x", "LA1", "cows-total-x"))
        concept: Any = {"coding": [{"system": rng.choice(("http://loinc.org", "urn:x")), "code": code,
                                    "display": rng.choice(("Heart rate", "CYP2D6 gene", "Weight"))}]}
        if rng.random() < 0.3:
            concept["text"] = rng.choice(("Heart rate", "cyp2d6 phenotype", ""))
        if rng.random() < 0.1:
            concept = rng.choice(({"coding": "8867-4"}, {"coding": [None]}, "8867-4", {"coding": [{"code": 1}]}))
        out.append({"resourceType": "Observation", "id": f"vs-{i}", "status": rng.choice(("final", "amended")),
                    "subject": {"reference": rng.choice((f"Patient/{pid}", "Patient/other"))}, "code": concept,
                    "effectiveDateTime": rng.choice(("2026-05-01T10:00:00Z", "2027-01-01T10:00:00Z")),
                    "valueQuantity": {"value": rng.randint(40, 120), "unit": "/min"}})
    return out


def _body(seed: int, hook: str, kb: KnowledgeBase) -> tuple[str, bytes]:
    """(service id, the JSON body of a call) for a record drawn from every row of the reading table."""
    rng = random.Random(seed)
    gen = RecordGenerator(kb, AS_OF, rng)
    pid = f"p{seed}"
    resources = gen.record(pid) + _bedside(rng, kb, pid) + _unread(rng, pid)
    rng.shuffle(resources)
    for r in resources:
        if rng.random() < 0.7:
            r.update({k: v for k, v in _noise(rng).items() if k not in r and rng.random() < 0.5})
    prefetch: dict[str, Any] = {key: {"resourceType": "Bundle", "type": "searchset", "entry": []}
                                for key in PREFETCH if key != "patient"}
    for r in resources:
        if r["resourceType"] == "Patient":
            prefetch["patient"] = r
        else:
            prefetch[KEY_OF[r["resourceType"]]]["entry"].append({"fullUrl": f"urn:uuid:{r.get('id')}",
                                                                 "resource": r, "search": {"mode": "match"}})
    if rng.random() < 0.2:  # one page of several: the record is cut short (no fhirServer to read on)
        prefetch[rng.choice(list(KEY_OF.values())[1:])]["link"] = [{"relation": "next", "url": "https://x/p2"}]
    drafts = [{"resourceType": "MedicationRequest", "id": "draft-tramadol", "status": "draft", "intent": "order",
               "subject": {"reference": f"Patient/{pid}"},
               "medicationCodeableConcept": {"coding": [{"system": RX, "code": "835603",
                                                         "display": "tramadol hydrochloride 50 MG Oral Tablet"}]},
               "dosageInstruction": [gen.dosage()]}]
    other = [m for m in gen.medication({"reference": f"Patient/{pid}"}) if m["resourceType"] == "MedicationRequest"]
    drafts += [{**m, "id": "draft-other"} for m in other[:1]]
    service = {"patient-view": rng.choice(["withdrawal-patient-view", hooks.PATHWAY_SERVICE]),
               "order-sign": "withdrawal-order-sign", "order-select": "withdrawal-order-select"}[hook]
    context: dict[str, Any] = {"userId": "Practitioner/1", "patientId": pid}
    if hook != "patient-view":
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": d} for d in drafts]}
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts if rng.random() < 0.7]
    body = {"hook": hook, "hookInstance": f"h-{seed}", "context": context, "prefetch": prefetch}
    return service, json.dumps(body).encode()




def _answer(service: str, raw: Any, kb: KnowledgeBase, *, every_resource: bool = False) -> tuple[Any, Any]:
    """(the answer, the patient read from the record) as the route computes them, with no fetch.

    ``every_resource``: the readers are given every resource of the prefetch, not only those
    ``read_by_a_reader`` keeps (what they read of them must be the same)."""
    body = CdsRequest.model_validate(raw)
    hook = hooks.SERVICES[service]["hook"]
    orders = hooks.Orders()
    if hook != "patient-view":
        meds = hooks.draft_medications(body.context, body.prefetch)
        orders = hooks.orders(hook, body.context, kb, AS_OF, meds)
    record = assemble(body.prefetch, {})
    if every_resource:
        record.resources = [r for v in (body.prefetch or {}).values() if isinstance(v, dict)
                            for r in resources_of(v) if r.get("resourceType") != "OperationOutcome"]
    patient = to_patient_at_bedside(record.resources, kb, as_of=AS_OF, now=NOW, patient_id=hooks.patient_id(body.context),
                                    strict=False)
    answer = hooks.answer(service, body.context, kb, orders, record, now=NOW)
    return without_uuids(answer.body()), (patient.patient, patient.medications)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), hook=st.sampled_from(("order-sign", "order-select", "patient-view")))
def test_narrow_decoding_gives_the_cards_of_a_whole_decoding(seed: int, hook: str) -> None:
    """The route's reading (the narrow decoder, Observations no reader reads passed over) against every
    resource decoded whole by ``json.loads`` and given to the readers."""
    kb = default_kb()
    service, body = _body(seed, hook, kb)
    narrow = REQUEST_DECODER.decode(body)
    assert len(narrow["prefetch"]["observations"]["entry"]) == len(json.loads(body)["prefetch"]["observations"]["entry"])
    assert _answer(service, narrow, kb) == _answer(service, json.loads(body), kb, every_resource=True)


def test_the_generator_reaches_every_row_through_the_narrow_decoder() -> None:
    """The records above are drawn from every row of the table (as the population's differential test counts)."""
    from withdrawal.fhir.generate import coverage

    kb = default_kb()
    drawn: set[str] = set()
    for seed in range(300):
        gen = RecordGenerator(kb, AS_OF, random.Random(seed))
        gen.record(f"p{seed}")
        drawn |= gen.drawn
    assert coverage(drawn)[2] == []


def test_only_the_elements_read_are_kept() -> None:
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "meta": {"versionId": "1"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "encounter": {"reference": "x"},
           "effectiveDateTime": "2026-01-01", "valueQuantity": {"value": 70, "unit": "/min"}}
    got = decoder().decode(json.dumps({"resourceType": "Bundle", "entry": [{"resource": obs, "fullUrl": "u"}]}))
    assert got == {"resourceType": "Bundle", "entry": [{"resource": {
        k: v for k, v in obs.items() if k not in {"meta", "encounter"}}}]}
    elements = frozenset(Resource.__annotations__)  # every element a decoded resource may hold
    assert set(elements_read()["Observation"]) <= elements and "meta" not in elements and "text" not in elements


def _call(client: Any, body: bytes, path: str = "/cds-services/withdrawal-order-sign") -> Any:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def test_the_cds_routes_refuse_what_the_edge_guard_refuses(app_factory: Any) -> None:
    """NUL and non-finite numbers anywhere in a CDS body (in elements the decoder skips too) are a 422 naming
    the problem, as ``EdgeGuard`` answers on every other route; the CDS routes check their own bodies."""
    from fastapi.testclient import TestClient

    kb = default_kb()
    _, body = _body(1, "order-sign", kb)
    raw = json.loads(body)
    obs = {"resourceType": "Observation", "status": "final", "meta": {"source": "a\u0000b"}}
    raw["prefetch"]["observations"]["entry"].insert(0, {"resource": obs})
    with TestClient(app_factory(cds_auth_required=False)) as client:
        assert _call(client, body).status_code == 200
        r = _call(client, json.dumps(raw).encode())
        assert r.status_code == 422
        assert r.json()["detail"] == [{"field": "prefetch.observations.entry[0].resource.meta.source",
                                       "message": "must not contain NUL characters"}]
        for constant in ("NaN", "Infinity", "-Infinity"):
            bad = body.replace(b'"context":', f'"extra": {{"x": [1, {constant}]}}, "context":'.encode(), 1)
            r = _call(client, bad)
            assert r.status_code == 422, constant
            assert r.json()["detail"] == [{"field": "body",
                                           "message": f"{constant} is not a JSON number; numbers must be finite"}]
        # another method on a CDS path is still the edge guard's: refused before the router answers 405
        r = client.put("/cds-services/withdrawal-order-sign", content=json.dumps(raw).encode(),
                       headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"][0]["field"].endswith("meta.source")
        # an escaped backslash before "u0000" is no NUL
        r = _call(client, body.replace(b'"hookInstance": "h-1"', b'"hookInstance": "h\\\\u0000"', 1))
        assert r.status_code == 200, r.text
        # malformed JSON: FastAPI's 422, as before; a body that is not a CDS request's shape is read whole
        r = _call(client, body[:-10])
        assert r.status_code == 422 and r.json()["detail"][0]["message"].startswith("JSON decode error")
        r = _call(client, json.dumps({**json.loads(body), "prefetch": [1]}).encode())
        assert r.status_code == 422 and "prefetch" in r.text
        # feedback is decoded whole, and refused the same way
        fb = {"feedback": [{"card": "c\u0000", "outcome": "accepted"}]}
        r = _call(client, json.dumps(fb).encode(), "/cds-services/withdrawal-order-sign/feedback")
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "feedback[0].card"
        r = _call(client, b'{"feedback": [{"card": "c", "outcome": "accepted", "x": NaN}]}',
                  "/cds-services/withdrawal-order-sign/feedback")
        assert r.status_code == 422 and "NaN" in r.json()["detail"][0]["message"]
