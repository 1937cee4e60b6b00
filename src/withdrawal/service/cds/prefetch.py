"""Prefetch templates and what to do when prefetched data is absent, null or an error.

CDS Hooks 2.0: a key the client could not or would not fill is left out, a key
with no data is ``null``, and a failed query may come back as an
OperationOutcome. We fetch what is missing from ``fhirServer`` with the access
token the client gave, and answer 412 when required data cannot be had.

Fetching is where a CDS client steers this service at a URL of its choosing, with a
bearer token attached, so it is held tight (:class:`FhirPolicy`): the server must be
an allowed origin (scheme, host and port compared parsed, never as text), userinfo is
refused, a paging ``next`` link is followed only on that origin, ``patientId`` is
percent-encoded, and a host that resolves to a private, link-local or loopback address
is refused unless its address or network is listed. The fetches are asynchronous (no
thread is held while a slow server trickles), share one bound on concurrent requests,
and each CDS call has one deadline for all of them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from withdrawal.fhir import codes
from withdrawal.fhir.decoding import read_by_a_reader
from withdrawal.fhir.questionnaire import CODE_SYSTEM as SCALE_SYSTEM
from withdrawal.fhir.questionnaire import HOURS_CODE, SCALES
from withdrawal.service.errors import MissingData

_OBS_CODES = ",".join(
    f"{codes.LOINC}|{c}"
    for c in sorted(
        codes.PREGNANCY_STATUS
        | codes.BREASTFEEDING_STATUS
        | codes.CREATININE_CLEARANCE
        | codes.EGFR
        | codes.CYP2D6_PHENOTYPE
    )
)
# COWS/SOWS scores and the hours since the last opioid, in the project's own code system (no LOINC
# code for them was verified; docs/pathway.md), so that the pathway reads what the EHR recorded.
_OBS_CODES += "," + ",".join(f"{SCALE_SYSTEM}|{c}" for c in (*(f"{s}-total" for s in SCALES), HOURS_CODE))
PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}",
    "statements": "MedicationStatement?patient={{context.patientId}}",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
    "observations": f"Observation?patient={{{{context.patientId}}}}&code={_OBS_CODES}",
    "procedures": "Procedure?patient={{context.patientId}}",
}
REQUIRED = frozenset({"patient", "conditions", "medications"})
MAX_PAGES = 5


@dataclass
class Gathered:
    resources: list[Mapping[str, Any]] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    """Keys whose data was cut short: a ``next`` page not read (limit reached, another origin, no server)."""


def _usable(value: object) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") not in (None, "OperationOutcome")


def _entries(value: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The resources of a prefetched or fetched value; an Observation no reader reads is passed over here
    (``fhir.decoding.read_by_a_reader``: a record's vital signs and labs are most of it)."""
    if value.get("resourceType") != "Bundle":
        return [value]
    out = []
    for e in value.get("entry") or []:
        # NOTE: a JSON object is a dict: checked first, the Mapping ABC (slower) only for anything else;
        # a whole record in prefetch is thousands of entries.
        r = e.get("resource") if type(e) is dict or isinstance(e, Mapping) else None
        if (type(r) is dict or isinstance(r, Mapping)) and r.get("resourceType") not in (None, "OperationOutcome") \
                and read_by_a_reader(r):
            out.append(r)
    return out


def _given(prefetch: Mapping[str, Any], key: str) -> bool:
    """Whether the client supplied this prefetch key: usable data, or null meaning "no data"."""
    value = prefetch.get(key)
    if key in prefetch and value is None and key != "patient":
        return True  # null: the client has no such data (an empty result)
    return isinstance(value, Mapping) and _usable(value)


def missing(prefetch: Mapping[str, Any] | None) -> list[str]:
    """The prefetch keys the client did not supply."""
    return [key for key in PREFETCH if not _given(prefetch or {}, key)]


