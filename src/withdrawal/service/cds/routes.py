"""CDS Hooks 2.0 endpoints: discovery, the three services and feedback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert

from withdrawal.assess import Assessment, assess_patient
from withdrawal.fhir import read_medication, resources_of
from withdrawal.fhir.mapping import release_form
from withdrawal.fhir.questionnaire import read_bedside, to_patient_at_bedside
from withdrawal.fhir.writeback import system_actions, writeback_bundle
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.patient import resolve, resolve_drug_name
from withdrawal.plan.pathway import build_pathway
from withdrawal.service.cds import cards as cardlib
from withdrawal.service.cds.jwt_auth import verify
from withdrawal.service.cds.prefetch import (
    PREFETCH,
    Gathered,
    assemble,
    fetch_missing,
    fetch_references,
    missing,
    pages_to_follow,
)
from withdrawal.service.config import Settings
from withdrawal.service.errors import CdsAuthError, MissingData
from withdrawal.service.limits import Timestamp
from withdrawal.service.models import CdsFeedback, utcnow
from withdrawal.service.prepared import driver_transaction
from withdrawal.service.responses import FastJSONResponse
from withdrawal.service.schemas import errors
from withdrawal.smart.views import smart_links

router = APIRouter(prefix="/cds-services", tags=["cds-hooks"], responses=errors(400, 401, 422))

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
ServiceId = Annotated[str, Path(max_length=200, examples=list(SERVICES), description="A service id from discovery")]
DISCOVERY = {"services": [{**meta, "id": sid, "prefetch": PREFETCH} for sid, meta in SERVICES.items()]}


class FhirAuthorization(BaseModel):
    model_config = ConfigDict(extra="allow")
    access_token: str = Field(max_length=8192)
    token_type: str = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None


class CdsRequest(BaseModel):
    """The body of a CDS Hooks service call (2.0)."""

    model_config = ConfigDict(extra="allow")
    hook: str = Field(max_length=200)
    hookInstance: str = Field(max_length=200)  # noqa: N815 (spec field name)
    fhirServer: str | None = Field(default=None, max_length=2000)  # noqa: N815
    fhirAuthorization: FhirAuthorization | None = None  # noqa: N815
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


class Coding(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str | None = None
    system: str | None = None
    display: str | None = None


class OverrideReason(BaseModel):
    model_config = ConfigDict(extra="allow")
    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=4000)  # noqa: N815


class Feedback(BaseModel):
    model_config = ConfigDict(extra="allow")
    card: str = Field(max_length=100)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[dict[str, Any]] | None = None  # noqa: N815
    overrideReason: OverrideReason | None = None  # noqa: N815
    outcomeTimestamp: Timestamp | None = None  # noqa: N815 (bounded: from 2000 to now, 5 min skew)


class FeedbackRequest(BaseModel):
    feedback: list[Feedback] = Field(min_length=1, max_length=100)


class Service(BaseModel):
    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str]


class Discovery(BaseModel):
    services: list[Service]


class Link(BaseModel):
    model_config = ConfigDict(extra="allow")
    label: str
    url: str


class CardSource(BaseModel):
    model_config = ConfigDict(extra="allow")
    label: str
    url: str | None = None
    topic: Coding | None = None


class Suggestion(BaseModel):
    model_config = ConfigDict(extra="allow")
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None  # noqa: N815
    actions: list[dict[str, Any]] = []


class Card(BaseModel):
    model_config = ConfigDict(extra="allow")
    uuid: str | None = None
    summary: str = Field(max_length=140)
    indicator: Literal["info", "warning", "critical"]
    detail: str | None = None
    source: CardSource
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None  # noqa: N815
    overrideReasons: list[Coding] | None = None  # noqa: N815
    links: list[Link] | None = None


class CdsResponse(BaseModel):
    cards: list[Card]
    systemActions: list[dict[str, Any]] | None = None  # noqa: N815 (spec field name)


class FeedbackReceived(BaseModel):
    received: int


def _claims(request: Request, settings: Settings) -> dict[str, Any] | None:
    """The verified JWT claims (no database touched), or None where authentication is off (development)."""
    if not settings.cds_auth_required:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CdsAuthError("a bearer JWT is required")
    audiences = settings.cds_audiences or (str(request.url.replace(query="")),)
    return verify(
        token.strip(),
        keys=request.app.state.cds_keys,
        issuers=settings.cds_allowed_issuers,
        audiences=audiences,
        leeway_s=settings.cds_jwt_leeway_s,
        max_ahead_s=settings.cds_jwt_max_ahead_s,
    )


def _client(claims: dict[str, Any] | None) -> str:
    return "anonymous" if claims is None else str(claims["iss"])


def _record(
    request: Request, claims: dict[str, Any] | None, rows: list[dict[str, Any]] | None = None, **audit_kw: Any
) -> None:
    """One short write transaction: consume the ``jti``, the audit row, any feedback rows.

    Done after the answer is computed, so the SQLite write lock is held for two or
    three INSERTs and the commit only; the answer is sent only if this commits, so a
    replayed ``jti`` still gets no answer. The ``jti`` and audit INSERTs are prepared
    statements run on the driver connection (see ``service/prepared.py``); feedback
    rows (JSON columns, rare) go through SQLAlchemy in the same transaction.
    """
    if claims is None and not audit_kw and not rows:
        return
    state = request.app.state
    if rows:
        with state.write_lock, state.engine.begin() as conn:
            if claims is not None:
                state.cds_replay.remember(conn, claims, utcnow())
            if audit_kw:
                state.audit_writer.write(conn, **audit_kw)
            conn.execute(insert(CdsFeedback), rows)
        return
    with state.write_lock, driver_transaction(state.engine) as cursor:
        if claims is not None:
            state.cds_replay.remember(cursor, claims, utcnow())
        if audit_kw:
            state.audit_writer.write(cursor, **audit_kw)


@router.get("", summary="CDS Hooks discovery", response_model=Discovery)
def discovery(request: Request) -> JSONResponse:
    claims = _claims(request, request.app.state.settings)
    _record(request, claims)
    return JSONResponse(DISCOVERY)


def _medications_in(*nodes: object) -> dict[str, Any]:
    """Medication resources by id, from Bundles (draftOrders, prefetch) the request carries."""
    out: dict[str, Any] = {}
    for node in nodes:
        for res in resources_of(node):
            if res.get("resourceType") == "Medication" and isinstance(res.get("id"), str):
                out[res["id"]] = res
    return out


def _drafts(
    context: Mapping[str, Any], kb: KnowledgeBase, today: Any, selected: set[str] | None, medications: Mapping[str, Any]
) -> tuple[list[Any], list[Any]]:
    """(the draft orders to screen, the other drafts of the basket as context).

    order-select names its ``selections``; the rest of ``draftOrders`` is what else is being ordered, so
    it is read as the patient's medication too. A draft whose medication cannot be read (an unresolved
    ``medicationReference``, no code and no name) is kept with no ingredient, so that it gets a card
    saying it was not screened."""
    screened: list[Any] = []
    context_only: list[Any] = []
    for res in resources_of(context.get("draftOrders")):
        if res.get("resourceType") != "MedicationRequest":
            continue
        rid = res.get("id") if isinstance(res.get("id"), str) else None
        is_selected = selected is None or bool({rid, f"MedicationRequest/{rid}"} & selected)
        med = read_medication({**res, "status": "draft"}, kb, as_of=today, medications=medications)
        if med is None:
            ref = res.get("medicationReference")
            label = ref.get("reference") if isinstance(ref, Mapping) else None
            order = cardlib.DraftOrder(rid, (), None, f"medication {label or 'without a code or a name'}")
            (screened if is_selected else context_only).append((order, None))
            continue
        by_code = kb.drug_rxcui.get(med.rxnorm) if med.rxnorm else None
        ids = (by_code,) if by_code else (resolve_drug_name(med.name, kb) if med.name else ())
        order = cardlib.DraftOrder(rid, tuple(ids), med.dose_mg_per_day, med.name or f"rxnorm {med.rxnorm}",
                                   has_dosage=bool(res.get("dosageInstruction")), release=release_form(med.name))
        (screened if is_selected else context_only).append((order, med))
    return screened, context_only


def _unresolved_references(context: Mapping[str, Any], medications: Mapping[str, Any]) -> list[str]:
    """``Medication/<id>`` references of draft orders that neither the draft nor the request resolves."""
    out: list[str] = []
    for res in resources_of(context.get("draftOrders")):
        ref = res.get("medicationReference") if res.get("resourceType") == "MedicationRequest" else None
        target = ref.get("reference") if isinstance(ref, Mapping) else None
        if res.get("medicationCodeableConcept") is None and isinstance(target, str) \
                and target.startswith("Medication/") and target.removeprefix("Medication/") not in medications:
            out.append(target)
    return out


def _fetch_options(body: CdsRequest, state: Any, settings: Settings) -> dict[str, Any]:
    """What every fetch from the request's fhirServer shares: server, token, policy, limits, transport."""
    return {
        "fhir_server": body.fhirServer,
        "token": body.fhirAuthorization.access_token if body.fhirAuthorization else None,
        "policy": state.fhir_policy,
        "limiter": state.fhir_limiter,
        "timeout_s": settings.cds_fhir_timeout_s,
        "deadline_s": settings.cds_fhir_deadline_s,
        "transport": state.fhir_transport,
        "tls": state.fhir_tls,
    }


