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

from withdrawal.fhir import codes, next_link, resources_of
from withdrawal.fhir.decoding import read_by_a_reader
from withdrawal.fhir.mapping import reference_id
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
    # US Core (MedicationRequest profile): a server whose orders reference a Medication SHALL support
    # _include=MedicationRequest:medication, so the prefetch (or our fetch) carries the Medications too;
    # what still comes without them is read from fhirServer or named as not identified.
    "medications": "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication",
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
    truncated: list[str] = field(default_factory=list)
    """Keys whose data was cut short: a ``next`` page not read (limit reached, another origin, no server)."""
    not_fetched: list[str] = field(default_factory=list)
    """Keys asked of the FHIR server and not had (an error, a refused server, the call's deadline)."""


def _usable(value: object) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") not in (None, "OperationOutcome")


def _entries(value: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The resources of a prefetched or fetched value, as every path reads a Bundle (``fhir.resources_of``:
    nested Bundles too, OperationOutcome passed over); an Observation no reader reads is passed over here
    (``fhir.decoding.read_by_a_reader``: a record's vital signs and labs are most of it)."""
    return [r for r in resources_of(value) if read_by_a_reader(r)]


def _given(prefetch: Mapping[str, Any], key: str) -> bool:
    """Whether the client supplied this prefetch key: usable data, or null meaning "no data"."""
    value = prefetch.get(key)
    if key in prefetch and value is None and key != "patient":
        return True  # null: the client has no such data (an empty result)
    return isinstance(value, Mapping) and _usable(value)


def missing(prefetch: Mapping[str, Any] | None) -> list[str]:
    """The prefetch keys the client did not supply."""
    return [key for key in PREFETCH if not _given(prefetch or {}, key)]


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
            if key in fetched:
                out.not_fetched.append(key)
            continue
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


class FhirServer:
    """The ``fhirServer`` of one CDS call, for every fetch the call makes: the policy checked once, one
    client (``Accept`` and the bearer token), and one deadline for all the fetches together (the Medications
    of the draft orders, then the missing prefetch), so the call's time budget is spent once.

    ``url`` None: the client named no server, and nothing is fetched. The deadline starts at the first
    fetch; the address check is skipped when a transport is given (tests: no network is contacted then).
    """

    def __init__(
        self,
        url: str | None,
        *,
        token: str | None,
        policy: FhirPolicy,
        limiter: Limiter,
        timeout_s: float,
        deadline_s: float,
        transport: httpx.AsyncBaseTransport | None,
        tls: ssl.SSLContext | None = None,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.url = url
        self.token = token
        self.policy = policy
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.transport = transport
        self.tls = tls
        self.max_pages = max_pages
        self.origin: Origin = ("", "", 0)
        self.base = ""
        self._refused: str | None = None
        self._checked = False
        self._ends: float | None = None
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> FhirServer:
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def deadline(self) -> asyncio.Timeout:
        """The call's one deadline (started by the first fetch), for a block of fetches."""
        loop = asyncio.get_running_loop()
        if self._ends is None:
            self._ends = loop.time() + self.deadline_s
        return asyncio.timeout_at(self._ends)

    async def refused(self) -> str | None:
        """Why the server may not be fetched from (no server, the policy, its addresses), or None; checked once."""
        if self._checked:
            return self._refused
        self._checked = True
        if self.url is None:
            self._refused = "no fhirServer"
            return self._refused
        self._refused = self.policy.refuse(self.url)
        if self._refused is not None:
            return self._refused
        self.origin, self.base = parse_server(self.url)
        if self.transport is None:
            try:
                async with self.deadline():
                    self._refused = await self.policy.check_addresses(self.origin[1], self.origin[2])
            except TimeoutError:
                self._refused = f"fhirServer host did not resolve within {self.deadline_s:g} s"
        return self._refused

    def client(self) -> httpx.AsyncClient:
        """The call's one client: the server's answers as FHIR JSON, with the client's token if it gave one."""
        if self._client is None:
            headers = {"Accept": "application/fhir+json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            # NOTE: one TLS context for the process (``tls``): building one per client reads the CA
            # bundle, about 20 ms of CPU on the event loop for every CDS call that fetches.
            self._client = httpx.AsyncClient(
                timeout=self.timeout_s,
                headers=headers,
                transport=self.transport,
                follow_redirects=False,
                trust_env=False,
                verify=self.tls if self.tls is not None else True,
            )
        return self._client

    def url_of(self, relative: str) -> str:
        """A URL on the server: ``relative`` is a path and query under its base."""
        assert self.url is not None
        return f"{self.url.rstrip('/')}/{relative}"

    def same_server(self, url: str) -> bool:
        """Whether ``url`` is on the server's own origin and base path (parsed, never as text)."""
        try:
            got, path = parse_server(url.split("?", 1)[0])
        except ValueError:
            return False
        return got == self.origin and (path == self.base or path.startswith(self.base + "/"))

    async def read(self, url: str, max_pages: int, cut: set[str] | None = None,
                   key: str = "") -> list[Mapping[str, Any]] | None:
        """The resources of ``url`` and its ``next`` pages (at most ``max_pages``); None when the first page
        cannot be had. Data cut short (pages left, a ``next`` elsewhere, a later page failing) adds ``key`` to
        ``cut``. Called under :meth:`deadline`, after :meth:`refused` said None."""
        client = self.client()
        resources: list[Mapping[str, Any]] = []
        for page in range(max(max_pages, 1)):
            try:
                async with self.limiter.get():
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
            if not self.same_server(nxt):
                break
            url = nxt
        if cut is not None:
            cut.add(key)  # pages left unread: the data is cut short
        return resources


async def fetch_missing(
    fhir: FhirServer,
    keys: list[str],
    *,
    patient_id: str,
    continue_from: Mapping[str, str] | None = None,
    truncated: set[str] | None = None,
) -> dict[str, list[Mapping[str, Any]] | None]:
    """Fetch the missing prefetch keys; a key asked of the server and not had (an error, a refused server,
    the call's deadline) maps to None. With no server named, nothing is asked: ``{}``.

    ``continue_from``: further pages of paginated prefetch Bundles (key -> ``next`` URL), read on the
    server's own origin and base path only, into the same answer (``key`` then maps to those pages'
    resources). At most ``fhir.max_pages`` pages per key; a key whose data goes on beyond them (or whose
    ``next`` page is on another origin, or could not be read) is added to ``truncated``.

    A refused server or a missed deadline is a 412 when a required key is among ``keys``. The call's one
    deadline covers these fetches and any made before them (a server that trickles a byte a second never
    trips a per-read timeout).
    """
    if fhir.url is None:
        return {}
    needed = [k for k in keys if k in REQUIRED]
    out: dict[str, list[Mapping[str, Any]] | None] = {}
    cut: set[str] = set()
    refused = await fhir.refused()
    if refused is not None:
        if needed:
            raise MissingData(f"prefetch '{needed[0]}' missing and fhirServer refused: {refused}")
        cut.update(continue_from or {})
    else:
        pid = _encode_id(patient_id)
        try:
            async with fhir.deadline():
                for key in keys:
                    query = PREFETCH[key].replace("{{context.patientId}}", pid)
                    out[key] = await fhir.read(fhir.url_of(query), fhir.max_pages, cut, key)
                for key, url in (continue_from or {}).items():
                    if not fhir.same_server(url):
                        cut.add(key)  # the token goes to the server's own origin only
                        continue
                    got = await fhir.read(url, fhir.max_pages - 1, cut, key)
                    if got is None:
                        cut.add(key)
                    else:
                        out[key] = got
        except TimeoutError as exc:
            if any(out.get(k) is None for k in needed):
                raise MissingData(f"the FHIR server did not answer within {fhir.deadline_s:g} s") from exc
            cut.update(k for k in (continue_from or {}) if k not in out)
    if truncated is not None:
        truncated.update(cut)
    return {**dict.fromkeys(keys), **out}


async def fetch_references(fhir: FhirServer, references: list[str]) -> list[Mapping[str, Any]]:
    """Resources by relative reference (``Medication/<id>``) from the server, under the call's policy check,
    client and deadline; what cannot be had is left out (the caller says so)."""
    if not references or fhir.url is None or await fhir.refused() is not None:
        return []
    out: list[Mapping[str, Any]] = []
    try:
        async with fhir.deadline():
            for ref in references[:20]:
                # the mapper's reading of a reference (versioned, absolute on this server), as it names them
                rid = reference_id(ref, "Medication")
                if not rid or (ref.startswith(("http://", "https://")) and not fhir.same_server(ref)):
                    continue
                got = await fhir.read(fhir.url_of(f"Medication/{_encode_id(rid)}"), 1)
                out.extend(r for r in got or [] if r.get("resourceType") == "Medication")
    except TimeoutError:
        pass  # what did not arrive stays unresolved: its draft gets the "not screened" card
    return out


def _partial(resources: list[Mapping[str, Any]], page: int, cut: set[str] | None,
             key: str) -> list[Mapping[str, Any]] | None:
    """A first page that fails is no data (None); a later one leaves the data cut short."""
    if page == 0:
        return None
    if cut is not None:
        cut.add(key)
    return resources
