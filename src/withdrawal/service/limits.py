"""Bounds on what a request may store: timestamps, ids, text without NUL, finite numbers.

A timestamp from year 1 to 9999 used to be stored as given: one SOWS dated 9999 broke the
diary for good and a COWS dated 2099 stayed the "latest" score. Recorded times are now
bounded on the way in (:data:`Timestamp`), and rows stored before that are skipped when
pages and alerts read the course (:func:`in_bounds`), so an old bad row breaks nothing.

NUL characters and non-finite numbers are refused before any route sees the body
(:class:`EdgeGuard`): PostgreSQL cannot store NUL in text (a 500 there) and ``Infinity``
is not JSON (SQLite stored it as such). Both are a 422 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AfterValidator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from withdrawal.errors import WithdrawalError

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No withdrawal episode this service records is older; earlier dates are typing errors."""
CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of our clock a client's timestamp may be (clock skew, not the future)."""


def bounded_time(value: datetime) -> datetime:
    """``value`` in UTC if it lies between :data:`EARLIEST` and now plus :data:`CLOCK_SKEW`.

    Naive values are taken as UTC. An offset at the year limits (``0001-01-01T00:00+01:00``)
    cannot be expressed in UTC at all and is refused like any other out-of-range time.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    latest = datetime.now(UTC) + CLOCK_SKEW
    message = f"must be between {EARLIEST:%Y-%m-%dT%H:%MZ} and now (up to {CLOCK_SKEW.seconds // 60} min ahead)"
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(message) from exc
    if not EARLIEST <= utc <= latest:
        raise ValueError(message)
    return utc


Timestamp = Annotated[datetime, AfterValidator(bounded_time)]
"""A recorded time a client sends: bounded, returned in UTC."""


def in_bounds(value: datetime, now: datetime) -> bool:
    """Whether a stored time is one a page may chart or call "latest" (rows from before the bound)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return EARLIEST <= aware <= now + CLOCK_SKEW


def stored_window(now: datetime) -> tuple[datetime, datetime]:
    """(earliest, latest) for a SQL filter equal to :func:`in_bounds`."""
    return EARLIEST, now + CLOCK_SKEW


# --- the edge: NUL and non-finite numbers -------------------------------------------------


class _NotFinite(WithdrawalError, ValueError):
    pass


def _constant(name: str) -> Any:
    raise _NotFinite(name)


def first_bad_value(data: Any, path: str = "") -> tuple[str, str] | None:
    """(field path, why) of the first string with a NUL character, or None."""
    stack: list[tuple[str, Any]] = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return where or "body", "must not contain NUL characters"
        elif isinstance(value, dict):
            for k, v in value.items():
                if "\x00" in k:
                    return f"{where}.{k!r}".lstrip("."), "field names must not contain NUL characters"
                stack.append((f"{where}.{k}".lstrip("."), v))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
    return None


def json_problem(body: bytes) -> tuple[str, str] | None:
    """Why a JSON body must be refused (field, message), or None; invalid JSON is left to the route (400)."""
    try:
        data = json.loads(body, parse_constant=_constant)
    except _NotFinite as exc:
        return "body", f"{exc} is not a JSON number; numbers must be finite"
    except (ValueError, RecursionError):
        return None
    return first_bad_value(data)


def may_hold_nul(body: bytes) -> bool:
    """Whether a JSON body may hold an escaped NUL (``\\u0000``): the only way a NUL gets into valid JSON.

    Looks at each backslash (a byte search, ``memchr``: FHIR JSON has few) instead of searching for the
    six-byte sequence, which took 0.8 ms over a 1.4 MB body; past a thousand backslashes, the search."""
    i, seen = body.find(b"\\"), 0
    while i >= 0:
        if body.startswith(b"u0000", i + 1):
            return True
        seen += 1
        if seen > 1000:
            return body.find(b"\\u0000", i) >= 0
        i = body.find(b"\\", i + 2)  # an escape is two bytes or more: an escaped backslash then u0000 is no NUL
    return False


def refusal(body: bytes, decoded: bool) -> tuple[str, str] | None:
    """Why a JSON body is refused (field, message), or None, for a route that decodes the body itself.

    ``decoded``: whether a strict JSON decoder (one that refuses ``NaN`` and ``Infinity``, which are not
    JSON) read the body. Then only a NUL can be wrong with it, and it is looked for only where the raw
    body may hold one; a body the decoder refused is checked as :class:`EdgeGuard` checks it."""
    if decoded and not may_hold_nul(body):
        return None
    return json_problem(body)


def refusal_body(field: str, message: str) -> bytes:
    """The 422 body for a refused request: ``{"detail": [{"field", "message"}]}``."""
    return json.dumps({"detail": [{"field": field[:200], "message": message}]}).encode()


def json_body(scope: Scope) -> bool:
    """Whether a request's body is read as JSON and checked (POST, PUT or PATCH; a JSON content type or none)."""
    ctype = next((v for k, v in scope.get("headers", []) if k == b"content-type"), b"")
    return scope.get("method") in ("POST", "PUT", "PATCH") and (
        not ctype.strip() or _is(ctype, b"application/json", b"json"))


def form_problem(body: bytes) -> tuple[str, str] | None:
    try:
        pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=2000)
    except ValueError:
        return None
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            return key.replace("\x00", "") or "form", "must not contain NUL characters"
    return None


def _is(content_type: bytes, *kinds: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return any(media == k or (k == b"json" and media.endswith(b"+json")) for k in kinds)


class EdgeGuard:
    """422 for a request whose JSON or form body (or query) holds a NUL, or a JSON body ``Infinity``/``NaN``.

    Form bodies are URL-encoded or multipart; a body without a content type is read as JSON,
    as FastAPI reads it.

    The body is read once here and handed on unchanged. Only a body that contains one of
    the telltale byte sequences is parsed here, so an ordinary request costs a few
    substring scans.

    ``decoded_by_route``: requests (method and path) whose routes decode their JSON body with a strict
    decoder and refuse what this guard refuses themselves (:func:`refusal`: the CDS services, whose bodies can be a
    patient's whole record); their JSON bodies pass through unread (their query is still checked).
    """

    def __init__(self, app: ASGIApp, decoded_by_route: Callable[[Scope], bool] | None = None) -> None:
        self.app = app
        self.decoded_by_route = decoded_by_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            bad_query = form_problem(query)
            if bad_query:
                await _send_422(send, *bad_query)
                return
        ctype = next((v for k, v in scope.get("headers", []) if k == b"content-type"), b"")
        # NOTE: FastAPI reads a body without a content type as JSON, so that is checked as JSON too.
        is_json = not ctype.strip() or _is(ctype, b"application/json", b"json")
        is_form = _is(ctype, b"application/x-www-form-urlencoded")
        is_multipart = _is(ctype, b"multipart/form-data")
        if scope.get("method") not in ("POST", "PUT", "PATCH") or not (is_json or is_form or is_multipart) or (
                is_json and self.decoded_by_route is not None and self.decoded_by_route(scope)):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem: tuple[str, str] | None = None
        if is_json and (b"\\u0000" in body or b"Infinity" in body or b"NaN" in body):
            problem = json_problem(body)
        elif is_form and (b"%00" in body or b"\x00" in body):
            problem = form_problem(body)
        elif is_multipart and b"\x00" in body:  # no route takes a file: a NUL byte can only be in a field
            problem = ("form", "must not contain NUL characters")
        if problem:
            await _send_422(send, *problem)
            return
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_422(send: Send, field: str, message: str) -> None:
    body = refusal_body(field, message)
    start: Message = {
        "type": "http.response.start",
        "status": 422,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
