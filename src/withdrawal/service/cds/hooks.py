"""The CDS Hooks services as functions: the hook's context and FHIR resources in, cards out.

No FastAPI, no database, no HTTP: the routes (``routes.py``) verify the caller, gather the
resources (the prefetch, then the FHIR server for what is missing) and record the call. What the
services say, and to whom, is decided here, on plain data, so it can be read and tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from withdrawal.assess import Assessment, assess_patient
from withdrawal.fhir import read_medication, resources_of
from withdrawal.fhir.mapping import (
    Medication,
    medications_by_id,
    reference_id,
    release_form,
    unidentified_medication,
    unresolved_medication_references,
)
from withdrawal.fhir.questionnaire import BedsideReading, to_patient_at_bedside
from withdrawal.fhir.writeback import system_actions, writeback_bundle
from withdrawal.knowledge.loader import OPIOID_USE, KnowledgeBase
from withdrawal.pathway import build_pathway
from withdrawal.patient import resolve
from withdrawal.service.cds import cards as cardlib
from withdrawal.service.cds.prefetch import Gathered
from withdrawal.service.errors import MissingData

PATHWAY_SERVICE = "withdrawal-buprenorphine-pathway"
SERVICES: dict[str, dict[str, Any]] = {
    "withdrawal-patient-view": {
        "hook": "patient-view",
        "title": "Opioid withdrawal and tramadol status",
        "description": "Withdrawal status, the tramadol safety verdict and the next step for the patient in context.",
    },
    PATHWAY_SERVICE: {
        "hook": "patient-view",
        "title": "Buprenorphine start pathway, with FHIR write-back",
        "description": "The buprenorphine start pathway as a card, and the COWS/SOWS scores (Observations), the "
        "tramadol findings (DetectedIssues) and the plan (CarePlan) as systemActions for the EHR to record.",
    },
    "withdrawal-order-select": {
        "hook": "order-select",
        "title": "Tramadol safety on order selection",
        "description": "Checks selected draft medication orders: tramadol against the patient's record, "
        "and other drugs against the patient's tramadol.",
    },
    "withdrawal-order-sign": {
        "hook": "order-sign",
        "title": "Tramadol safety at signing",
        "description": "Checks draft medication orders before signing: tramadol against the patient's record, "
        "and other drugs against the patient's tramadol.",
    },
}

Order = tuple[cardlib.DraftOrder, Medication | None]
"""A draft order as screened, and its medication as read (None: unreadable, screened as not screened)."""


@dataclass
class Orders:
    """The draft orders of an order hook: those to screen, and the rest of the basket (context only)."""

    screened: list[Order] = field(default_factory=list)
    basket: list[Order] = field(default_factory=list)


@dataclass
class Answer:
    cards: list[dict[str, Any]]
    system_actions: list[dict[str, Any]] | None = None

    def body(self) -> dict[str, Any]:
        """The response body (``systemActions`` only from a service that proposes them)."""
        if self.system_actions is None:
            return {"cards": self.cards}
        return {"cards": self.cards, "systemActions": self.system_actions}


def patient_id(context: Mapping[str, Any]) -> str:
    """``context.patientId``; a ``Patient/<id>`` reference is read as its id, as the mapper reads a
    reference (``fhir.mapping.reference_id``); a reference to another resource type is refused."""
    pid = reference_id(context.get("patientId"), "Patient")
    if pid is None or len(pid) > 200:
        raise MissingData("context.patientId is required (an id, or Patient/<id>)")
    return pid


def medications_in(*nodes: object) -> dict[str, Any]:
    """Medication resources by id, from Bundles (draftOrders, prefetch) the request carries: the mapper's
    look-up (``fhir.mapping.medications_by_id``), as a record's orders are resolved."""
    return medications_by_id([res for node in nodes for res in resources_of(node)])


