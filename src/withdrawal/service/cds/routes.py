"""CDS Hooks 2.0 endpoints: discovery, the services and feedback.

A call is four steps, one place each: the caller's JWT (:func:`cds_claims`), the patient's record
gathered from the prefetch and the FHIR server (:func:`hook_inputs`, asynchronous: no thread is held
while a FHIR server is slow), the answer (:mod:`.hooks`, pure), and the JWT id and the audit row
committed before the answer is sent (so a replayed JWT gets no answer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
import pydantic_core
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.routing import APIRoute
from starlette.types import Scope

from withdrawal.fhir.decoding import DecodeError
from withdrawal.fhir.mapping import unresolved_medication_references
from withdrawal.service.cds import hooks
from withdrawal.service.cds.jwt_auth import verify
from withdrawal.service.cds.prefetch import (
    PREFETCH,
    FhirServer,
    Gathered,
    assemble,
    fetch_missing,
    fetch_references,
    missing,
    pages_to_follow,
)
from withdrawal.service.cds.schemas import (
    REQUEST_DECODER,
    CdsRequest,
    CdsResponse,
    Discovery,
    FeedbackReceived,
    FeedbackRequest,
)
from withdrawal.service.config import Settings
from withdrawal.service.deps import UnitOfWork, UowDep
from withdrawal.service.errors import CdsAuthError
from withdrawal.service.limits import json_body, refusal, refusal_body
from withdrawal.service.models import CdsFeedback, utcnow
from withdrawal.service.schemas import errors


class _JsonRequest(Request):
    """A request whose JSON body is decoded by msgspec (native code), the prefetch to what is read of it.

    A CDS call can carry a patient's whole record (a Synthea-sized prefetch is 1.4 MB, 95% of it
    Observations no reading uses): the decoder keeps of each prefetched resource only the elements the
    FHIR reading table reads (``schemas.REQUEST_DECODER``, ``fhir.decoding``) and skips the rest
    without building it. It refuses what is not JSON (``NaN``, ``Infinity``), so the edge checks are
    done here for these routes (:func:`limits.refusal`: 422 naming the problem, as ``EdgeGuard`` says
    it). A body the decoder does not read (malformed, or not the shape of a CDS request) is read as
    before, whole: by pydantic-core, else the standard library, so a malformed body gets FastAPI's
    usual 422 and a body only the standard library reads (UTF-16, a lone surrogate) is read as before.
    """

    async def refused(self, decoder: msgspec.json.Decoder[Any]) -> tuple[str, str] | None:
        """Decode the body; why it is refused (NUL, a non-finite number), or None."""
        body = await self.body()
        try:
            self._json = decoder.decode(body)
        except DecodeError:
            return refusal(body, decoded=False)
        return refusal(body, decoded=True)

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = pydantic_core.from_json(body)
            except ValueError:
                self._json = json.loads(body)
        return self._json


class _JsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        # A service call's body is decoded to what is read of its prefetch; feedback whole.
        body_type = getattr(getattr(self.body_field, "field_info", None), "annotation", None)
        decoder = REQUEST_DECODER if body_type is CdsRequest else _WHOLE

        async def route(request: Request) -> Response:
            req = _JsonRequest(request.scope, request.receive)
            if json_body(request.scope) and (problem := await req.refused(decoder)):
                return Response(refusal_body(*problem), 422, media_type="application/json")
            return await handler(req)

        return route


_WHOLE: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def decoded_here(scope: Scope) -> bool:
    """Requests to this router whose JSON bodies it decodes and checks itself (``EdgeGuard`` leaves them):
    a POST to a service or its feedback (any other method there is left to ``EdgeGuard``, as before)."""
    return scope.get("method") == "POST" and _POSTED.fullmatch(scope.get("path", "")) is not None


_POSTED = re.compile(r"/cds-services/[^/]+(?:/feedback)?")


router = APIRouter(prefix="/cds-services", tags=["cds-hooks"], responses=errors(400, 401, 422), route_class=_JsonRoute)

ServiceId = Annotated[
    str, Path(max_length=200, examples=list(hooks.SERVICES), description="A service id from discovery")
]
DISCOVERY = {"services": [{**meta, "id": sid, "prefetch": PREFETCH} for sid, meta in hooks.SERVICES.items()]}


async def cds_claims(request: Request) -> dict[str, Any] | None:
    """The verified JWT claims (no database touched), or None where authentication is off (development)."""
    settings: Settings = request.app.state.settings
    if not settings.cds_auth_required:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CdsAuthError("a bearer JWT is required")
    return verify(
        token.strip(),
        keys=request.app.state.cds_keys,
        issuers=settings.cds_allowed_issuers,
        audiences=settings.cds_audiences or (str(request.url.replace(query="")),),
        leeway_s=settings.cds_jwt_leeway_s,
        max_ahead_s=settings.cds_jwt_max_ahead_s,
    )


Claims = Annotated[dict[str, Any] | None, Depends(cds_claims)]


@dataclass
class HookInputs:
    orders: hooks.Orders
    record: Gathered | None
    now: datetime


def _fhir_server(body: CdsRequest, request: Request) -> FhirServer:
    """The request's fhirServer, shared by every fetch of the call: token, policy, limits, one deadline."""
    state, settings = request.app.state, request.app.state.settings
    return FhirServer(
        body.fhirServer,
        token=body.fhirAuthorization.access_token if body.fhirAuthorization else None,
        policy=state.fhir_policy,
        limiter=state.fhir_limiter,
        timeout_s=settings.cds_fhir_timeout_s,
        deadline_s=settings.cds_fhir_deadline_s,
        transport=state.fhir_transport,
        tls=state.fhir_tls,
        max_pages=settings.cds_fhir_max_pages,
    )