def _patient_id(body: CdsRequest) -> str:
    """``context.patientId``; a ``Patient/<id>`` reference is read as its id."""
    pid = body.context.get("patientId")
    if isinstance(pid, str) and pid.startswith("Patient/"):
        pid = pid.removeprefix("Patient/")
    if not isinstance(pid, str) or not pid or len(pid) > 200:
        raise MissingData("context.patientId is required (an id, or Patient/<id>)")
    return pid


def _assess(
    body: CdsRequest, kb: KnowledgeBase, got: Gathered, extra_meds: list[Any], *, record: bool,
    without_tramadol: bool = False,
) -> tuple[Assessment, frozenset[str]]:
    """Assess the record plus the draft medications; also the record's own active drugs if ``record``.

    ``without_tramadol``: the patient's own active tramadol is left out of the screen (patient-view
    asks whether tramadol is safe for this patient; the tramadol itself is not a reason against it)."""
    pid = _patient_id(body)
    patients = [r for r in got.resources if r.get("resourceType") == "Patient"]
    if not any(p.get("id") == pid for p in patients):
        # NOTE: a Patient of another id is never used in place of the context patient.
        why = "is not the context patient" if patients else "is not available"
        raise MissingData(f"the Patient resource for context.patientId {why}")
    chosen = pid
    now = utcnow()
    # COWS/SOWS (QuestionnaireResponses or scored Observations) and the last opioid use are read too.
    mapped = to_patient_at_bedside(got.resources, kb, as_of=now.date(), now=now, patient_id=chosen, strict=False)
    data = mapped.patient
    if got.truncated:
        # NOTE: data cut short is never a clean answer: named as not screened, the screen is incomplete.
        cut = tuple(f"record cut short: {k} (further pages not read)" for k in got.truncated)
        data = data.model_copy(update={"conditions": (*data.conditions, *cut)})
    record_drugs = resolve(data, kb).active_drugs if record else frozenset()
    if without_tramadol:
        data = data.model_copy(update={"medications": tuple(
            m for m in data.medications
            if not (m.status == "active" and "tramadol" in resolve(data.model_copy(update={"medications": (m,)}),
                                                                    kb).active_drugs))})
    if extra_meds:
        data = data.model_copy(update={"medications": (*data.medications, *extra_meds)})
    return assess_patient(data, kb), record_drugs