def draft_medications(context: Mapping[str, Any], prefetch: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Medication resources (by id) the draft orders may refer to, from draftOrders and the prefetch.

    Only a draft without a ``medicationCodeableConcept`` looks one up, so when every draft names its
    drug by a code (the usual case) nothing is looked for: a whole record in prefetch is not walked."""
    drafts = [r for r in resources_of(context.get("draftOrders")) if r.get("resourceType") == "MedicationRequest"]
    if all(r.get("medicationCodeableConcept") is not None for r in drafts):
        return {}
    return medications_in(context.get("draftOrders"), *(prefetch or {}).values())


def orders(hook: str, context: Mapping[str, Any], kb: KnowledgeBase, today: date,
           medications: Mapping[str, Any]) -> Orders:
    """The draft orders to screen, and the other drafts of the basket as context.

    order-select names its ``selections``; the rest of ``draftOrders`` is what else is being ordered, so
    it is read as the patient's medication too. A draft whose medication cannot be read (an unresolved
    ``medicationReference``, no code and no name) is kept with no ingredient, so that it gets a card
    saying it was not screened, named as the mapper names such a record (``unidentified_medication``)."""
    selected: set[str] | None = None
    if hook == "order-select":
        sel = context.get("selections")
        selected = {s for s in sel if isinstance(s, str)} if isinstance(sel, list) else set()
    out = Orders()
    for res in resources_of(context.get("draftOrders")):
        if res.get("resourceType") != "MedicationRequest":
            continue
        rid = res.get("id") if isinstance(res.get("id"), str) else None
        into = out.screened if selected is None or bool({rid, f"MedicationRequest/{rid}"} & selected) else out.basket
        med = read_medication({**res, "status": "draft"}, kb, as_of=today, medications=medications,
                              order=True)
        if med is None or not med.identified:
            name = med.name if med is not None and med.name else unidentified_medication(res)
            into.append((cardlib.DraftOrder(rid, (), None, name, identified=False), None))
            continue
        ids = kb.resolve_medication(med.rxnorm, med.name).drugs
        order = cardlib.DraftOrder(rid, tuple(ids), med.dose_mg_per_day, med.name or f"rxnorm {med.rxnorm}",
                                   has_dosage=bool(res.get("dosageInstruction")), release=release_form(med.name))
        into.append((order, med))
    return out


def unresolved_references(context: Mapping[str, Any], medications: Mapping[str, Any]) -> list[str]:
    """``Medication/<id>`` references of draft orders that neither the draft nor the request resolves: the
    mapper's reading (``fhir.mapping.unresolved_medication_references``), as the SMART launch reads them."""
    drafts = [r for r in resources_of(context.get("draftOrders")) if r.get("resourceType") == "MedicationRequest"]
    return unresolved_medication_references([*drafts, *medications.values()])


def needs_record(hook: str, drafts: Orders) -> bool:
    """Whether the answer reads the patient's record (an order hook with nothing to screen does not)."""
    return hook == "patient-view" or bool(drafts.screened)


def assess(
    context: Mapping[str, Any], kb: KnowledgeBase, got: Gathered, extra_meds: list[Any], *, now: datetime,
    record: bool, without_tramadol: bool = False,
) -> tuple[Assessment, frozenset[str], BedsideReading]:
    """Assess the record plus the draft medications; also the record's own active drugs if ``record``,
    and the bedside reading (COWS, SOWS, last use) the assessment was made with.

    ``without_tramadol``: the patient's own active tramadol is left out of the screen (patient-view
    asks whether tramadol is safe for this patient; the tramadol itself is not a reason against it)."""
    pid = patient_id(context)
    patients = [r for r in got.resources if r.get("resourceType") == "Patient"]
    if not any(p.get("id") == pid for p in patients):
        # NOTE: a Patient of another id is never used in place of the context patient.
        why = "is not the context patient" if patients else "is not available"
        raise MissingData(f"the Patient resource for context.patientId {why}")
    # COWS/SOWS (QuestionnaireResponses or scored Observations) and the last opioid use are read too.
    mapped = to_patient_at_bedside(got.resources, kb, as_of=now.date(), now=now, patient_id=pid, strict=False)
    data = mapped.patient
    if got.truncated or got.unavailable:
        # NOTE: data cut short or not had is never a clean answer: named as not screened, the screen is
        # incomplete. A key the client left out (not null: null says there is no such data) and could not
        # be fetched is data not had, as CDS Hooks reads an omitted key.
        cut = (*(f"record cut short: {k} (further pages not read)" for k in got.truncated),
               *(f"record not fetched: {k} (the FHIR server did not give it)" if k in got.not_fetched
                 else f"record not had: {k} (not in the prefetch, and no FHIR server to fetch it from)"
                 for k in got.unavailable))
        data = data.model_copy(update={"conditions": (*data.conditions, *cut)})
    record_drugs = resolve(data, kb).active_drugs if record else frozenset()
    if without_tramadol:
        data = data.model_copy(update={"medications": tuple(
            m for m in data.medications
            if not (m.status == "active" and "tramadol" in kb.resolve_medication(m.rxnorm, m.name).drugs))})
    if extra_meds:
        data = data.model_copy(update={"medications": (*data.medications, *extra_meds)})
    return assess_patient(data, kb), record_drugs, mapped.reading


