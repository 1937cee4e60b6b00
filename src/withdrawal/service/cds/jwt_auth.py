"""CDS Hooks JWT authentication (CDS Hooks 2.0, "Trusting CDS Clients").

The client signs a JWT with its private key; we verify it against the public keys
of a configured JWK Set. Only asymmetric algorithms are accepted: ``none`` and the
shared-secret HS* family are refused before any key is looked at. ``iss`` must be
an allowed issuer, ``aud`` the service URL (or a configured audience), ``exp``,
``iat`` and ``jti`` are required, and a ``jti`` is accepted once (replay guard).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from withdrawal.service.errors import CdsAuthError
from withdrawal.service.models import CdsJti

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
REQUIRED_CLAIMS = {"require": ["iss", "aud", "exp", "iat", "jti"]}


class KeyRing:
    """The trusted public keys, parsed once into key objects (not once per request).

    ``load`` returns the JWK Set as a dict (or None when none is configured). When
    ``stamp`` is given (the JWKS file's mtime and size), a changed stamp reloads the
    set, so a key rotation in the file needs no restart.
    """

    def __init__(self, load: Callable[[], dict[str, Any] | None], stamp: Callable[[], object] | None = None) -> None:
        self._load, self._stamp_of = load, stamp
        self._lock = threading.Lock()
        self._stamp: object = object()
        self._keys: tuple[PyJWK, ...] | None = None
        self._error: str | None = None
        self._refresh()

    @classmethod
    def from_settings(cls, settings: Any) -> KeyRing:
        path: Path | None = settings.cds_jwks_file if settings.cds_jwks is None else None

        def stamp() -> object:
            assert path is not None
            try:
                st = os.stat(path)
            except OSError:
                return None
            return (st.st_mtime_ns, st.st_size)

        return cls(settings.jwks, stamp if path is not None else None)

    def _refresh(self) -> None:
        stamp = self._stamp_of() if self._stamp_of else None
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                data = self._load()
                self._keys = None if data is None else tuple(PyJWKSet.from_dict(data).keys)
                self._error = None
            except (jwt.PyJWTError, ValueError, OSError, TypeError, KeyError):
                self._keys, self._error = None, "the configured JWK Set cannot be read"
            self._stamp = stamp

    def keys(self) -> tuple[PyJWK, ...] | None:
        if self._stamp_of is not None and self._stamp_of() != self._stamp:
            self._refresh()
        if self._error:
            raise CdsAuthError(self._error)
        return self._keys


def _key_for(keyset: Sequence[PyJWK], kid: str | None, alg: str) -> PyJWK:
    keys = [k for k in keyset if kid is None or k.key_id == kid]
    if kid is None and len(keys) != 1:
        raise CdsAuthError("JWT header has no 'kid' and the key set holds several keys")
    if not keys:
        raise CdsAuthError("no trusted key with this 'kid'")
    key = keys[0]
    if key.key_type == "oct":
        raise CdsAuthError("shared-secret keys are not accepted")
    declared = key.algorithm_name
    if declared and declared != alg and declared in ASYMMETRIC:
        raise CdsAuthError("JWT 'alg' does not match the key's algorithm")
    return key


_B64URL = re.compile(rb"[A-Za-z0-9_-]+")


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read only to pick the key and algorithm; ``jwt.decode`` then parses
    and checks the whole token itself (``get_unverified_header`` would parse it all twice)."""
    raw = token.encode("ascii", "replace")
    segment = raw.split(b".", 1)[0]
    if raw.count(b".") != 2 or not _B64URL.fullmatch(segment):
        raise CdsAuthError("malformed JWT")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:  # RecursionError: a deeply nested header
        raise CdsAuthError("malformed JWT") from exc
    if not isinstance(header, dict):
        raise CdsAuthError("malformed JWT")
    return header


MAX_AHEAD_S = 300
"""How far ahead ``exp`` may be: CDS Hooks 2.0 recommends an expiry of no more than 5 minutes."""


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CdsAuthError(f"JWT '{name}' must be a number (seconds since the epoch)")
    return float(value)


def verify(
    token: str,
    *,
    keys: KeyRing | dict[str, Any] | None,
    issuers: Sequence[str],
    audiences: Sequence[str],
    leeway_s: int,
    max_ahead_s: int = MAX_AHEAD_S,
    now: float | None = None,
) -> dict[str, Any]:
    """Verified claims of a CDS Hooks bearer JWT, or :class:`CdsAuthError`.

    Checks signature, ``iss``, ``aud``, ``exp``, ``iat`` and ``jti``; it does not
    consume the ``jti`` (see :func:`remember_jti`), and touches no database. ``exp``
    and ``iat`` must be JSON numbers, and ``exp`` at most ``max_ahead_s`` ahead: a
    token valid for a year would be a replayable credential for a year.
    """
    if isinstance(keys, dict):
        jwks = keys
        keys = KeyRing(lambda: jwks)
    keyset = keys.keys() if keys is not None else None
    if keyset is None:
        raise CdsAuthError("no trusted keys configured for CDS Hooks")
    header = _unverified_header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASYMMETRIC:
        raise CdsAuthError(f"JWT algorithm {str(alg)[:20]!r} not accepted (asymmetric only)")
    kid = header.get("kid")
    key = _key_for(keyset, kid if isinstance(kid, str) else None, alg)
    if not issuers:
        raise CdsAuthError("no allowed issuers configured")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=list(audiences),
            issuer=list(issuers),
            leeway=leeway_s,
            options=REQUIRED_CLAIMS,  # type: ignore[arg-type]
        )
    except jwt.ExpiredSignatureError as exc:
        raise CdsAuthError("JWT expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise CdsAuthError("JWT 'aud' is not this service") from exc
    except jwt.InvalidIssuerError as exc:
        raise CdsAuthError("JWT 'iss' is not an allowed issuer") from exc
    except jwt.PyJWTError as exc:
        raise CdsAuthError(f"JWT rejected: {type(exc).__name__}") from exc
    except (OverflowError, ValueError, TypeError) as exc:  # e.g. "exp": Infinity, which int() cannot take
        raise CdsAuthError("JWT 'exp', 'iat' or 'nbf' is not a usable time") from exc
    exp = _number(claims, "exp")
    _number(claims, "iat")
    if exp > (time.time() if now is None else now) + max_ahead_s + leeway_s:
        raise CdsAuthError(f"JWT 'exp' is more than {max_ahead_s} s ahead")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise CdsAuthError("JWT 'jti' must be a non-empty string")
    return claims


PRUNE_EVERY_S = 60.0


def replay_key(iss: str, jti: str) -> str:
    """The ``cds_jti`` key of a token: the whole (iss, jti) pair, hashed.

    A truncated text key let two ids sharing their first 300 characters collide; a
    digest also holds no NUL and no over-long text.
    """
    return hashlib.sha256(json.dumps([iss, jti]).encode()).hexdigest()


class ReplayGuard:
    """Accept each (iss, jti) once until the token expires.

    The seen ids are rows of ``cds_jti`` (primary key: SHA-256 of ``[iss, jti]``), added to the
    caller's session and flushed at once: a replay fails on the primary key, so two concurrent
    requests with one ``jti`` cannot both succeed, in one process or several. Expired rows are
    pruned at most once a minute, not on every request.
    """

    def __init__(self, prune_every_s: float = PRUNE_EVERY_S) -> None:
        self.prune_every_s = prune_every_s
        self._next_prune = 0.0

    def remember(self, session: Session, claims: dict[str, Any], now: datetime) -> None:
        """Insert the claim's jti; :class:`CdsAuthError` when it was seen (the caller's session is rolled back)."""
        mono = time.monotonic()
        if mono >= self._next_prune:
            self._next_prune = mono + self.prune_every_s
            session.execute(delete(CdsJti).where(CdsJti.expires_at < now - timedelta(minutes=10)))
        key = replay_key(str(claims["iss"]), str(claims["jti"]))
        session.add(CdsJti(jti=key, expires_at=datetime.fromtimestamp(float(claims["exp"]), UTC)))
        try:
            session.flush()
        except IntegrityError as exc:
            raise CdsAuthError("JWT 'jti' already used") from exc