@router.post("/{service_id}", summary="Call a CDS service", response_model=CdsResponse, responses=errors(404, 412))
async def call_service(service_id: ServiceId, body: CdsRequest, request: Request) -> JSONResponse:
    # NOTE: the clinical work is CPU-bound and short; a hop to the thread pool costs as much as the
    # work, so it runs on the event loop unless it writes to a database over the network. Missing
    # prefetch is fetched asynchronously first (no thread is held while a FHIR server is slow).
    state = request.app.state
    settings: Settings = state.settings
    claims = _claims(request, settings)
    if service_id not in SERVICES:
        raise HTTPException(404, "no such CDS service")
    hook = SERVICES[service_id]["hook"]
    if body.hook != hook:
        raise HTTPException(400, f"service {service_id} answers the {hook} hook")
    drafts: list[Any] = []
    basket: list[Any] = []
    if hook != "patient-view":
        selected = None
        if hook == "order-select":
            sel = body.context.get("selections")
            selected = {s for s in sel if isinstance(s, str)} if isinstance(sel, list) else set()
        meds = _medications_in(body.context.get("draftOrders"), *(body.prefetch or {}).values())
        drafts, basket = _drafts(body.context, state.kb, utcnow().date(), selected, meds)
        refs = _unresolved_references(body.context, meds)
        if refs and body.fhirServer:
            fetched_meds = await fetch_references(refs, **_fetch_options(body, state, settings))
            if fetched_meds:
                meds = {**meds, **_medications_in(fetched_meds)}
                drafts, basket = _drafts(body.context, state.kb, utcnow().date(), selected, meds)
    got = None
    if hook == "patient-view" or drafts:
        keys = missing(body.prefetch)
        follow = pages_to_follow(body.prefetch)
        truncated: set[str] = set()
        fetched = {}
        if (keys or follow) and body.fhirServer:
            fetched = await fetch_missing(
                keys,
                patient_id=_patient_id(body),
                **_fetch_options(body, state, settings),
                max_pages=settings.cds_fhir_max_pages,
                continue_from=follow,
                truncated=truncated,
            )
        more = {k: v for k in follow if (v := fetched.pop(k, None)) is not None}
        got = assemble(body.prefetch, fetched, more=more, truncated=truncated)
    if settings.db_url.startswith("sqlite"):
        return _call_service(service_id, hook, body, request, claims, drafts, got, basket)
    return await run_in_threadpool(_call_service, service_id, hook, body, request, claims, drafts, got, basket)