async def hook_inputs(service_id: ServiceId, body: CdsRequest, request: Request, _: Claims) -> HookInputs:
    """The draft orders, and the patient's record if the answer reads it: the prefetch, then what is
    missing from ``fhirServer`` (after the JWT is verified, and only for a known service and hook).

    The Medications the draft orders refer to and the missing prefetch are fetched from one
    :class:`FhirServer`: one policy check, one client, one deadline for the whole call."""
    if service_id not in hooks.SERVICES:
        raise HTTPException(404, "no such CDS service")
    hook = hooks.SERVICES[service_id]["hook"]
    if body.hook != hook:
        raise HTTPException(400, f"service {service_id} answers the {hook} hook")
    kb, now = request.app.state.kb, utcnow()
    orders = hooks.Orders()
    async with _fhir_server(body, request) as fhir:
        if hook != "patient-view":
            meds = hooks.draft_medications(body.context, body.prefetch)
            orders = hooks.orders(hook, body.context, kb, now.date(), meds)
            refs = hooks.unresolved_references(body.context, meds)
            if refs and (got := await fetch_references(fhir, refs)):
                orders = hooks.orders(hook, body.context, kb, now.date(), {**meds, **hooks.medications_in(got)})
        if not hooks.needs_record(hook, orders):
            return HookInputs(orders, None, now)
        keys, follow = missing(body.prefetch), pages_to_follow(body.prefetch)
        truncated: set[str] = set()
        fetched = {}
        if (keys or follow) and body.fhirServer:
            fetched = await fetch_missing(fhir, keys, patient_id=hooks.patient_id(body.context),
                                          continue_from=follow, truncated=truncated)
        more = {k: v for k in follow if (v := fetched.pop(k, None)) is not None}
        gathered = assemble(body.prefetch, fetched, more=more, truncated=truncated)
        # The record's orders may point to Medications a search does not return: read them too (one not
        # had is named as not screened by the mapper).
        refs = unresolved_medication_references(gathered.resources)
        if refs and body.fhirServer:
            gathered.resources.extend(await fetch_references(fhir, refs))
    return HookInputs(orders, gathered, now)


def _record(uow: UnitOfWork, request: Request, claims: dict[str, Any] | None, *rows: object,
            **audit_kw: Any) -> None:
    """Consume the JWT id (a replayed one is refused here, at its insert: 401 and no answer), add
    ``rows`` and the audit row to the request's unit of work, committed before the answer is sent."""
    if claims is not None:
        request.app.state.cds_replay.remember(uow.session, claims, utcnow())
    uow.session.add_all(rows)
    if audit_kw:
        uow.audit(actor=f"cds:{_client(claims)}"[:200], **audit_kw)


def _client(claims: dict[str, Any] | None) -> str:
    return "anonymous" if claims is None else str(claims["iss"])


@router.get("", summary="CDS Hooks discovery", response_model=Discovery)
def discovery(request: Request, claims: Claims, uow: UowDep) -> dict[str, Any]:
    _record(uow, request, claims)
    return DISCOVERY


@router.post("/{service_id}", summary="Call a CDS service", response_model=CdsResponse,
             response_model_exclude_unset=True, responses=errors(404, 412))
def call_service(service_id: ServiceId, body: CdsRequest, request: Request, inputs: Annotated[
        HookInputs, Depends(hook_inputs)], claims: Claims, uow: UowDep) -> dict[str, Any]:
    answer = hooks.answer(service_id, body.context, request.app.state.kb, inputs.orders, inputs.record, now=inputs.now)
    # A smart link opens the app on the same patient (SMART launch, docs/smart.md); none while SMART is off.
    # The composition root (withdrawal.app) installs the SMART app's link maker; the service alone has none.
    links = request.app.state.card_links(request, hooks.patient_id(body.context)) if answer.cards else []
    for card in answer.cards if links else []:
        card["links"] = [*card.get("links", []), *links]
    _record(uow, request, claims, action="cds", resource=service_id, resource_id=body.hookInstance[:60])
    return answer.body()


@router.post("/{service_id}/feedback", summary="Feedback on cards", response_model=FeedbackReceived,
             responses=errors(404))
def feedback(service_id: ServiceId, body: FeedbackRequest, request: Request, claims: Claims,
             uow: UowDep) -> FeedbackReceived:
    if service_id not in hooks.SERVICES:
        raise HTTPException(404, "no such CDS service")
    now, client = utcnow(), _client(claims)[:300]
    _record(uow, request, claims, *(CdsFeedback(
        service_id=service_id, card=fb.card, outcome=fb.outcome,
        override_reason=fb.overrideReason.model_dump(exclude_none=True) if fb.overrideReason else None,
        accepted_suggestions=fb.acceptedSuggestions, outcome_at=fb.outcomeTimestamp, client=client, received_at=now,
    ) for fb in body.feedback))
    return FeedbackReceived(received=len(body.feedback))
