"""Launches in progress and launched sessions, held in this process's memory only.

Nothing here is written to disk or to the database: a launch holds its ``state``, PKCE
verifier and browser binding until the EHR redirects back (single use); a session holds
the EHR's tokens for the page's session token, looked up by the token's SHA-256 digest.
Both expire (``launch_ttl_s``, ``session_ttl_s``) and are bounded in number. One worker
process: run the SMART pages with ``--workers 1`` or sticky sessions (docs/smart.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

MAX_ENTRIES = 10_000


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Launch:
    """A launch waiting for the EHR's redirect back: everything bound to its ``state``."""

    iss: str
    launch: str | None
    verifier: str
    binder_digest: str
    authorization_endpoint: str
    token_endpoint: str
    scope: str
    redirect_uri: str
    issuer: str | None = None
    jwks_uri: str | None = None
    created: float = field(default_factory=time.monotonic)

    def bound_to(self, binder: str | None) -> bool:
        return binder is not None and hmac.compare_digest(digest(binder), self.binder_digest)


@dataclass
class SmartSession:
    """A launched session: the EHR's tokens and patient, for the page's session token."""

    iss: str
    patient: str
    token: dict[str, Any]
    token_endpoint: str
    scope: str
    fhir_user: str | None = None
    app_context: str | None = None
    created: float = field(default_factory=time.monotonic)


class Store:
    """Expiring, bounded, thread-safe maps; secrets are never keys, only their digests."""

    def __init__(self, launch_ttl_s: float, session_ttl_s: float) -> None:
        self.launch_ttl_s, self.session_ttl_s = launch_ttl_s, session_ttl_s
        self._launches: dict[str, Launch] = {}
        self._sessions: dict[str, SmartSession] = {}
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._launches.items() if now - v.created > self.launch_ttl_s]:
            del self._launches[key]
        for key in [k for k, v in self._sessions.items() if now - v.created > self.session_ttl_s]:
            del self._sessions[key]

    def add_launch(self, launch: Launch) -> str:
        """Keep ``launch``; returns its ``state`` (unguessable, 256 bits)."""
        state = secrets.token_urlsafe(32)
        with self._lock:
            self._prune(time.monotonic())
            if len(self._launches) >= MAX_ENTRIES:
                raise OverflowError("too many launches in progress")
            self._launches[digest(state)] = launch
        return state

    def take_launch(self, state: str) -> Launch | None:
        """The launch for ``state``, removed (single use); None if unknown or expired."""
        with self._lock:
            self._prune(time.monotonic())
            return self._launches.pop(digest(state), None)

    def add_session(self, sess: SmartSession) -> str:
        """Keep ``sess``; returns the session token the page carries (unguessable, 256 bits)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._prune(time.monotonic())
            if len(self._sessions) >= MAX_ENTRIES:
                raise OverflowError("too many SMART sessions")
            self._sessions[digest(token)] = sess
        return token

    def session(self, token: str) -> SmartSession | None:
        with self._lock:
            self._prune(time.monotonic())
            return self._sessions.get(digest(token))

    def end_session(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(digest(token), None)
