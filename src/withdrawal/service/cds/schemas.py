"""The CDS Hooks 2.0 wire format: request and response bodies, discovery and feedback.

The response models are what FastAPI validates every answer against before it is sent
(``response_model``): a card the EHR would reject (a summary over 140 characters, an unknown
indicator) is a 500 here, never a malformed answer there.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from withdrawal.fhir.decoding import Resource, decoder
from withdrawal.service.limits import Timestamp


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


def _request_shape() -> Any:
    """:class:`CdsRequest`'s fields as a ``TypedDict`` for the JSON decoder, every prefetch value a FHIR
    resource or Bundle decoded to the elements the reading table reads (``fhir.decoding``)."""
    fields: dict[str, Any] = dict.fromkeys(CdsRequest.model_fields, Any)
    fields["prefetch"] = dict[str, Resource | None] | None
    return TypedDict("CdsRequestBody", fields, total=False)  # type: ignore[operator]


REQUEST_DECODER = decoder(_request_shape())
"""Decodes a CDS service call's body: the prefetch keeps only what is read of it, the rest is as sent."""


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
