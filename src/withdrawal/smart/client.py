"""The SMART client: discovery, the authorization request with PKCE, the token exchange and
FHIR reads with the access token (refreshed when it expires), all through Authlib's OAuth 2
client for httpx (:class:`authlib.integrations.httpx_client.AsyncOAuth2Client`).

Tokens are never logged and never put in a URL: the access token travels in the
``Authorization`` header, the refresh token in a POST body to the token endpoint.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import jwt
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import InvalidTokenError, MissingTokenError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from withdrawal.errors import WithdrawalError
from withdrawal.fhir import next_link, resources_of
from withdrawal.fhir.mapping import reference_id, unresolved_medication_references
from withdrawal.smart.config import SmartSettings, check_url, normalise_iss

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
SEARCHES = ("Condition", "MedicationRequest", "MedicationStatement", "AllergyIntolerance", "Observation")
MAX_BYTES = 20_000_000
MAX_MEDICATION_READS = 100
"""Medication reads per record: beyond it, the rest are named as not screened, never silently dropped."""
DISCOVERY_TTL_S = 300.0


class SmartError(WithdrawalError):
    """A launch or a read the app refuses, with the message the page shows and its status."""

    def __init__(self, status: int, message: str, *, code: str = "refused") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class SessionExpired(SmartError):
    """The EHR's access token expired and cannot be refreshed: launch again from the EHR."""

    def __init__(self) -> None:
        super().__init__(401, "The EHR session has expired and cannot be renewed. Open the app again from the EHR.",
                         code="expired")


@dataclass(frozen=True)
class Endpoints:
    authorization_endpoint: str
    token_endpoint: str
    capabilities: tuple[str, ...]
    issuer: str | None = None
    """The OpenID Connect issuer, for the ``id_token`` (SMART: required with ``sso-openid-connect``)."""
    jwks_uri: str | None = None


_discovered: dict[str, tuple[float, Endpoints]] = {}
T = TypeVar("T")


class Unreadable(ValueError):
    """A JSON document the EHR publishes that is not there or not a JSON object; the message says why."""


def _http(settings: SmartSettings, transport: httpx.AsyncBaseTransport | None) -> dict[str, Any]:
    kw: dict[str, Any] = {"timeout": settings.fhir_timeout_s, "follow_redirects": False}
    if transport is not None:
        kw["transport"] = transport
    return kw


async def _cached_json(url: str, parse: Callable[[dict[str, Any]], T], cache: dict[str, tuple[float, T]],
                       settings: SmartSettings, transport: httpx.AsyncBaseTransport | None) -> T:
    """``parse`` of the JSON object at ``url`` (1 MB at most), cached for :data:`DISCOVERY_TTL_S` once parsed.

    Raises :class:`Unreadable` (``ValueError``), another ``ValueError`` (not JSON) or ``httpx.HTTPError``,
    and what ``parse`` raises; nothing is cached then.
    """
    hit = cache.get(url)
    if hit is not None and time.monotonic() - hit[0] < DISCOVERY_TTL_S:
        return hit[1]
    async with httpx.AsyncClient(**_http(settings, transport)) as http:
        resp = await http.get(url, headers={"Accept": "application/json"})
    if resp.status_code != 200 or len(resp.content) > 1_000_000:
        raise Unreadable(f"HTTP {resp.status_code}")
    body = resp.json()
    if not isinstance(body, dict):
        raise Unreadable("not a JSON object")
    value = parse(body)
    cache[url] = (time.monotonic(), value)
    return value


async def discover(iss: str, settings: SmartSettings, transport: httpx.AsyncBaseTransport | None = None) -> Endpoints:
    """``{iss}/.well-known/smart-configuration``, only for a configured ``iss``; S256 must be offered."""
    iss = normalise_iss(iss)
    if not settings.allows(iss):
        raise SmartError(400, "This EHR (iss) is not configured for this app.", code="iss")
    try:
        return await _cached_json(f"{iss}/.well-known/smart-configuration", _endpoints, _discovered, settings,
                                  transport)
    except Unreadable as exc:
        raise SmartError(502, f"The EHR's SMART configuration could not be read ({exc}).", code="discovery") from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise SmartError(502, f"The EHR's SMART configuration could not be read ({type(exc).__name__}).",
                         code="discovery") from exc