def _call_service(
    service_id: str,
    hook: str,
    body: CdsRequest,
    request: Request,
    claims: dict[str, Any] | None,
    drafts: list[Any],
    got: Gathered | None,
    basket: list[Any] | None = None,
) -> JSONResponse:
    kb: KnowledgeBase = request.app.state.kb
    pref = _patient_id(body) if isinstance(body.context.get("patientId"), str) else None
    patient_ref = f"Patient/{pref}" if pref else None
    result: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] | None = None
    if service_id == PATHWAY_SERVICE:
        assert got is not None
        result, actions = _pathway_service(body, kb, got, patient_ref)
    elif hook == "patient-view":
        assert got is not None
        a, own = _assess(body, kb, got, [], record=True, without_tramadol=True)
        on_tramadol = "tramadol" in own
        relevant = on_tramadol or bool({"opioid_use_disorder", "opioid_withdrawal"} & a.patient.conditions)
        result = [cardlib.patient_view_card(a, on_tramadol=on_tramadol)] if relevant else []
        if {"opioid_use_disorder", "opioid_withdrawal"} & a.patient.conditions:
            card = cardlib.pathway_card(a, build_pathway(a))
            result += [card] if card else []
    elif drafts:
        assert got is not None
        # NOTE: a draft tramadol order is what is being screened, not tramadol the patient
        # already takes, so only the other draft orders join the medication list.
        # The rest of an order-select basket is what else is being ordered: context, as the record.
        context = [(o, m) for o, m in basket or [] if m is not None and "tramadol" not in o.drugs]
        others_in = [m.to_input() for o, m in [*drafts, *context] if m is not None and "tramadol" not in o.drugs]
        orders = [o for o, _ in drafts]
        tram = [o for o in orders if "tramadol" in o.drugs]
        others = [o for o in orders if "tramadol" not in o.drugs and o.drugs]
        unread = [o for o, m in drafts if not o.drugs]
        basket_tramadol = any("tramadol" in o.drugs for o, _ in basket or [])
        a, record_drugs = _assess(body, kb, got, others_in, record=bool(others))
        result = [cardlib.unscreened_order_card(a, o) for o in unread]
        result += cardlib.tramadol_order_cards(a, tram, patient_ref) if tram else []
        if others and ("tramadol" in record_drugs or basket_tramadol):
            result += cardlib.interacting_order_cards(a, others)
    # A smart link opens the app on the same patient (SMART launch, docs/smart.md); none while SMART is off.
    links = smart_links(request, pref) if result and isinstance(pref, str) else []
    for card in result if links else []:
        card["links"] = [*card.get("links", []), *links]
    _record(
        request,
        claims,
        actor=f"cds:{_client(claims)}"[:200],
        action="cds",
        resource=service_id,
        resource_id=body.hookInstance[:60],
    )
    return FastJSONResponse({"cards": result} if actions is None else {"cards": result, "systemActions": actions})


def _pathway_service(
    body: CdsRequest, kb: KnowledgeBase, got: Gathered, patient_ref: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pathway card, and the write-back Bundle's resources as systemActions.

    Only for a patient with opioid use disorder or withdrawal, an opioid recorded or a COWS score:
    for anyone else the service has nothing to say or to record.
    """
    a, _ = _assess(body, kb, got, [], record=False)
    relevant = bool({"opioid_use_disorder", "opioid_withdrawal"} & a.patient.conditions) or bool(
        a.patient.data.opioid or a.cows
    )
    if not relevant:
        return [], []
    pathway = build_pathway(a)
    card = cardlib.pathway_card(a, pathway)
    reading = read_bedside(got.resources, kb, patient_id=_patient_id(body), strict=False)
    bundle = writeback_bundle(a, pathway, patient_ref=patient_ref, now=utcnow(), derived_from=reading.sources)
    return ([card] if card else []), system_actions(bundle)


@router.post(
    "/{service_id}/feedback", summary="Feedback on cards", response_model=FeedbackReceived, responses=errors(404)
)
def feedback(service_id: ServiceId, body: FeedbackRequest, request: Request) -> FeedbackReceived:
    claims = _claims(request, request.app.state.settings)
    if service_id not in SERVICES:
        raise HTTPException(404, "no such CDS service")
    now, client = utcnow(), _client(claims)[:300]
    rows = [
        {
            "service_id": service_id,
            "card": fb.card,
            "outcome": fb.outcome,
            "override_reason": fb.overrideReason.model_dump(exclude_none=True) if fb.overrideReason else None,
            "accepted_suggestions": fb.acceptedSuggestions,
            "outcome_at": fb.outcomeTimestamp,
            "client": client,
            "received_at": now,
        }
        for fb in body.feedback
    ]
    _record(request, claims, rows)
    return FeedbackReceived(received=len(body.feedback))
