"""Patient input (format version 1) and its resolution against the vocabulary.

The input is validated strictly: a bad value is refused with the field's path
and the allowed values. Names and codes that the knowledge base does not know
are not dropped: they are reported back under ``unrecognised`` so a clinician
sees what the screen could not take into account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from withdrawal.errors import InputError
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import ChildPugh, Phenotype, Setting, Sex, Substance

FORMAT_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpioidUse(_Strict):
    substance: Substance
    hours_since_last_use: float | None = Field(default=None, ge=0, le=24 * 365)


class MedicationIn(_Strict):
    name: str | None = Field(default=None, min_length=1)
    rxnorm: str | None = Field(default=None, pattern=r"^[0-9]+$")
    status: Literal["active", "stopped"] = "active"
    days_since_stopped: float | None = Field(default=None, ge=0)
    dose_mg_per_day: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _identified(self) -> MedicationIn:
        if not (self.name or self.rxnorm):
            raise ValueError("a medication needs a name or an rxnorm code")
        if self.status == "active" and self.days_since_stopped is not None:
            raise ValueError("days_since_stopped is only allowed when status is 'stopped'")
        return self

    @property
    def label(self) -> str:
        return self.name or f"rxnorm:{self.rxnorm}"


class PatientIn(_Strict):
    """One patient as the ``assess`` command and ``POST /assess`` read it."""

    version: Literal[1] = 1
    age_years: int = Field(ge=0, le=120)
    sex: Sex = "unknown"
    weight_kg: float | None = Field(default=None, gt=0, le=500)
    pregnant: bool = False
    breastfeeding: bool = False
    gestational_age_weeks: float | None = Field(default=None, ge=0, le=45)
    opioid: OpioidUse | None = None
    conditions: tuple[str, ...] = ()
    medications: tuple[MedicationIn, ...] = ()
    allergies: tuple[str, ...] = ()
    creatinine_clearance_ml_min: float | None = Field(default=None, ge=0, le=300)
    renal_measure: Literal["creatinine_clearance", "egfr"] | None = None
    """What ``creatinine_clearance_ml_min`` was read from (a FHIR record's more recent of a clearance and an
    eGFR); absent: a creatinine clearance. The answer names it."""
    child_pugh: ChildPugh | None = None
    cyp2d6_phenotype: Phenotype | None = None
    setting: Setting | None = None
    cows: dict[str, int] | None = None
    sows: dict[str, int] | None = None


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1]}[{p}]"] if parts else [f"[{p}]"]
        else:
            parts.append(p)
    return ".".join(parts) or "patient"


def parse_patient(raw: Any) -> PatientIn:
    """Validate raw JSON data; a wrapper ``{"patient": {...}}`` is accepted too."""
    if isinstance(raw, Mapping) and "patient" in raw and "age_years" not in raw:
        raw = raw["patient"]
    if not isinstance(raw, Mapping):
        raise InputError("patient", "must be a JSON object")
    try:
        return PatientIn.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = _field_path(tuple(err["loc"]))
        value = err.get("input")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        return _raise(path, msg, value)


def _raise(path: str, msg: str, value: object) -> PatientIn:
    shown = value if isinstance(value, str | int | float | bool) or value is None else "..."
    raise InputError(path, f"{msg} (got {shown!r})", value=value)


@dataclass(frozen=True)
class Patient:
    """A validated patient with names and codes resolved to knowledge-base ids."""

    data: PatientIn
    active_drugs: frozenset[str]
    stopped_drugs: Mapping[str, float]
    allergy_drugs: frozenset[str]
    conditions: frozenset[str]
    unrecognised: tuple[str, ...]
    matched: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unresolved: tuple[str, ...] = ()
    """What the screen could not take into account although it should: medications (active or
    stopped within the rules' longest washout), allergies and conditions inside the screen's scope."""
    out_of_scope: tuple[str, ...] = ()
    """Condition codes not recognised and outside every scope entry: listed, not screened."""

    @property
    def pregnant(self) -> bool:
        return self.data.pregnant or "pregnancy" in self.conditions

    @property
    def gestational_weeks(self) -> float | None:
        """Weeks of pregnancy: as given, else from an ICD-10-CM Z3A code, else unknown.

        Z3A.08-Z3A.42 state the week; Z3A.01 is "less than 8 weeks" (taken as 7), Z3A.49 "greater
        than 42" (taken as 43); Z3A.00 ("not specified") leaves it unknown. Of several codes the
        highest week counts (the stricter reading for rules that start at a week).
        """
        if self.data.gestational_age_weeks is not None:
            return self.data.gestational_age_weeks
        weeks = [w for c in self.data.conditions if (w := _z3a_weeks(c)) is not None]
        return max(weeks) if weeks else None

    def drugs_within(self, days: float | None) -> frozenset[str]:
        """Active drugs plus those stopped no more than ``days`` ago."""
        if days is None:
            return self.active_drugs
        recent = {d for d, ago in self.stopped_drugs.items() if ago <= days}
        return self.active_drugs | recent


def resolve(data: PatientIn, kb: KnowledgeBase) -> Patient:
    """Map names and codes onto the vocabulary, collecting what is not recognised."""
    unrecognised: list[str] = []
    unresolved: list[str] = []
    out_of_scope: list[str] = []
    matched: dict[str, tuple[str, ...]] = {}
    active: set[str] = set()
    stopped: dict[str, float] = {}
    for med in data.medications:
        found = kb.resolve_medication(med.rxnorm, med.name)
        recent = med.status == "active" or (med.days_since_stopped or 0.0) <= kb.washout_days
        if not found.drugs:
            unrecognised.append(med.label)
            if recent:
                unresolved.append(f"medication: {med.label}")
            continue
        matched[med.label] = found.drugs
        if found.unscreened and recent:
            unresolved.append(f"medication: {med.label} (not recognised: {' '.join(found.unscreened)})")
        for drug_id in found.drugs:
            if med.status == "active":
                active.add(drug_id)
            else:
                # NOTE: a stop date that is not given counts as today (the strict reading).
                ago = med.days_since_stopped or 0.0
                stopped[drug_id] = min(ago, stopped.get(drug_id, ago))
    allergy: set[str] = set()
    for name in data.allergies:
        found = kb.resolve_allergy(name)
        if found.drugs:
            allergy.update(found.drugs)
            matched[name] = found.drugs
            if found.unscreened:
                unresolved.append(f"allergy: {name} (not recognised: {' '.join(found.unscreened)})")
        else:
            unrecognised.append(name)
            unresolved.append(f"allergy: {name}")
    conditions: set[str] = set()
    for text in data.conditions:
        cond = kb.resolve_condition(text)
        if cond.key:
            conditions.add(cond.key)
        else:
            unrecognised.append(text)
            if cond.in_scope:
                # free text the vocabulary does not know may name anything: stricter when in doubt
                unresolved.append(f"condition: {text}")
            else:
                out_of_scope.append(text)
    return Patient(
        data=data,
        active_drugs=frozenset(active),
        stopped_drugs=stopped,
        allergy_drugs=frozenset(allergy),
        conditions=frozenset(conditions),
        unrecognised=tuple(unrecognised),
        matched=matched,
        unresolved=tuple(unresolved),
        out_of_scope=tuple(out_of_scope),
    )


_Z3A = re.compile(r"^Z3A\.?([0-9]{2})$")


def _z3a_weeks(code: str) -> float | None:
    m = _Z3A.match(code.strip().upper())
    if not m or m.group(1) == "00":
        return None
    n = int(m.group(1))
    return 7.0 if n == 1 else 43.0 if n == 49 else float(n)
