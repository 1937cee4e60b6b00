"""Passwords (Argon2id) and opaque bearer tokens stored as SHA-256 digests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from withdrawal.service.models import ApiToken, AuditEntry, User, aware

# NOTE: Argon2id at the OWASP password storage cheat sheet's first configuration: 19 MiB,
# 2 iterations, 1 lane (about 30 ms a hash here). scrypt at OWASP's N=2^17 would need 128 MiB
# a hash, a memory hazard under concurrent logins; older scrypt hashes (N=2^14) are still
# verified and replaced by an Argon2id hash at the next successful login.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16)


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        if algo != "scrypt":
            return False
        want = _unb64(digest)
        dk = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(want), maxmem=2**26
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(dk, want)


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a verified hash should be replaced: scrypt, or Argon2id with other parameters."""
    return stored.startswith("scrypt$") or HASHER.check_needs_rehash(stored)


_DUMMY = hash_password(secrets.token_urlsafe(16))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this password, or None; an outdated hash is replaced (the caller commits)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        verify_password(password, _DUMMY)  # same work either way: no user enumeration by timing
        return None
    if not verify_password(password, user.password_hash):
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, ttl: timedelta, now: datetime) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    expires = now + ttl
    session.add(ApiToken(token_hash=_digest(token), user_id=user.id, created_at=now, expires_at=expires))
    return token, expires


def user_for_token(session: Session, token: str, now: datetime) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None:
        return None
    if aware(row.expires_at) <= now:
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def revoke_token(session: Session, token: str) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is not None:
        session.delete(row)


def login_actor(username: str, client: str | None) -> str:
    """How a login attempt names its actor in the audit log: the username tried and where from."""
    return f"login:{username[:100]}@{(client or 'unknown')[:60]}"


def login_throttled(
    session: Session, username: str, client: str | None, now: datetime, max_failures: int, window_minutes: int
) -> bool:
    """Whether ``username`` failed ``max_failures`` times from ``client`` in the last ``window_minutes``
    since its last successful login.

    Per username and client address, so someone elsewhere cannot lock a clinician out by
    failing on purpose; a successful login starts the count again. Counted from the audit
    log's denied logins (indexed by actor, action, time), so every worker process and both
    the API and the web pages see the same count. A throttled attempt is not checked at all.
    """
    since = now - timedelta(minutes=window_minutes)
    user = session.scalar(select(User).where(User.username == username))
    if user is not None:
        last_ok = session.scalar(
            select(func.max(AuditEntry.at)).where(
                AuditEntry.actor == f"{user.role}:{user.username}",
                AuditEntry.action == "login",
                AuditEntry.outcome == "ok",
                AuditEntry.at > since,
            )
        )
        if last_ok is not None:
            since = max(since, aware(last_ok))
    failures = session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(
            AuditEntry.actor == login_actor(username, client),
            AuditEntry.action == "login",
            AuditEntry.outcome == "denied",
            AuditEntry.at > since,
        )
    )
    return bool(failures and failures >= max_failures)


def expired_before(now: datetime, minutes: int) -> datetime:
    return now - timedelta(minutes=minutes)
