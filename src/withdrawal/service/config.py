"""Service settings, read from the environment (prefix ``WITHDRAWAL_``) or passed in.

The embedded default is SQLite in a data directory, so ``withdrawal serve`` needs no
database server. Monitoring numbers that no source gives are settings here (see
``knowledge/data/monitoring.yaml`` for which alert uses which), documented as site
configuration, not clinical knowledge.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from withdrawal.monitoring import Thresholds

ASYMMETRIC_KTY = frozenset({"RSA", "EC", "OKP"})


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "withdrawal"


class Settings(BaseSettings):
    """Everything the service reads at start-up."""

    model_config = SettingsConfigDict(env_prefix="WITHDRAWAL_", extra="ignore", frozen=True)

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite:///<data_dir>/withdrawal.db``."""

    token_ttl_minutes: int = Field(default=480, ge=1, le=7 * 24 * 60)
    login_max_failures: int = Field(default=10, ge=1, le=100)
    """Failed logins for one username from one address within ``login_window_minutes`` before 429.

    Site configuration: NIST SP 800-63B (5.2.2) requires at most 100 consecutive failures."""
    login_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    max_body_bytes: int = Field(default=2_000_000, ge=1024)

    # --- CDS Hooks ---------------------------------------------------------------------
    cds_auth_required: bool = True
    cds_jwks: str | None = None
    """JWK Set (JSON text) of the trusted EHRs' public keys."""
    cds_jwks_file: Path | None = None
    cds_allowed_issuers: Annotated[tuple[str, ...], NoDecode] = ()
    cds_audiences: Annotated[tuple[str, ...], NoDecode] = ()
    """Accepted ``aud`` values; when empty, the URL the request was sent to."""
    cds_jwt_leeway_s: int = Field(default=30, ge=0, le=300)
    cds_jwt_max_ahead_s: int = Field(default=300, ge=60, le=3600)
    """How far ahead a CDS JWT's ``exp`` may be (CDS Hooks 2.0 recommends at most 5 minutes)."""
    cds_fhir_timeout_s: float = Field(default=5.0, gt=0, le=60)
    """Per network operation (connect, one read) of a FHIR fetch."""
    cds_fhir_deadline_s: float = Field(default=10.0, gt=0, le=120)
    """All the fetches of one CDS call together; a server that trickles is cut off here."""
    cds_fhir_max_concurrent: int = Field(default=16, ge=1, le=1000)
    # browser-based EHR clients (SMART apps calling CDS Hooks from a page) allowed by CORS, by origin
    cds_cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # pages of one paginated search read (prefetch Bundles' ``next`` links included); beyond: cut short
    cds_fhir_max_pages: int = Field(default=5, ge=1, le=100)
    """Outbound FHIR requests in flight at once, per process."""
    cds_fhir_servers: Annotated[tuple[str, ...], NoDecode] = ()
    """Allowed ``fhirServer`` base URLs (scheme, host, port and base path); empty: loopback only (not in production)."""
    cds_fhir_private_networks: Annotated[tuple[str, ...], NoDecode] = ()
    """Private, link-local or loopback networks (CIDR) an allowed FHIR server's host may resolve to."""

    docs_enabled: bool = True
    """Serve ``/docs``, ``/redoc`` and ``/openapi.json`` (off: 404)."""

    # --- demo ---------------------------------------------------------------------------
    demo_clinician_username: str = "clinician"
    demo_clinician_password: str | None = None
    demo_patient_username: str = "patient"
    demo_patient_password: str | None = None

    # --- monitoring (site configuration; no source gives these numbers) ----------------
    monitoring_cows_rise_points: int | None = Field(default=None, ge=1, le=48)
    monitoring_escalation_days: int = Field(default=3, ge=2, le=30)
    monitoring_early_refill_days: int = Field(default=2, ge=1, le=60)
    monitoring_taper_stall_days: int = Field(default=3, ge=2, le=60)
    monitoring_craving_min_score: int = Field(default=3, ge=1, le=4)
    monitoring_craving_days: int = Field(default=2, ge=2, le=30)
    # A patient's SOWS total at or above this raises the crisis alert and shows the crisis resources
    # first. No validated SOWS cut-off exists: 48 of 64 (every statement "quite a bit" on average) is a
    # choice, not a clinical fact. Craving at its maximum and recorded suicidal ideation always count.
    monitoring_sows_crisis_total: int = Field(default=48, ge=1, le=64)

    @field_validator(
        "cds_allowed_issuers", "cds_audiences", "cds_fhir_servers", "cds_fhir_private_networks", "cds_cors_origins",
        mode="before",
    )
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                return tuple(json.loads(v))
            return tuple(p.strip() for p in v.split(",") if p.strip())
        return v

    @field_validator("cds_fhir_servers")
    @classmethod
    def _servers(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from withdrawal.service.cds.prefetch import parse_server

        for url in v:
            try:
                parse_server(url)
            except ValueError as exc:
                raise ValueError(f"cds_fhir_servers: {url[:100]!r}: {exc}") from exc
        return v

    @field_validator("cds_cors_origins")
    @classmethod
    def _origins(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for origin in v:
            parts = urlsplit(origin)
            local = parts.hostname in {"localhost", "127.0.0.1", "::1"}
            if (parts.scheme != "https" and not (parts.scheme == "http" and local)) or not parts.hostname \
                    or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
                raise ValueError(f"cds_cors_origins: {origin[:100]!r} is not an https origin (scheme://host[:port]; "
                                 "http only for localhost)")
        return tuple(o.rstrip("/") for o in v)

    @field_validator("cds_fhir_private_networks")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for net in v:
            try:
                ipaddress.ip_network(net)
            except ValueError as exc:
                raise ValueError(f"cds_fhir_private_networks: {net[:60]!r} is not a network (CIDR)") from exc
        return v

    @model_validator(mode="after")
    def _safe(self) -> Settings:
        problems = self.production_problems() if self.environment == "production" else []
        if problems:
            raise ValueError("production mode refuses to start: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """What production mode (``WITHDRAWAL_ENVIRONMENT=production``) would refuse in these settings."""
        problems = []
        if not self.cds_auth_required:
            problems.append("CDS Hooks authentication cannot be switched off (WITHDRAWAL_CDS_AUTH_REQUIRED)")
        if not (self.cds_jwks or self.cds_jwks_file):
            problems.append("set WITHDRAWAL_CDS_JWKS or WITHDRAWAL_CDS_JWKS_FILE (the EHRs' public keys)")
        else:
            try:
                keys = (self.jwks() or {}).get("keys", [])
            except (OSError, ValueError) as exc:
                problems.append(f"the CDS JWK Set cannot be read ({type(exc).__name__})")
            else:
                kinds = {k.get("kty") if isinstance(k, dict) else None for k in keys}
                if not keys or not kinds <= ASYMMETRIC_KTY:
                    problems.append("the CDS JWK Set must hold asymmetric keys only (kty RSA, EC or OKP)")
        if not self.cds_allowed_issuers:
            problems.append("set WITHDRAWAL_CDS_ALLOWED_ISSUERS")
        if not self.cds_audiences:
            problems.append("set WITHDRAWAL_CDS_AUDIENCES (otherwise 'aud' is checked against the Host header)")
        if not self.cds_fhir_servers:
            problems.append("set WITHDRAWAL_CDS_FHIR_SERVERS (the FHIR servers prefetch may be fetched from)")
        return problems

    def enforced(self) -> list[str]:
        """What production mode enforces, as printed at start-up."""
        return [
            "CDS Hooks JWTs: asymmetric keys only, signature, iss, aud "
            f"({', '.join(self.cds_audiences)}), exp at most {self.cds_jwt_max_ahead_s} s ahead, jti once",
            f"fhirServer fetches only from: {', '.join(self.cds_fhir_servers)}",
            "no --demo (demo accounts and data)",
            f"API documentation (/docs, /redoc, /openapi.json): {'on' if self.docs_enabled else 'off'}",
            "timestamps bounded, NUL and non-finite numbers refused, no patient data in application logs",
        ]

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'withdrawal.db'}"

    def jwks(self) -> dict[str, Any] | None:
        text = self.cds_jwks
        if text is None and self.cds_jwks_file is not None:
            text = self.cds_jwks_file.read_text(encoding="utf-8")
        if text is None:
            return None
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ValueError("CDS JWKS must be a JSON object with a 'keys' list")
        return data

    def thresholds(self) -> Thresholds:
        return Thresholds(
            cows_rise_points=self.monitoring_cows_rise_points,
            escalation_days=self.monitoring_escalation_days,
            early_refill_days=self.monitoring_early_refill_days,
            taper_stall_days=self.monitoring_taper_stall_days,
            craving_min_score=self.monitoring_craving_min_score,
            craving_days=self.monitoring_craving_days,
            sows_crisis_total=self.monitoring_sows_crisis_total,
        )
