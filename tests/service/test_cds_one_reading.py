"""The CDS services read a draft order, the context patient and a Medication look-up as the per-patient
mapper reads a record: each check below reads the same data both ways and asks for the same answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from svc_synthea import full_prefetch

from withdrawal.fhir import to_patient
from withdrawal.fhir.mapping import reference_id
from withdrawal.knowledge.loader import default_kb
from withdrawal.service.cds import cards, hooks
from withdrawal.service.cds.prefetch import assemble
from withdrawal.service.errors import MissingData

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1985-04-02", "gender": "male"}
SERTRALINE = {"resourceType": "Medication", "id": "med-s",
              "code": {"coding": [{"system": RX, "code": "312941", "display": "sertraline 100 MG Oral Tablet"}]}}


def _bundle(*res: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in res]}


def _order(rid: str, **medication: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": rid, "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/p1"}, **medication}


UNIDENTIFIABLE = [
    _order("d1", medicationReference={"reference": "Medication/not-sent"}),
    _order("d2", medicationReference={"reference": " Medication/spaced "}),
    _order("d3", medicationCodeableConcept={}),
    _order("d4"),
    _order("d5", medicationReference={"reference": "#missing"}),
    _order(" d6 ", medicationReference={"reference": "Medication/" + "x" * 300}),
]


@pytest.mark.parametrize("draft", UNIDENTIFIABLE, ids=lambda d: d["id"].strip()[:3])
def test_an_unidentified_draft_is_named_as_the_mapper_names_it(draft: dict[str, Any]) -> None:
    """The draft order's card and the record's mapper name the same unidentifiable record alike."""
    kb = default_kb()
    context = {"patientId": "p1", "draftOrders": _bundle(draft)}
    drafts = hooks.orders("order-sign", context, kb, NOW.date(), hooks.draft_medications(context, None))
    (order, med), = drafts.screened
    assert med is None and not order.identified
    read = to_patient([PATIENT, {**draft, "status": "active"}], kb, as_of=NOW.date())
    (mapped,) = [m for m in read.medications if not m.identified]
    assert order.name == mapped.name
    record = assemble(full_prefetch(PATIENT), {})
    (card,) = hooks.answer("withdrawal-order-sign", context, kb, drafts, record, now=NOW).cards
    assert card["summary"].startswith("Order not screened: " + mapped.name[:60]) and len(card["summary"]) < 140
    assert f"the draft order {mapped.name}" in card["detail"]


def test_an_identified_drug_the_knowledge_base_does_not_know_keeps_its_own_summary() -> None:
    order = cards.DraftOrder("d1", (), None, "zorblaxamine 5 MG Oral Tablet")
    kb = default_kb()
    record = assemble(full_prefetch(PATIENT), {})
    a, _, _ = hooks.assess({"patientId": "p1"}, kb, record, [], now=NOW, record=False)
    assert cards.unscreened_order_card(a, order)["summary"] == (
        "Order not screened: zorblaxamine 5 MG Oral Tablet could not be identified")


FHIR_ID = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
FORMS = ["{}", "Patient/{}", " Patient/{} ", "https://ehr.example/fhir/Patient/{}", "urn:uuid:{}"]


@given(rid=FHIR_ID, form=st.sampled_from(FORMS))
def test_the_context_patient_is_the_patient_the_mapper_reads(rid: str, form: str) -> None:
    """``context.patientId`` in any form a reference takes names the id the mapper finds the Patient by and
    matches the record's subjects with: the record of that patient is read, not skipped as another's."""
    ref = form.format(rid)
    pid = hooks.patient_id({"patientId": ref})
    assert pid == reference_id(ref) == rid
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": ref},
                 "code": {"text": "Seizure disorder"}}
    read = to_patient([{**PATIENT, "id": rid}, condition], default_kb(), as_of=NOW.date(), patient_id=pid)
    assert not read.skipped and read.patient.conditions


@pytest.mark.parametrize("value", ["Group/p1", "Practitioner/p1", "", "  ", None, 7, "Patient/", "x" * 201])
def test_a_context_patient_that_names_no_patient_is_refused(value: object) -> None:
    with pytest.raises(MissingData):
        hooks.patient_id({"patientId": value})


@given(pad_id=st.sampled_from(["", " ", "\t", "\n "]), pad_ref=st.sampled_from(["", " "]),
       where=st.sampled_from(["draftOrders", "prefetch"]))
def test_a_draft_and_a_record_order_resolve_the_same_medications(pad_id: str, pad_ref: str, where: str) -> None:
    """A Medication whose id carries spaces is found (or not) for a draft order exactly as for the same order
    in the record: one look-up (``fhir.mapping.medications_by_id``)."""
    kb = default_kb()
    medication = {**SERTRALINE, "id": f"{pad_id}med-s{pad_id}"}
    draft = _order("d1", medicationReference={"reference": f"{pad_ref}Medication/med-s{pad_ref}"})
    context = {"patientId": "p1", "draftOrders": _bundle(draft, medication) if where == "draftOrders" else _bundle(draft)}
    prefetch = {"medicationResources": _bundle(medication)} if where == "prefetch" else None
    drafts = hooks.orders("order-sign", context, kb, NOW.date(), hooks.draft_medications(context, prefetch))
    (order, med), = drafts.screened
    read = to_patient([PATIENT, {**draft, "status": "active"}, medication], kb, as_of=NOW.date())
    (mapped,) = read.medications
    assert mapped.identified and med is not None and (med.name, med.rxnorm) == (mapped.name, mapped.rxnorm)
    assert order.drugs == ("sertraline",)
    assert hooks.medications_in(_bundle(medication)).keys() == {"med-s"}
