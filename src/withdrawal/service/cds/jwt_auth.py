"""CDS Hooks JWT authentication (CDS Hooks 2.0, "Trusting CDS Clients").

The client signs a JWT with its private key; we verify it against the public keys
of a configured JWK Set. Only asymmetric algorithms are accepted: ``none`` and the
shared-secret HS* family are refused before any key is looked at. ``iss`` must be
an allowed issuer, ``aud`` the service URL (or a configured audience), ``exp``,
``iat`` and ``jti`` are required, and a ``jti`` is accepted once (replay guard).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from withdrawal.service.errors import CdsAuthError
from withdrawal.service.models import CdsJti

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


def _key_for(jwks: dict[str, Any], kid: str | None, alg: str) -> PyJWK:
    try:
        keyset = PyJWKSet.from_dict(jwks)
    except jwt.PyJWTError as exc:
        raise CdsAuthError("the configured JWK Set cannot be read") from exc
    keys = [k for k in keyset.keys if kid is None or k.key_id == kid]
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


def verify(
    token: str,
    *,
    jwks: dict[str, Any] | None,
    issuers: Sequence[str],
    audiences: Sequence[str],
    leeway_s: int,
) -> dict[str, Any]:
    """Verified claims of a CDS Hooks bearer JWT, or :class:`CdsAuthError`."""
    if jwks is None:
        raise CdsAuthError("no trusted keys configured for CDS Hooks")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise CdsAuthError("malformed JWT") from exc
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASYMMETRIC:
        raise CdsAuthError(f"JWT algorithm {str(alg)[:20]!r} not accepted (asymmetric only)")
    kid = header.get("kid")
    key = _key_for(jwks, kid if isinstance(kid, str) else None, alg)
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
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise CdsAuthError("JWT expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise CdsAuthError("JWT 'aud' is not this service") from exc
    except jwt.InvalidIssuerError as exc:
        raise CdsAuthError("JWT 'iss' is not an allowed issuer") from exc
    except jwt.PyJWTError as exc:
        raise CdsAuthError(f"JWT rejected: {type(exc).__name__}") from exc
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise CdsAuthError("JWT 'jti' must be a non-empty string")
    return claims


def remember_jti(session: Session, claims: dict[str, Any], now: datetime) -> None:
    """Accept each (iss, jti) once until the token expires; expired entries are pruned."""
    session.execute(delete(CdsJti).where(CdsJti.expires_at < now - timedelta(minutes=10)))
    key = f"{claims['iss']}|{claims['jti']}"[:300]
    expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
    if session.get(CdsJti, key) is not None:
        raise CdsAuthError("JWT 'jti' already used")
    session.add(CdsJti(jti=key, expires_at=expires))
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise CdsAuthError("JWT 'jti' already used") from exc