def next_link(value: object) -> str | None:
    """The ``next`` page of a paginated Bundle, if any."""
    if not isinstance(value, Mapping) or value.get("resourceType") != "Bundle":
        return None
    for link in value.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def pages_to_follow(prefetch: Mapping[str, Any] | None) -> dict[str, str]:
    """Prefetch keys whose Bundle is one page of several: key -> the ``next`` URL."""
    out = {}
    for key in PREFETCH:
        nxt = next_link((prefetch or {}).get(key))
        if nxt is not None:
            out[key] = nxt
    return out


def assemble(
    prefetch: Mapping[str, Any] | None,
    fetched: Mapping[str, list[Mapping[str, Any]] | None],
    *,
    more: Mapping[str, list[Mapping[str, Any]]] | None = None,
    truncated: set[str] | None = None,
) -> Gathered:
    """The resources from the prefetch and from what was fetched; 412 when required data is missing.

    ``more``: the further pages of paginated prefetch Bundles; ``truncated``: the keys whose data was
    cut short (a prefetched Bundle whose ``next`` page was not read is cut short too)."""
    out = Gathered()
    prefetch = prefetch or {}
    cut = set(truncated or ())
    for key in PREFETCH:
        value = prefetch.get(key)
        if _given(prefetch, key):
            if value is not None:
                out.resources.extend(_entries(value))
                if next_link(value) is not None:
                    if more is not None and key in more:
                        out.resources.extend(more[key])
                    else:
                        cut.add(key)
            continue
        got = fetched.get(key)
        if got is None:
            if key in REQUIRED:
                why = "could not be fetched from the FHIR server" if key in fetched else "missing and not fetched"
                raise MissingData(f"prefetch '{key}' {why}")
            out.unavailable.append(key)
            continue
        out.fetched.append(key)
        out.resources.extend(got)
    out.truncated = sorted(cut)
    return out


# --- where we may fetch from ------------------------------------------------------------------

Origin = tuple[str, str, int]
"""(scheme, host, port), compared parsed."""