def answer(service_id: str, context: Mapping[str, Any], kb: KnowledgeBase, drafts: Orders, got: Gathered | None,
           *, now: datetime) -> Answer:
    """What the service says about the patient in ``context``: cards, and write-back for the pathway."""
    hook = SERVICES[service_id]["hook"]
    pid = context.get("patientId")
    patient_ref = f"Patient/{patient_id(context)}" if isinstance(pid, str) else None
    if service_id == PATHWAY_SERVICE:
        assert got is not None
        return pathway(context, kb, got, patient_ref, now=now)
    if hook == "patient-view":
        assert got is not None
        a, own, _ = assess(context, kb, got, [], now=now, record=True, without_tramadol=True)
        on_tramadol = "tramadol" in own
        opioid_use = bool(kb.condition_group(OPIOID_USE) & a.patient.conditions)
        cards = [cardlib.patient_view_card(a, on_tramadol=on_tramadol)] if on_tramadol or opioid_use else []
        if opioid_use:
            card = cardlib.pathway_card(a, build_pathway(a))
            cards += [card] if card else []
        return Answer(cards)
    if not drafts.screened:
        return Answer([])
    assert got is not None
    # NOTE: a draft tramadol order is what is being screened, not tramadol the patient
    # already takes, so only the other draft orders join the medication list.
    # The rest of an order-select basket is what else is being ordered: context, as the record.
    context_orders = [(o, m) for o, m in drafts.basket if m is not None and "tramadol" not in o.drugs]
    others_in = [m.to_input() for o, m in [*drafts.screened, *context_orders]
                 if m is not None and "tramadol" not in o.drugs]
    screened = [o for o, _ in drafts.screened]
    tram = [o for o in screened if "tramadol" in o.drugs]
    others = [o for o in screened if "tramadol" not in o.drugs and o.drugs]
    unread = [o for o, m in drafts.screened if not o.drugs]
    basket_tramadol = any("tramadol" in o.drugs for o, _ in drafts.basket)
    a, record_drugs, _ = assess(context, kb, got, others_in, now=now, record=bool(others))
    cards = [cardlib.unscreened_order_card(a, o) for o in unread]
    cards += cardlib.tramadol_order_cards(a, tram, patient_ref) if tram else []
    if others and ("tramadol" in record_drugs or basket_tramadol):
        cards += cardlib.interacting_order_cards(a, others)
    return Answer(cards)


def pathway(context: Mapping[str, Any], kb: KnowledgeBase, got: Gathered, patient_ref: str | None, *,
            now: datetime) -> Answer:
    """The pathway card, and the write-back Bundle's resources as systemActions.

    Only for a patient with a condition of the opioid_use group (opioid use disorder or withdrawal in the
    vocabulary), an opioid recorded or a COWS score:
    for anyone else the service has nothing to say or to record.
    """
    a, _, reading = assess(context, kb, got, [], now=now, record=False)
    if not (kb.condition_group(OPIOID_USE) & a.patient.conditions or a.patient.data.opioid or a.cows):
        return Answer([], [])
    plan = build_pathway(a)
    card = cardlib.pathway_card(a, plan)
    bundle = writeback_bundle(a, plan, patient_ref=patient_ref, now=now, derived_from=reading.sources)
    return Answer([card] if card else [], system_actions(bundle))
