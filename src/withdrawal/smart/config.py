"""SMART settings, read from the environment (prefix ``WITHDRAWAL_SMART_``).

SMART is off until a client id and at least one ``iss`` (FHIR base URL) are configured.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
EHR_SCOPE = "launch openid fhirUser patient/*.rs online_access"
STANDALONE_SCOPE = "launch/patient openid fhirUser patient/*.rs online_access"


def _split(v: Any) -> Any:
    if isinstance(v, str):
        v = v.strip()
        if v.startswith("["):
            return tuple(json.loads(v))
        return tuple(p.strip() for p in v.split(",") if p.strip())
    return v


def normalise_iss(url: str) -> str:
    """An ``iss`` as compared: no trailing slash."""
    return url.strip().rstrip("/")


def check_url(url: str, what: str) -> str:
    """``url`` if it is absolute https (http only on loopback), without userinfo, query or fragment."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{what}: {url[:100]!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"{what}: {url[:100]!r} must use https (http only on loopback)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{what}: {url[:100]!r} must not carry userinfo, a query or a fragment")
    return url


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class SmartSettings(BaseSettings):
    """What the SMART client needs; an EHR administrator sets these (docs/smart.md)."""

    model_config = SettingsConfigDict(env_prefix="WITHDRAWAL_SMART_", extra="ignore", frozen=True)

    client_id: str | None = Field(default=None, max_length=200)
    """The client id the EHR registered for this app; SMART is off without one."""
    client_secret: str | None = Field(default=None, max_length=500)
    """Only for a confidential client (client_secret_basic); a public client uses PKCE alone."""
    issuers: Annotated[tuple[str, ...], NoDecode] = ()
    """FHIR base URLs (``iss``) a launch may name; any other is refused before any request is made."""
    frame_ancestors: Annotated[tuple[str, ...], NoDecode] = ()
    """EHR origins allowed to show the SMART pages in a frame (CSP ``frame-ancestors``)."""
    redirect_uri: str | None = None
    """The redirect URI registered with the EHR; default ``<this server>/smart/callback``."""
    launch_url: str | None = None
    """The launch URL put in CDS cards' ``smart`` links; default ``<this server>/smart/launch``."""
    launch_ttl_s: int = Field(default=600, ge=30, le=3600)
    """How long a started launch (state, PKCE verifier) waits for the EHR's redirect back."""
    session_ttl_s: int = Field(default=1800, ge=60, le=12 * 3600)
    """Lifetime of the session token the page carries (the EHR's access token may be shorter)."""
    token_leeway_s: int = Field(default=30, ge=0, le=300)
    """An access token this close to its expiry is refreshed before a FHIR read."""
    fhir_timeout_s: float = Field(default=10.0, gt=0, le=60)
    max_pages: int = Field(default=20, ge=1, le=200)
    """Search result pages followed (``next`` links, same origin only) per resource type."""

    @field_validator("issuers", "frame_ancestors", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _split(v)

    @field_validator("issuers")
    @classmethod
    def _issuers(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalise_iss(check_url(u, "smart_issuers")) for u in v)

    @field_validator("frame_ancestors")
    @classmethod
    def _ancestors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for u in v:
            check_url(u.rstrip("/"), "smart_frame_ancestors")
            if urlsplit(u).path not in {"", "/"}:
                raise ValueError(f"smart_frame_ancestors: {u[:100]!r} must be an origin (no path)")
            out.append(origin_of(u))
        return tuple(out)

    @field_validator("redirect_uri", "launch_url")
    @classmethod
    def _urls(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v, "smart URL")

    @model_validator(mode="after")
    def _complete(self) -> SmartSettings:
        if self.issuers and not self.client_id:
            raise ValueError("WITHDRAWAL_SMART_ISSUERS is set: WITHDRAWAL_SMART_CLIENT_ID is needed too")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.client_id and self.issuers)

    def allows(self, iss: str) -> bool:
        return normalise_iss(iss) in self.issuers