def parse_server(url: str) -> tuple[Origin, str]:
    """The origin and base path of a FHIR server URL; ``ValueError`` saying why it is refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError("not a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError("only http and https FHIR servers")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("userinfo (user@host) is not accepted in a FHIR server URL")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("no host")
    if parts.query or parts.fragment:
        raise ValueError("a FHIR server base URL has no query or fragment")
    return (parts.scheme, host, port or (443 if parts.scheme == "https" else 80)), parts.path.rstrip("/")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return addr.is_global and not addr.is_multicast


@dataclass(frozen=True)
class FhirPolicy:
    """Which ``fhirServer`` URLs may be fetched from, and to which addresses.

    ``allowed``: (origin, base path) pairs; empty means loopback only (development).
    ``networks``: private, link-local or loopback networks listed as reachable; an
    allowed IP-literal host is listed by itself.
    """

    allowed: tuple[tuple[Origin, str], ...]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, servers: tuple[str, ...], networks: tuple[str, ...]) -> FhirPolicy:
        return cls(tuple(parse_server(s) for s in servers), tuple(ipaddress.ip_network(n) for n in networks))

    def refuse(self, url: str) -> str | None:
        """Why this server URL is refused (before any address is looked up), or None."""
        try:
            origin, path = parse_server(url)
        except ValueError as exc:
            return str(exc)
        if not self.allowed:
            addr = _ip(origin[1])
            if origin[1] == "localhost" or (addr is not None and addr.is_loopback):
                return None
            return "no FHIR server allow-list is configured: loopback servers only"
        for allowed_origin, base in self.allowed:
            if origin == allowed_origin and (path == base or path.startswith(base + "/")):
                return None
        return "fhirServer is not on the allow-list"

    def address_allowed(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> bool:
        """A resolved address may be contacted: public, listed, or loopback in development."""
        if _public(addr) or any(addr in n for n in self.networks if n.version == addr.version):
            return True
        if _ip(host) == addr and any(o[1] == host for o, _ in self.allowed):
            return True  # an IP literal on the allow-list is listed explicitly
        return not self.allowed and addr.is_loopback

    async def check_addresses(self, host: str, port: int) -> str | None:
        """Resolve ``host``; why one of its addresses may not be contacted, or None."""
        literal = _ip(host)
        if literal is not None:
            addrs = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError:
                return "fhirServer host does not resolve"
            addrs = [ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]) for i in infos]
        for addr in addrs:
            if not self.address_allowed(addr, host):
                return "fhirServer resolves to a private, link-local or loopback address that is not listed"
        return None


class Limiter:
    """One bound on concurrent outbound fetches for the process (a semaphore per event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._by_loop.get(loop)
        if sem is None:
            sem = self._by_loop[loop] = asyncio.Semaphore(self.limit)
        return sem


MAX_RESPONSE_BYTES = 5_000_000


def _encode_id(patient_id: str) -> str:
    """``patientId`` as one path segment or query value: ``/``, ``?``, ``#``, ``&`` and dots encoded."""
    return quote(patient_id, safe="").replace(".", "%2E")


async def fetch_missing(
    keys: list[str],
    *,
    patient_id: str,
    fhir_server: str,
    token: str | None,
    policy: FhirPolicy,
    limiter: Limiter,
    timeout_s: float,
    deadline_s: float,
    transport: httpx.AsyncBaseTransport | None,
    tls: ssl.SSLContext | None = None,
    max_pages: int = MAX_PAGES,
    continue_from: Mapping[str, str] | None = None,
    truncated: set[str] | None = None,
) -> dict[str, list[Mapping[str, Any]] | None]:
    """Fetch the missing prefetch keys; a key that cannot be had maps to None.

    ``continue_from``: further pages of paginated prefetch Bundles (key -> ``next`` URL), read on the
    server's own origin and base path only, into the same answer (``key`` then maps to those pages'
    resources). At most ``max_pages`` pages per key; a key whose data goes on beyond them (or whose
    ``next`` page is on another origin, or could not be read) is added to ``truncated``.

    A refused server or a missed deadline is a 412 when a required key is among ``keys``,
    else nothing is fetched. One deadline covers the whole call (a server that trickles a byte a second never
    trips a per-read timeout); the address check is skipped when a transport is given
    (tests: no network is contacted then).
    """
    needed = [k for k in keys if k in REQUIRED]
    refused = policy.refuse(fhir_server)
    origin, base = parse_server(fhir_server) if refused is None else (("", "", 0), "")
    if refused is None and transport is None:
        refused = await policy.check_addresses(origin[1], origin[2])
    if refused is not None:
        if needed:
            raise MissingData(f"prefetch '{needed[0]}' missing and fhirServer refused: {refused}")
        if truncated is not None:
            truncated.update(continue_from or {})
        return {}
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    pid = _encode_id(patient_id)
    root = fhir_server.rstrip("/")
    out: dict[str, list[Mapping[str, Any]] | None] = {}
    try:
        async with asyncio.timeout(deadline_s):
            # NOTE: one TLS context for the process (``tls``): building one per client reads the CA
            # bundle, about 20 ms of CPU on the event loop for every CDS call that fetches.
            async with httpx.AsyncClient(
                timeout=timeout_s,
                headers=headers,
                transport=transport,
                follow_redirects=False,
                trust_env=False,
                verify=tls if tls is not None else True,
            ) as client:
                cut: set[str] = set()
                for key in keys:
                    query = PREFETCH[key].replace("{{context.patientId}}", pid)
                    out[key] = await _fetch(client, limiter, f"{root}/{query}", origin, base, max_pages, cut, key)
                for key, url in (continue_from or {}).items():
                    if not _same_server(url, origin, base):
                        cut.add(key)  # the token goes to the server's own origin only
                        continue
                    got = await _fetch(client, limiter, url, origin, base, max_pages - 1, cut, key)
                    if got is None:
                        cut.add(key)
                    else:
                        out[key] = got
                if truncated is not None:
                    truncated.update(cut)
    except TimeoutError as exc:
        if any(out.get(k) is None for k in needed):
            raise MissingData(f"the FHIR server did not answer within {deadline_s:g} s") from exc
        if truncated is not None:
            truncated.update(k for k in (continue_from or {}) if k not in out)
    return out


async def fetch_references(
    references: list[str],
    *,
    fhir_server: str,
    token: str | None,
    policy: FhirPolicy,
    limiter: Limiter,
    timeout_s: float,
    deadline_s: float,
    transport: httpx.AsyncBaseTransport | None,
    tls: ssl.SSLContext | None = None,
) -> list[Mapping[str, Any]]:
    """Resources by relative reference (``Medication/<id>``) from ``fhirServer``, under the same policy,
    limiter and deadline as the prefetch; what cannot be had is left out (the caller says so)."""
    if not references or policy.refuse(fhir_server) is not None:
        return []
    origin, base = parse_server(fhir_server)
    if transport is None and await policy.check_addresses(origin[1], origin[2]) is not None:
        return []
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    root = fhir_server.rstrip("/")
    out: list[Mapping[str, Any]] = []
    try:
        async with asyncio.timeout(deadline_s):
            async with httpx.AsyncClient(timeout=timeout_s, headers=headers, transport=transport,
                                         follow_redirects=False, trust_env=False,
                                         verify=tls if tls is not None else True) as client:
                for ref in references[:20]:
                    rtype, _, rid = ref.partition("/")
                    if rtype != "Medication" or not rid:
                        continue
                    got = await _fetch(client, limiter, f"{root}/Medication/{_encode_id(rid)}", origin, base, 1)
                    out.extend(r for r in got or [] if r.get("resourceType") == "Medication")
    except TimeoutError:
        pass  # what did not arrive stays unresolved: its draft gets the "not screened" card
    return out


def _same_server(url: str, origin: Origin, base: str) -> bool:
    try:
        got, path = parse_server(url.split("?", 1)[0])
    except ValueError:
        return False
    return got == origin and (path == base or path.startswith(base + "/"))


async def _fetch(
    client: httpx.AsyncClient, limiter: Limiter, url: str, origin: Origin, base: str,
    max_pages: int = MAX_PAGES, cut: set[str] | None = None, key: str = "",
) -> list[Mapping[str, Any]] | None:
    """The resources of ``url`` and its ``next`` pages (at most ``max_pages``); None when the first page
    cannot be had. Data cut short (pages left, a ``next`` elsewhere, a later page failing) adds ``key`` to ``cut``."""
    resources: list[Mapping[str, Any]] = []
    for page in range(max(max_pages, 1)):
        try:
            async with limiter.get():
                async with client.stream("GET", url) as resp:
                    if resp.status_code != 200:
                        return _partial(resources, page, cut, key)
                    chunks, size = [], 0
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_RESPONSE_BYTES:
                            return _partial(resources, page, cut, key)
                        chunks.append(chunk)
        except httpx.HTTPError:
            return _partial(resources, page, cut, key)
        try:
            body = json.loads(b"".join(chunks))
        except (ValueError, RecursionError):
            return _partial(resources, page, cut, key)
        if not _usable(body):
            return _partial(resources, page, cut, key)
        resources.extend(_entries(body))
        nxt = next_link(body)
        if nxt is None:
            return resources
        # NOTE: the bearer token goes with every page, so a next link is followed only on the
        # server's own origin and base path (parsed: another port or a userinfo trick is refused).
        if not _same_server(nxt, origin, base):
            break
        url = nxt
    if cut is not None:
        cut.add(key)  # pages left unread: the data is cut short
    return resources


def _partial(resources: list[Mapping[str, Any]], page: int, cut: set[str] | None,
             key: str) -> list[Mapping[str, Any]] | None:
    """A first page that fails is no data (None); a later one leaves the data cut short."""
    if page == 0:
        return None
    if cut is not None:
        cut.add(key)
    return resources