def _endpoints(doc: dict[str, Any]) -> Endpoints:
    """The endpoints of a SMART configuration document; S256 must be offered."""
    try:
        auth = check_url(str(doc.get("authorization_endpoint") or ""), "authorization_endpoint")
        token = check_url(str(doc.get("token_endpoint") or ""), "token_endpoint")
    except ValueError as exc:
        raise SmartError(502, f"The EHR's SMART configuration is unusable: {exc}.", code="discovery") from exc
    methods = doc.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        raise SmartError(502, "The EHR does not offer PKCE with S256 (code_challenge_methods_supported).",
                         code="discovery")
    caps = doc.get("capabilities")
    oidc: dict[str, str | None] = {"issuer": None, "jwks_uri": None}
    for key in oidc:
        value = doc.get(key)
        try:
            oidc[key] = check_url(value, key) if isinstance(value, str) else None
        except ValueError:
            oidc[key] = None  # unusable: the id_token is then not trusted, the launch still works
    return Endpoints(auth, token, tuple(c for c in caps if isinstance(c, str)) if isinstance(caps, list) else (),
                     issuer=oidc["issuer"], jwks_uri=oidc["jwks_uri"])


def oauth_client(
    settings: SmartSettings,
    *,
    scope: str,
    redirect_uri: str,
    token_endpoint: str,
    token: dict[str, Any] | None = None,
    update_token: Callable[..., Awaitable[None]] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncOAuth2Client:
    """Authlib's async OAuth 2 client, PKCE S256, public unless a client secret is configured."""
    return AsyncOAuth2Client(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token=token,
        update_token=update_token,
        leeway=settings.token_leeway_s,
        token_endpoint=token_endpoint,
        **_http(settings, transport),
    )


def authorization_url(
    client: AsyncOAuth2Client, endpoint: str, *, state: str, verifier: str, iss: str, launch: str | None
) -> str:
    extra: dict[str, str] = {"aud": iss}
    if launch is not None:
        extra["launch"] = launch
    url, _ = client.create_authorization_url(endpoint, state=state, code_verifier=verifier, **extra)
    return str(url)


async def exchange_code(client: AsyncOAuth2Client, token_endpoint: str, *, code: str, verifier: str
                        ) -> dict[str, Any]:
    """The token response for ``code``; the EHR checks the PKCE verifier against the challenge."""
    try:
        token = await client.fetch_token(token_endpoint, grant_type="authorization_code", code=code,
                                         code_verifier=verifier)
    except AuthlibBaseError as exc:
        why = _oauth_code(exc) + _description(exc)
        raise SmartError(400, f"The EHR refused the sign-in ({why}).", code="token") from exc
    except (httpx.HTTPError, ValueError, TypeError) as exc:
        raise SmartError(502, f"The EHR's token endpoint could not be used ({type(exc).__name__}).",
                         code="token") from exc
    return dict(token)


def _oauth_code(exc: AuthlibBaseError) -> str:
    err = getattr(exc, "error", None)
    return err if isinstance(err, str) and re.fullmatch(r"[a-z_]{1,40}", err) else "error"


def _description(exc: AuthlibBaseError) -> str:
    """The EHR's ``error_description``, printable ASCII and clipped (the page escapes it)."""
    text = getattr(exc, "description", None)
    if not isinstance(text, str) or not text.strip():
        return ""
    return ": " + re.sub(r"[^\x20-\x7e]", "", text)[:160]


def check_patient_id(value: object) -> str:
    if not isinstance(value, str) or not FHIR_ID.fullmatch(value):
        raise SmartError(400, "The EHR did not give a patient in context (the token response has no usable "
                              "'patient').", code="patient")
    return value


class FhirReader:
    """Reads one patient's record from the launch's FHIR server with its access token."""

    def __init__(self, client: AsyncOAuth2Client, iss: str, settings: SmartSettings) -> None:
        self.client, self.iss, self.settings = client, normalise_iss(iss), settings
        self.refreshed = False
        self.unread: list[str] = []
        """Resource types the server would not search (shown on the page as not read)."""

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            resp = await self.client.get(url, headers={"Accept": "application/fhir+json"})
            if resp.status_code == 401 and self.client.token.get("refresh_token") and not self.refreshed:
                # The EHR revoked or expired the token early: refresh once and retry.
                await self.client.refresh_token(self.client.metadata["token_endpoint"])
                self.refreshed = True
                resp = await self.client.get(url, headers={"Accept": "application/fhir+json"})
        except (InvalidTokenError, MissingTokenError) as exc:
            raise SessionExpired from exc  # expired and no refresh token
        except AuthlibBaseError as exc:
            if getattr(exc, "error", None) == "invalid_grant":  # the EHR refused the refresh token
                raise SessionExpired from exc
            raise SmartError(502, f"The EHR refused to renew the session ({_oauth_code(exc)}).",
                             code="refresh") from exc
        except httpx.HTTPError as exc:
            raise SmartError(502, f"The EHR's FHIR server could not be read ({type(exc).__name__}).",
                             code="fhir") from exc
        if resp.status_code == 401:
            raise SessionExpired
        if resp.status_code != 200 or len(resp.content) > MAX_BYTES:
            raise SmartError(502, f"The EHR's FHIR server answered HTTP {resp.status_code}.", code="fhir")
        try:
            body = resp.json()
        except ValueError as exc:
            raise SmartError(502, "The EHR's FHIR server did not answer JSON.", code="fhir") from exc
        if not isinstance(body, dict):
            raise SmartError(502, "The EHR's FHIR server did not answer a FHIR resource.", code="fhir")
        return body

    def _same_server(self, url: str) -> bool:
        """The launch's FHIR server: same scheme and host, and the base path itself or below it (``/fhir``
        does not admit ``/fhir-other``); the access token goes nowhere else."""
        a, b = urlsplit(url), urlsplit(self.iss)
        base = b.path.rstrip("/")
        return (a.scheme, a.netloc) == (b.scheme, b.netloc) and (a.path == base or a.path.startswith(base + "/"))

    async def _search(self, rtype: str, patient: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url: str | None = f"{self.iss}/{rtype}?patient={quote(patient, safe='')}&_count=200"
        for _ in range(self.settings.max_pages):
            if url is None:
                break
            bundle = await self._get(url)
            if bundle.get("resourceType") != "Bundle":
                raise SmartError(502, f"The EHR's {rtype} search did not answer a Bundle.", code="fhir")
            out.extend(dict(r) for r in resources_of(bundle))
            # the Bundle's next page, read as the CDS fetches read it (fhir.next_link), on the same server only
            nxt = next_link(bundle)
            url = nxt if nxt is not None and self._same_server(nxt) else None
        return out

    async def record(self, patient: str) -> list[dict[str, Any]]:
        """The Patient and their conditions, medications, allergies and observations."""
        resources = [await self._get(f"{self.iss}/Patient/{quote(patient, safe='')}")]
        if resources[0].get("resourceType") != "Patient":
            raise SmartError(502, "The EHR did not answer the launched Patient.", code="fhir")
        for rtype in SEARCHES:
            try:
                resources += await self._search(rtype, patient)
            except SmartError as exc:
                if rtype == "MedicationStatement" and exc.code == "fhir":
                    self.unread.append(rtype)  # not every EHR offers it; the page says it was not read
                    continue
                raise
        return resources + await self._medications(unresolved_medication_references(resources))

    async def _medications(self, references: list[str]) -> list[dict[str, Any]]:
        """The Medications the record's orders point to, read from the same server (at most
        ``MAX_MEDICATION_READS``); one that cannot be read is left to the mapper, which names it as not
        screened, since a search answers the orders without them."""
        out: list[dict[str, Any]] = []
        for target in references[:MAX_MEDICATION_READS]:
            # the mapper's reading of a reference (versioned, absolute on this server), as it names them
            rid = reference_id(target, "Medication")
            if not rid or (target.startswith(("http://", "https://")) and not self._same_server(target)):
                continue
            try:
                res = await self._get(f"{self.iss}/Medication/{quote(rid, safe='')}")
            except SmartError as exc:
                if exc.code != "fhir":
                    raise
                continue
            if res.get("resourceType") == "Medication" and res.get("id") == rid:
                out.append(res)
        return out


_jwks: dict[str, tuple[float, dict[str, Any]]] = {}
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]


async def fhir_user(
    id_token: object,
    endpoints: Endpoints,
    settings: SmartSettings,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str | None:
    """The ``fhirUser`` of a verified OpenID Connect ``id_token`` (signature by the EHR's published key,
    ``iss``, ``aud`` = this client, ``exp``), or None when the EHR gave no id_token or publishes no key.

    An id_token that fails verification refuses the launch: it claims to name the clinician.
    """
    if not isinstance(id_token, str) or endpoints.jwks_uri is None or endpoints.issuer is None:
        return None
    try:
        header = jwt.get_unverified_header(id_token)
        jwks = await _cached_json(endpoints.jwks_uri, _key_set, _jwks, settings, transport)
        keys = [k for k in jwt.PyJWKSet.from_dict(jwks).keys if header.get("kid") in (None, k.key_id)]
        if not keys:
            raise jwt.InvalidTokenError("no key with this kid")
        claims = jwt.decode(id_token, keys[0], algorithms=ID_TOKEN_ALGORITHMS, audience=settings.client_id,
                            issuer=endpoints.issuer, leeway=30, options={"require": ["exp", "iat", "iss", "aud"]})
    except Unreadable as exc:
        raise SmartError(400, f"The EHR's identity token could not be verified (JWK Set: {exc}).",
                         code="id_token") from exc
    except (jwt.PyJWTError, ValueError, TypeError, KeyError, httpx.HTTPError) as exc:
        raise SmartError(400, f"The EHR's identity token could not be verified ({type(exc).__name__}).",
                         code="id_token") from exc
    user = claims.get("fhirUser")
    return user[:150] if isinstance(user, str) and user.isprintable() else None


def _key_set(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("keys"), list):
        raise ValueError("JWK Set without keys")
    return body
