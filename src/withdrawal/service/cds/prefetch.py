"""Prefetch templates and what to do when prefetched data is absent, null or an error.

CDS Hooks 2.0: a key the client could not or would not fill is left out, a key
with no data is ``null``, and a failed query may come back as an
OperationOutcome. We fetch what is missing from ``fhirServer`` with the access
token the client gave, and answer 412 when required data cannot be had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx

from withdrawal.fhir import codes
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
PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}",
    "statements": "MedicationStatement?patient={{context.patientId}}",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
    "observations": f"Observation?patient={{{{context.patientId}}}}&code={_OBS_CODES}",
}
REQUIRED = frozenset({"patient", "conditions", "medications"})
MAX_PAGES = 5


@dataclass
class Gathered:
    resources: list[Mapping[str, Any]] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)


def _usable(value: object) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") not in (None, "OperationOutcome")


def _entries(value: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if value.get("resourceType") != "Bundle":
        return [value]
    out = []
    for e in value.get("entry") or []:
        r = e.get("resource") if isinstance(e, Mapping) else None
        if isinstance(r, Mapping) and r.get("resourceType") not in (None, "OperationOutcome"):
            out.append(r)
    return out


def _given(prefetch: Mapping[str, Any], key: str) -> bool:
    """Whether the client supplied this prefetch key: usable data, or null meaning "no data"."""
    value = prefetch.get(key)
    if key in prefetch and value is None and key != "patient":
        return True  # null: the client has no such data (an empty result)
    return isinstance(value, Mapping) and _usable(value)


def needs_fetch(prefetch: Mapping[str, Any] | None) -> bool:
    """Whether answering would mean fetching from the FHIR server (network I/O)."""
    return not all(_given(prefetch or {}, key) for key in PREFETCH)


def gather(
    prefetch: Mapping[str, Any] | None,
    *,
    patient_id: str,
    fhir_server: str | None,
    token: str | None,
    allowed_servers: tuple[str, ...],
    timeout_s: float,
    transport: httpx.BaseTransport | None,
) -> Gathered:
    out = Gathered()
    prefetch = prefetch or {}
    client: httpx.Client | None = None
    try:
        for key, template in PREFETCH.items():
            value = prefetch.get(key)
            if _given(prefetch, key):
                if value is not None:
                    out.resources.extend(_entries(value))
                continue
            if fhir_server is None or not _server_allowed(fhir_server, allowed_servers):
                if key in REQUIRED:
                    raise MissingData(f"prefetch '{key}' missing and no usable fhirServer to fetch it from")
                out.unavailable.append(key)
                continue
            if client is None:
                headers = {"Accept": "application/fhir+json"}
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport, follow_redirects=False)
            got = _fetch(client, fhir_server, template.replace("{{context.patientId}}", patient_id))
            if got is None:
                if key in REQUIRED:
                    raise MissingData(f"'{key}' could not be fetched from the FHIR server")
                out.unavailable.append(key)
                continue
            out.fetched.append(key)
            out.resources.extend(got)
    finally:
        if client is not None:
            client.close()
    return out


def _server_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    if not url.startswith(("https://", "http://")):
        return False
    return not allowed or any(url.startswith(a) for a in allowed)


def _fetch(client: httpx.Client, base: str, query: str) -> list[Mapping[str, Any]] | None:
    url = urljoin(base.rstrip("/") + "/", query)
    resources: list[Mapping[str, Any]] = []
    for _ in range(MAX_PAGES):
        try:
            resp = client.get(url)
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        if not _usable(body):
            return None
        resources.extend(_entries(body))
        nxt = None
        for link in body.get("link") or []:
            if isinstance(link, Mapping) and link.get("relation") == "next" and isinstance(link.get("url"), str):
                nxt = link["url"]
        if nxt is None or not nxt.startswith(base.rstrip("/")):
            break
        url = nxt
    return resources
