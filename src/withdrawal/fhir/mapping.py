"""FHIR R4 resources to the patient model (input format version 1).

Real exports are messy, so every resource is read defensively: anything that is
not a JSON object, has an unexpected shape or a status that excludes it is
skipped and listed (type, id and reason, never its content). Codes that the
knowledge base does not know are passed through as text, so the assessment
reports them under ``unrecognised`` instead of dropping them.

Every reading decision (statuses, codes, the order in which dates are tried, look-back
windows, units, tie-breaks) is a row of :data:`withdrawal.fhir.reading.TABLE`; the bulk screen's
SQL is generated from the same rows, and the code-level readers here (:func:`medication_identity`,
:func:`condition_entries`, :func:`allergy_entry`, :func:`daily_dose_mg`) are the ones the bulk
screen runs on the distinct values of an export.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, TypeGuard, get_args

from withdrawal.errors import InputError
from withdrawal.fhir import codes, reading
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Sex
from withdrawal.knowledge.population import DoseUnit
from withdrawal.patient import MedicationIn, PatientIn, parse_patient

JSON = Mapping[str, Any]

_MG = re.compile(r"(\d+(?:\.\d+)?)\s*MG(?![A-Za-z/])", re.IGNORECASE)
_PHENOTYPES = reading.phenotype_words()


@dataclass(frozen=True)
class Medication:
    """One medication read from FHIR, before it becomes a :class:`MedicationIn`."""

    name: str | None
    rxnorm: str | None
    status: str  # "active" or "stopped"
    days_since_stopped: float | None = None
    dose_mg_per_day: float | None = None
    resource_id: str | None = None
    identified: bool = True
    """False for a record with neither a code nor a name: ``name`` then says so (not screened)."""

    def to_input(self) -> MedicationIn:
        return MedicationIn(
            name=self.name,
            rxnorm=self.rxnorm,
            status="stopped" if self.status == "stopped" else "active",
            days_since_stopped=self.days_since_stopped if self.status == "stopped" else None,
            dose_mg_per_day=self.dose_mg_per_day,
        )


@dataclass(frozen=True)
class FhirPatient:
    """The patient read from FHIR, and what was left out and why."""

    patient: PatientIn
    skipped: tuple[str, ...] = ()
    medications: tuple[Medication, ...] = field(default=())


def is_fhir(raw: object) -> bool:
    """True for a FHIR resource (a Bundle included) or a list of them."""
    if isinstance(raw, Mapping):
        return isinstance(raw.get("resourceType"), str)
    if isinstance(raw, list) and raw:
        return all(isinstance(r, Mapping) and isinstance(r.get("resourceType"), str) for r in raw)
    return False


def resources_of(raw: object) -> list[JSON]:
    """Flatten a Bundle (nested Bundles too), a resource or a list into resources; an OperationOutcome
    (a failed search's answer, not the patient's record) is passed over (``reading.ALSO_READ``)."""
    out: list[JSON] = []

    def walk(node: object, depth: int) -> None:
        if depth > 4 or not _is_mapping(node):
            return
        if node.get("resourceType") == "Bundle":
            entries = node.get("entry")
            if isinstance(entries, list):
                for e in entries:
                    if _is_mapping(e):
                        walk(e.get("resource"), depth + 1)
            return
        rtype = node.get("resourceType")
        if isinstance(rtype, str) and rtype != "OperationOutcome":
            out.append(node)

    if isinstance(raw, list):
        for r in raw:
            walk(r, 0)
    else:
        walk(raw, 0)
    return out


def next_link(value: object) -> str | None:
    """The ``next`` page URL of a paginated Bundle (its first ``link`` of relation ``next``), if any: the one
    reading of a Bundle's paging, for the CDS prefetch and fetches and the SMART launch's searches."""
    if not _is_mapping(value) or value.get("resourceType") != "Bundle":
        return None
    for link in value.get("link") or []:
        if _is_mapping(link) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def pages_not_read(raw: object) -> list[str]:
    """The ``next`` pages (:func:`next_link`) of the Bundles in ``raw``, nested ones too, walked as
    :func:`resources_of` walks them: a Bundle given as it is with a further page holds part of the record."""
    out: list[str] = []

    def walk(node: object, depth: int) -> None:
        if depth > 4 or not _is_mapping(node) or node.get("resourceType") != "Bundle":
            return
        if (url := next_link(node)) is not None and url not in out:
            out.append(url)
        entries = node.get("entry")
        if isinstance(entries, list):
            for e in entries:
                if _is_mapping(e):
                    walk(e.get("resource"), depth + 1)

    for r in raw if isinstance(raw, list) else (raw,):
        walk(r, 0)
    return out


def medications_by_id(resources: Iterable[JSON]) -> dict[str, JSON]:
    """The Medication resources among ``resources`` by id (stripped): what a ``medicationReference``
    is resolved against, for the record (:func:`to_patient`) and the CDS draft orders alike."""
    return {rid: r for r in resources if r.get("resourceType") == "Medication" and (rid := _str(r.get("id")))}


# --- small readers --------------------------------------------------------------------


# NOTE: these readers run for every element of every resource (a Synthea record has thousands):
# a JSON object is a dict, checked first; the Mapping check (an ABC, several times slower) only
# for anything else.


def _is_mapping(v: object) -> TypeGuard[Mapping[str, Any]]:
    return type(v) is dict or isinstance(v, Mapping)


def _str(v: object) -> str | None:
    if isinstance(v, str):
        return v.strip() or None
    return None


def _codings(concept: object) -> list[JSON]:
    if not _is_mapping(concept):
        return []
    cs = concept.get("coding")
    return [c for c in cs if _is_mapping(c)] if isinstance(cs, list) else []


def codes_of(concept: object, systems: Iterable[str] | str) -> list[str]:
    """The codes of the codings of ``systems``; a coding's system is read through the reading table (an HL7
    OID of a system read, ``urn:oid:2.16.840.1.113883.6.96``, is that system: it was not read)."""
    system_of = reading.system_of
    if isinstance(systems, str):
        return [c for x in _codings(concept) if system_of(x.get("system")) == systems and (c := _str(x.get("code")))]
    wanted = set(systems)
    return [c for x in _codings(concept) if system_of(x.get("system")) in wanted and (c := _str(x.get("code")))]


def _codes_not_read(concept: object, systems: Iterable[str]) -> list[str]:
    """``system|code`` of each coding with a code in none of ``systems`` (no system: ``(no system)|code``)."""
    read = set(systems)
    return [f"{s or '(no system)'}|{c}" for x in _codings(concept)
            if (s := reading.system_of(x.get("system"))) not in read and (c := _str(x.get("code")))]


def _text(concept: object) -> str | None:
    if not _is_mapping(concept):
        return None
    t = _str(concept.get("text"))
    if t:
        return t
    for c in _codings(concept):
        if d := _str(c.get("display")):
            return d
    return None


def _status_code(concept: object) -> str | None:
    """A status given as a CodeableConcept (R4) or a bare code."""
    if isinstance(concept, str):
        return concept.strip().lower() or None
    for c in _codings(concept):
        if code := _str(c.get("code")):
            return code.lower()
    return None


def parse_date(value: object) -> date | None:
    """A FHIR date or dateTime (partial dates allowed) as a date; None if unreadable."""
    s = _str(value)
    if not s:
        return None
    try:
        if len(s) == 4:
            return date(int(s), 1, 1)
        if len(s) == 7:
            return date(int(s[:4]), int(s[5:7]), 1)
        if len(s) >= 10:
            # the calendar date as written (no time-zone shift), as the bulk SQL reads it
            return date.fromisoformat(s[:10])
        return None
    except ValueError:
        return None


_OFFSET_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T(\d{2}):(\d{2})[^Z+-]*(?:Z|([+-])(\d{2}):(\d{2}))")


def utc_shift(value: object) -> int | None:
    """Days (-1, 0 or 1) from a dateTime's date as written to its UTC date, by its time and offset
    (``2026-06-02T08:00:00+10:00``: -1); None for a date, or a dateTime without a readable time and offset
    (it cannot say its time zone). The bulk SQL reads it with the same arithmetic (``staging.utc_shift_sql``)."""
    s = _str(value)
    m = _OFFSET_TIME.fullmatch(s) if s and len(s) > 10 else None
    if m is None:
        return None
    hh, mm, sign, oh, om = m.groups()
    minutes = int(hh) * 60 + int(mm) - (0 if sign is None else (1 if sign == "+" else -1) * (int(oh) * 60 + int(om)))
    return minutes // 1440


def age_on(birth: date, as_of: date) -> int:
    """Completed years between a birth date and ``as_of``."""
    return as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))


def birth_dates(value: object) -> tuple[date, date] | None:
    """The first and last day a birthDate allows (``2013``: 1 January to 31 December; ``2013-05``: the
    month; a full date: that day), by the reading table's ``Patient | birthDate`` rows; None if unreadable."""
    first = parse_date(value)
    if first is None:
        return None
    s = _str(value) or ""
    precision = "year" if len(s) == 4 else "year-month" if len(s) == 7 else "date"
    if reading.reading_of("Patient", "birthDate", precision) != "last day":
        return first, first
    last = date(first.year, 12, 31) if precision == "year" else \
        date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])
    return first, last


def ages_on(value: object, as_of: date) -> tuple[int, int] | None:
    """(youngest, oldest) age a birthDate allows on ``as_of``: the youngest from the last day it allows (a
    day after ``as_of``: born on it), the oldest from the first; None when unreadable or not born by then."""
    dates = birth_dates(value)
    if dates is None or dates[0] > as_of:
        return None
    return age_on(min(dates[1], as_of), as_of), age_on(dates[0], as_of)


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if f == f and abs(f) < 1e9 else None


HISTORY = re.compile(r"/_history/[^/]*$")
"""The version part of a versioned reference (``Patient/p1/_history/4``): not part of the id. The bulk SQL
strips it with the same pattern (``population.staging.ref_id``)."""


def reference_id(reference: object, resource_type: str | None = None) -> str | None:
    """The id a reference string names (stripped): relative (``Patient/p1``), absolute
    (``https://host/fhir/Patient/p1``), versioned (``Patient/p1/_history/4``, either of them),
    ``urn:uuid:p1``, contained (``#p1``) or a bare id. With ``resource_type``, a relative or absolute
    reference to another type names None."""
    r = _str(reference)
    if not r:
        return None
    if "/" not in r:
        return r.removeprefix("urn:uuid:").removeprefix("#") or None
    # NOTE: the id of a versioned reference is before its /_history/ part (the version was read as the id,
    # and the patient's own MAOI order was skipped as another patient's)
    head, _, rid = HISTORY.sub("", r).rpartition("/")
    if resource_type is not None and head.rsplit("/", 1)[-1] != resource_type:
        return None
    return rid or None


def _ref_id(ref: object) -> str | None:
    """The id a Reference (``{"reference": ...}``) names: :func:`reference_id`."""
    return reference_id(ref.get("reference")) if _is_mapping(ref) else None


def _label(res: JSON) -> str:
    rid = _str(res.get("id")) or "?"
    return f"{res.get('resourceType')}/{rid[:64]}"


# --- medications ----------------------------------------------------------------------


def strengths_mg(display: str, kb: KnowledgeBase) -> dict[str, float]:
    """Per-ingredient strength from an RxNorm SCD/SBD name (``A 325 MG / B 5 MG Oral Tablet``)."""
    return dict(kb.memoized("strengths", display, lambda d: _strengths(d, kb)))


def _strengths(display: str, kb: KnowledgeBase) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in display.split(" / "):
        m = _MG.search(part)
        if not m:
            continue
        ids = kb.resolve_drug_name(part[: m.start()] or part)
        if len(ids) == 1:
            out[ids[0]] = float(m.group(1))
    return out


_RATE_UNIT: DoseUnit = "mcg_per_h"
"""The knowledge base's dose unit (``mme.yaml`` ``dose_units``) of the reading table's ``rate`` units."""


def daily_dose_mg(dosages: object, strength_mg: float | None, kb: KnowledgeBase) -> float | None:
    """Most a dosage instruction allows per day, in mg; None when it cannot be read.

    Units, dose forms and periods are the rows of ``fhir.reading`` (``Dosage``); a rate (a patch's
    mcg/h) becomes mg/day by the knowledge base's conversion of its unit."""
    if not isinstance(dosages, list):
        return None
    total = 0.0
    for d in dosages:
        if not isinstance(d, Mapping):
            return None
        dose = _dose_mg(d, strength_mg, kb)
        if dose is None:
            return None
        mg, is_rate = dose
        if is_rate:
            total += mg
            continue
        per_day = _times_per_day(d.get("timing"))
        if per_day is None:
            return None
        total += mg * per_day
    return round(total, 3) if total > 0 else None


def _dose_mg(d: JSON, strength_mg: float | None, kb: KnowledgeBase) -> tuple[float, bool] | None:
    """(mg per dose, False) or (mg per day, True) for a rate; None when unreadable."""
    rates = d.get("doseAndRate")
    if not isinstance(rates, list) or not rates or not isinstance(rates[0], Mapping):
        return None
    q = rates[0].get("doseQuantity")
    rng = rates[0].get("doseRange")
    if not isinstance(q, Mapping) and isinstance(rng, Mapping):
        q = rng.get("high")
    if not isinstance(q, Mapping):
        return None
    value = _number(q.get("value"))
    unit = (_str(q.get("code")) or _str(q.get("unit")) or "").lower()
    if value is None or value < 0:
        return None
    factor = reading.dose_unit_factor(unit)
    if factor is None:
        return None
    if factor == "rate":
        return kb.mme.dose_unit(_RATE_UNIT).to_mg_per_day(value), True
    if factor == "strength":
        return (value * strength_mg, False) if strength_mg is not None else None
    return value * float(factor), False


def _times_per_day(timing: object) -> float | None:
    if not isinstance(timing, Mapping):
        return None
    rep = timing.get("repeat")
    if not isinstance(rep, Mapping):
        return None
    freq = _number(rep.get("frequencyMax")) or _number(rep.get("frequency")) or 1.0
    # every distinct time of day listed (when: MORN, NIGHT ...; timeOfDay: 08:00 ...) is a dose
    times = (set(v) if isinstance(v := rep.get(k), list) and all(isinstance(x, str) for x in v) else set()
             for k in reading.values("Dosage", "times of day"))
    freq = max(freq, *(float(len(t)) for t in times))
    period = _number(rep.get("period"))
    unit = _str(rep.get("periodUnit"))
    factor = reading.per_day(unit) if unit else None
    if not period or period <= 0 or factor is None:
        return None
    return freq * factor / period


@dataclass(frozen=True)
class MedIdentity:
    """What a medication's codes and text name: the code that wins, its drugs, strength, product key."""

    rxnorm: str | None
    name: str | None
    drugs: tuple[str, ...]
    strength_mg: float | None
    product: str


def medication_identity(rx_codes: Sequence[str], text: str | None, kb: KnowledgeBase) -> MedIdentity | None:
    """The first RxNorm code the knowledge base knows wins, else the first numeric one; the text
    resolves when no code is known. None when there is neither a code nor a text."""
    known = next((c for c in rx_codes if c in kb.drug_rxcui), None)
    rxnorm = known or (rx_codes[0] if rx_codes and rx_codes[0].isascii() and rx_codes[0].isdigit() else None)
    if not (text or rxnorm):
        return None
    ids = (kb.drug_rxcui[known],) if known else (kb.resolve_drug_name(text) if text else ())
    strengths = strengths_mg(text, kb) if text else {}
    strength = strengths.get("tramadol") if "tramadol" in ids else (strengths.get(ids[0]) if len(ids) == 1 else None)
    product = f"{rxnorm or ''}|{text.lower() if text else ''}"
    return MedIdentity(rxnorm, text, ids, strength, product)


def concept_identity(concept: object, kb: KnowledgeBase) -> MedIdentity | None:
    """The identity a medication's CodeableConcept names: its RxNorm codes and its text."""
    return medication_identity(codes_of(concept, codes.RXNORM), _text(concept), kb)


def _medication_concept(res: JSON, contained: Mapping[str, JSON]) -> object:
    concept = res.get("medicationCodeableConcept")
    if concept is None:
        med = contained.get(_ref_id(res.get("medicationReference")) or "")
        concept = med.get("code") if med else None
        if concept is None and isinstance(res.get("medicationReference"), Mapping):
            concept = {"text": _str(res["medicationReference"].get("display"))}
    return concept


def release_form(text: str | None) -> str:
    """``extended`` when the product's name carries a word of the table's release-form rows, else ``immediate``."""
    low = " " + re.sub(r"[^a-z0-9]+", " ", (text or "").lower()) + " "
    words = reading.values("Medication", "release form", "extended")
    return "extended" if any(f" {w.lower()} " in low for w in words) else "immediate"


def med_state(rtype: str, status: str | None, intent: str | None, end: date | None, as_of: date) -> str:
    """``active``, ``stopped`` or ``ignored`` by the table's status rows; an active record whose end
    date is on or before ``as_of`` is stopped."""
    state = reading.med_status(rtype, status)
    if state == "stopped" and rtype == "MedicationRequest" and intent in reading.values(
            "MedicationRequest", "intent", "ignored when stopped"):
        return "ignored"
    if state == "active" and end is not None and end <= as_of:
        return "stopped"
    return state


def _first_dated(res: JSON, paths: Sequence[str]) -> tuple[date, object] | None:
    """The first of ``paths`` (the table's order) with a date: (its date as written, the value as written)."""
    for path in paths:
        node: object = res
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if (d := parse_date(node)) is not None:
            return d, node
    return None


def _first_date(res: JSON, paths: Sequence[str]) -> date | None:
    got = _first_dated(res, paths)
    return got[0] if got is not None else None


_LATE_DATE = int(reading.number(reading.DATES, "after as-of", "date"))
_LATE_OFFSET = int(reading.number(reading.DATES, "after as-of", "dateTime with offset"))
_DATED_BY = frozenset({("MedicationRequest", "start date"), ("MedicationStatement", "start date"),
                       ("Condition", "onset"), ("Procedure", "performed"), ("Observation", "date")})
# NOTE: checked once, at import: a missing row fails loudly here, not as every resource "unreadable"
for _resource, _element in _DATED_BY:
    if reading.reading_of(_resource, "after as-of", _element) != reading.AFTER_AS_OF:
        raise LookupError(f"the reading table has no '{_resource}|after as-of|{_element}' row")


def late_days(value: object) -> int:
    """How many days after the as-of date a date as written may be and still count as on or before it (the
    reading table's ``(every date) | after as-of`` rows, the one rule of every such check): a date (no time
    zone) one day, a dateTime with an offset none, after its shift to UTC (:func:`utc_shift`). The bulk SQL
    stages it beside each date (``staging.late_sql``)."""
    shift = utc_shift(value)
    return _LATE_DATE if shift is None else _LATE_OFFSET - shift


def by_as_of(dated: tuple[date, object], as_of: date) -> bool:
    """Whether a date (its date as written, the value as written) is on or before ``as_of`` by :func:`late_days`.

    NOTE: the as-of date is a UTC date, and an EHR ahead of UTC writes today's local date (tomorrow in UTC):
    an MAOI ordered, a pregnancy test or a seizure recorded this morning in Sydney was read as not yet."""
    return (dated[0] - as_of).days <= late_days(dated[1])


def dated_by(res: JSON, resource: str, element: str, as_of: date) -> tuple[date, object] | None | Literal[False]:
    """The first date of ``resource``'s ``element`` rows: (date, value) when it is on or before ``as_of`` by
    the 'after as-of' rule, False when it is after it, None when there is none."""
    assert (resource, element) in _DATED_BY, (resource, element)
    got = _first_dated(res, reading.values(resource, element))
    if got is None:
        return None
    return got if by_as_of(got, as_of) else False


def abated(res: JSON, as_of: date) -> bool:
    """Whether a Condition abated on or before ``as_of``, both as written and by its UTC date (the table's
    ``Condition | after as-of | abatement`` row: the exact reading never drops a condition earlier)."""
    got = _first_dated(res, reading.values("Condition", "abatement"))
    return got is not None and (got[0] - as_of).days <= min(0, late_days(got[1]))


def started(res: JSON, rtype: str, as_of: date) -> bool:
    """Whether a medication record has started by ``as_of``: its first start date (the table's order) is
    none, or on or before it by the 'after as-of' rule (:func:`by_as_of`)."""
    return dated_by(res, rtype, "start date", as_of) is not False


def _contained(res: JSON) -> list[object]:
    """The contained resources (a ``contained`` that is not a list holds none, as the bulk screen reads it)."""
    got = res.get("contained")
    return got if isinstance(got, list) else []


def unresolved_medication_references(resources: Sequence[JSON]) -> list[str]:
    """The ``medicationReference`` targets (as written) of medication records that neither a contained
    nor a listed Medication resolves: what a reader of a FHIR server fetches before mapping, since a
    search answers the orders without the Medications they point to."""
    listed = set(medications_by_id(resources))
    out: list[str] = []
    for res in resources:
        if res.get("resourceType") not in {"MedicationRequest", "MedicationStatement"}:
            continue
        ref = res.get("medicationReference")
        target = _str(ref.get("reference")) if isinstance(ref, Mapping) else None
        if res.get("medicationCodeableConcept") is not None or not target or target.startswith("#"):
            continue
        contained = {_str(c.get("id")) for c in _contained(res) if isinstance(c, Mapping)}
        rid = _ref_id(ref)
        if rid not in listed and rid not in contained and "Medication/" in target and target not in out:
            out.append(target)
    return out


def unidentified_medication(res: JSON) -> str:
    """How a medication record with neither a code nor a name is named among what was not screened."""
    ref = res.get("medicationReference")
    target = _str(ref.get("reference")) if isinstance(ref, Mapping) else None
    why = f"{target} not in the data" if target else "no code or name"
    return f"{res.get('resourceType')}/{_str(res.get('id')) or '?'}: medication not identified ({why})"[:200]


def read_medication(
    res: JSON, kb: KnowledgeBase, *, as_of: date, medications: Mapping[str, JSON] | None = None,
    order: bool = False,
) -> Medication | None:
    """A MedicationRequest or MedicationStatement as a medication, or None to skip it.

    ``order``: a draft order being placed now, read as the patient's from now on: its start and end
    dates are the prescription's to come, not its history (an order starting tomorrow is still screened)."""
    rtype = res.get("resourceType")
    if rtype not in {"MedicationRequest", "MedicationStatement"}:
        return None
    if not order and not started(res, rtype, as_of):
        return None
    end = None if order else _first_date(res, reading.values(rtype, "end date"))
    state = med_state(rtype, _status_code(res.get("status")), _str(res.get("intent")), end, as_of)
    if state == "ignored":
        return None
    contained: dict[str, JSON] = dict(medications or {})
    for c in _contained(res):
        if isinstance(c, Mapping) and (cid := _str(c.get("id"))):
            contained[cid] = c
    ago: float | None = None
    if state == "stopped":
        stop = _first_date(res, reading.values(rtype, "stop date"))
        ago = float(max((as_of - stop).days, 0)) if stop else None
    ident = concept_identity(_medication_concept(res, contained), kb)
    if ident is None:
        # NOTE: a medication that cannot be identified (a reference to a Medication not in the data, an
        # empty concept) is never dropped: it is named, and the patient model reads it as not screened.
        return Medication(name=unidentified_medication(res), rxnorm=None, status=state, days_since_stopped=ago,
                          resource_id=_str(res.get("id")), identified=False)
    dosage = res.get("dosageInstruction") if rtype == "MedicationRequest" else res.get("dosage")
    dose = daily_dose_mg(dosage, ident.strength_mg, kb)
    return Medication(
        name=ident.name,
        rxnorm=ident.rxnorm,
        status=state,
        days_since_stopped=ago,
        dose_mg_per_day=dose,
        resource_id=_str(res.get("id")),
    )


# --- the whole record -----------------------------------------------------------------


def condition_entries(icd: Sequence[str], sct: Sequence[str], text: str | None, kb: KnowledgeBase,
                      displays: Sequence[str] = (), not_read: Sequence[str] = (),
                      procedure: bool = False) -> tuple[str, ...]:
    """What one Condition adds to the patient's ``conditions``: the keys of every coding the knowledge
    base knows (else of its text); when none is known, one entry that the patient model reads as
    unresolved (a code in the screen's scope, a text or coding ``displays`` naming a screened condition
    by its words, free text, or with no text only codes of systems not read: ``not_read``, ``system|code``)
    or out of scope."""
    keys: list[str] = []
    for c in icd:
        if (key := kb.lookup_condition(c)) and key not in keys:
            keys.append(key)
    for c in sct:
        if (key := kb.condition_codes.get("SCT:" + c)) and key not in keys:
            keys.append(key)
    if keys:
        return tuple(keys)
    if text and (key := kb.lookup_condition(text)):
        return (key,)
    every = (*icd, *sct)
    if procedure:
        return _procedure_entries(icd, sct, displays, kb, not_read)
    if not every:
        if text:
            return (text[:200],)
        # NOTE: a code only of a system no row reads (ICD-9-CM, a local system), with no text or display, was
        # dropped silently and the screen came out clean: it is named as not screened (reading table row
        # 'Condition | unknown code | system not read, no text or display')
        return (f"code not read: {not_read[0]}"[:200],) if not_read else ()
    label = f"ICD-10-CM {icd[0]}" if icd else f"SNOMED {sct[0]}"
    # NOTE: an unknown code whose text names a screened condition ("Tonic-clonic epilepsy", SNOMED 352818000)
    # was listed as out of scope and the screen came out clean: it is named as unresolved, never mapped.
    named = next((t for t in (text, *displays) if t and kb.condition_named(t)), None)
    if named or any(kb.condition_in_scope(c) for c in every):
        return (f"{label}: {text or named}"[:200] if text or named else label,)  # not a bare code: unresolved
    return (every[0],)  # a bare code outside the scope: listed, not screened


def procedure_named(text: str, kb: KnowledgeBase) -> str | None:
    """The condition recorded by a procedure (one with ICD-10-PCS codes: tonsillectomy_recent) that ``text``
    names by its label or a synonym as whole words (:meth:`KnowledgeBase.conditions_named`: among every
    condition it names, so "Tonsillectomy for obstructive sleep apnea" is a tonsillectomy), or None."""
    return next((key for key in kb.conditions_named(text) if kb.conditions[key].icd10pcs), None)


def _procedure_entries(pcs: Sequence[str], sct: Sequence[str], texts: Sequence[str], kb: KnowledgeBase,
                       not_read: Sequence[str]) -> tuple[str, ...]:
    """What a Procedure none of whose codes the knowledge base knows adds to ``conditions``: a text or display
    naming a condition recorded by a procedure is named as not screened, never read as it (the table's row
    'Procedure | unknown code | text naming a screened condition'); else as before, by its codes only."""
    every = (*pcs, *sct)
    # NOTE: a Procedure whose code the knowledge base does not know (a CPT tonsillectomy code) was read by its
    # code only, and dropped silently when that code was of a system not read: a tonsillectomy in a child left
    # the screen clean. A text or display naming one is named as not screened.
    named = next((t for t in texts if procedure_named(t, kb)), None)
    if named:
        label = f"ICD-10-PCS {pcs[0]}" if pcs else f"SNOMED {sct[0]}" if sct else (not_read[0] if not_read else "")
        return (f"procedure not screened: {label + ': ' if label else ''}{named}"[:200],)
    if not every:
        return (f"code not read: {not_read[0]}"[:200],) if not_read and not texts else ()
    if any(kb.condition_in_scope(c) for c in every):
        return (f"ICD-10-PCS {pcs[0]}" if pcs else f"SNOMED {sct[0]}",)
    return (every[0],)


def concept_conditions(concept: object, kb: KnowledgeBase, *, procedure: bool = False) -> tuple[str, ...]:
    """What a Condition's code adds to ``conditions`` (its ICD-10-CM and SNOMED CT codings, else its text),
    or a Procedure's (its ICD-10-PCS and SNOMED CT codings; no text)."""
    displays = [d for c in _codings(concept) if (d := _str(c.get("display")))]
    if procedure:
        # a Procedure is read by its codes; its text and displays only name a condition recorded by a
        # procedure as not screened. One coded only in systems not read, with no text or display, is named
        # as not screened as a Condition is
        text = _str(concept.get("text")) if _is_mapping(concept) else None
        return condition_entries(codes_of(concept, codes.ICD10PCS), codes_of(concept, codes.SNOMED), None, kb,
                                 [t for t in (text, *displays) if t],
                                 _codes_not_read(concept, (*codes.ICD10PCS, codes.SNOMED)), procedure=True)
    return condition_entries(codes_of(concept, codes.ICD10CM), codes_of(concept, codes.SNOMED), _text(concept), kb,
                             displays, _codes_not_read(concept, (*codes.ICD10CM, codes.SNOMED)))


def _condition_entry(res: JSON, kb: KnowledgeBase, as_of: date) -> tuple[str, ...]:
    clinical = _status_code(res.get("clinicalStatus"))
    if clinical is not None and clinical not in reading.values("Condition", "clinicalStatus", "counted"):
        return ()
    if _status_code(res.get("verificationStatus")) in reading.values("Condition", "verificationStatus", "ignored"):
        return ()
    if dated_by(res, "Condition", "onset", as_of) is False or abated(res, as_of):
        return ()
    return concept_conditions(res.get("code"), kb)


def _procedure_entry(res: JSON, kb: KnowledgeBase, as_of: date) -> tuple[str, ...]:
    """A Procedure (a tonsillectomy, say) read as the condition its code names; codes only, no text."""
    if (_status_code(res.get("status")) or reading.ABSENT) not in reading.values("Procedure", "status", "counted"):
        return ()
    if dated_by(res, "Procedure", "performed", as_of) is False:
        return ()
    return concept_conditions(res.get("code"), kb, procedure=True)


def allergy_entry(rx_codes: Sequence[str], text: str | None, kb: KnowledgeBase,
                  other_codes: Sequence[str] = ()) -> str | None:
    """A known RxNorm code names the drug, else the text does; with neither, the first code names the
    allergy (``rxnorm:835603``, ``system|code`` for another system), which no drug name resolves."""
    for c in rx_codes:
        if c in kb.drug_rxcui:
            return kb.drugs[kb.drug_rxcui[c]].name
    if text:
        return text
    # NOTE: a coded allergy the knowledge base cannot read (a tramadol product's RxNorm code, a SNOMED CT
    # substance, without a display) is never dropped: it is named, and the patient model reads it as not
    # screened, as an unknown medication code is.
    if rx_codes:
        return f"rxnorm:{rx_codes[0]}"
    return other_codes[0] if other_codes else None


def concept_allergy(concept: object, kb: KnowledgeBase) -> str | None:
    """The allergy an AllergyIntolerance's code names: a known RxNorm coding, else the text, else its
    first code (named as not screened)."""
    other = [f"{system}|{code}" if (system := _str(reading.system_of(c.get("system")))) else code
             for c in _codings(concept) if reading.system_of(c.get("system")) != codes.RXNORM
             and (code := _str(c.get("code")))]
    return allergy_entry(codes_of(concept, codes.RXNORM), _text(concept), kb, other)


def allergy_counted(category: object) -> bool:
    """Whether an AllergyIntolerance of this ``category`` is read (the table's category rows): a category
    counted, or none that can be read. Each item is a code, or (an EHR error) a CodeableConcept or Coding,
    whose codes are read; an item that is neither is not read. The bulk screen runs it on the distinct
    categories (``population.facts.category_map``)."""
    if not isinstance(category, list):
        return True
    got: set[str] = set()
    for item in category:
        if isinstance(item, str):
            got.add(item)
        elif _is_mapping(item):
            # NOTE: a category written as a CodeableConcept (or a bare Coding) is read by its codes; it made
            # the resource unreadable and dropped a tramadol allergy
            got.update(c for x in (*_codings(item), item) if (c := _str(x.get("code"))))
    return not got or bool(got & set(reading.values("AllergyIntolerance", "category", "counted")))


def _allergy_entry(res: JSON, kb: KnowledgeBase) -> str | None:
    a = "AllergyIntolerance"
    if _status_code(res.get("clinicalStatus")) in reading.values(a, "clinicalStatus", "ignored"):
        return None
    if _status_code(res.get("verificationStatus")) in reading.values(a, "verificationStatus", "ignored"):
        return None
    if not allergy_counted(res.get("category")):
        return None
    return concept_allergy(res.get("code"), kb)


def phenotype_of(text: str | None) -> str | None:
    """The first phenotype of the table whose word appears in the value's text."""
    low = (text or "").lower()
    for key, words in _PHENOTYPES:
        if any(w in low for w in words):
            return key
    return None


def _phenotype(res: JSON) -> str | None:
    value = res.get("valueCodeableConcept")
    return phenotype_of(_text(value) or _str(res.get("valueString")))


def _names(text: str | None, kind: str) -> bool:
    """Whether ``text`` names ``kind`` by one of its words (the reading table's "code text naming" rows)."""
    low = (text or "").lower()
    return any(w in low for w in reading.named_words(kind))


def is_cyp2d6(res: JSON) -> bool:
    """Whether a result of the cyp2d6 kind is CYP2D6's (a 53040-2 result may be of another gene)."""
    concept = res.get("code")
    loinc = set(codes_of(concept, codes.LOINC))
    if codes.CYP2D6_OWN in loinc:
        return True
    if loinc & codes.CYP2D6_PHENOTYPE:
        return _names(component_text(res.get("component")) + " " + (_text(concept) or ""), "cyp2d6")
    return _names(_text(concept), "cyp2d6")


def component_text(components: object) -> str:
    """The codes, displays and texts of the components' coded values (where a gene symbol is named)."""
    out: list[str] = []
    if isinstance(components, list):
        for comp in components[:50]:
            value = comp.get("valueCodeableConcept") if isinstance(comp, Mapping) else None
            if isinstance(value, Mapping):
                out.extend(t for t in (_str(value.get("text")),) if t)
                for c in _codings(value):
                    out.extend(t for t in (_str(c.get("code")), _str(c.get("display"))) if t)
    return " ".join(out)


def _pick_patient(resources: Sequence[JSON], patient_id: str | None) -> JSON | None:
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if patient_id is not None:
        for p in patients:
            if _str(p.get("id")) == patient_id:
                return p
        raise InputError("patient_id", "no Patient resource with this id in the data", value=patient_id)
    if len(patients) > 1:
        raise InputError(
            "Bundle",
            "holds more than one Patient; say which one",
            allowed=[_str(p.get("id")) for p in patients],
        )
    return patients[0] if patients else None


def to_patient(
    raw: object,
    kb: KnowledgeBase,
    *,
    as_of: date,
    patient_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> FhirPatient:
    """Map a FHIR Bundle, resource or resource list onto the patient model.

    ``as_of`` is the date ages and days since stopping are counted to (domain code
    reads no clock). ``extra`` adds or overrides input fields FHIR does not carry
    (``opioid``, ``cows``, ``setting`` ...). Raises :class:`InputError` when no age can
    be had or the data hold several patients and none is chosen.
    """
    resources = resources_of(raw)
    if not resources:
        raise InputError("resourceType", "no FHIR resources found")
    chosen = _pick_patient(resources, patient_id)
    pid = _str(chosen.get("id")) if chosen else None
    skipped: list[str] = []
    fields: dict[str, Any] = {}
    conditions: list[str] = []
    if chosen is not None:
        ages = ages_on(chosen.get("birthDate"), as_of)
        if ages is not None:
            # NOTE: a partial birth date reads as the youngest age it allows (an 11-year-old born in 2013 was
            # read as 12: the under-12 contraindication missed); an age it leaves open is named as not screened.
            fields["age_years"] = min(ages[0], 120)
            if ages[0] != ages[1] and not (extra and "age_years" in extra):
                conditions.append(f"Patient.birthDate {_str(chosen.get('birthDate'))}: age {ages[0]} or {ages[1]}")
        gender = _str(chosen.get("gender"))
        if gender in get_args(Sex):
            fields["sex"] = gender
    medications = medications_by_id(resources)
    meds: list[Medication] = []
    allergies: list[str] = []
    latest: dict[str, tuple[tuple[int, float], Any]] = {}
    unread_at: dict[str, tuple[int, str]] = {}

    def unread(kind: str, days: int, label: str) -> None:
        # the most recent result of a kind whose value cannot be read (the first listed on the same day)
        if kind not in unread_at or days < unread_at[kind][0]:
            unread_at[kind] = (days, label)

    def keep(kind: str, days: int, tie: float, value: Any) -> None:
        # The latest observation counts; on the same day the table's tie-break (a "yes", the lower
        # clearance, the first phenotype) wins, as in the bulk screen.
        prev = latest.get(kind)
        if prev is None or (days, tie) < prev[0]:
            latest[kind] = ((days, tie), value)

    for res in resources:
        rtype = res.get("resourceType")
        if rtype in {"Patient", "Medication"}:
            continue
        subject = _ref_id(res.get("subject")) or _ref_id(res.get("patient"))
        if pid and subject and subject != pid:
            skipped.append(f"{_label(res)}: another patient")
            continue
        try:
            if rtype in {"Condition", "Procedure"}:
                read = _condition_entry if rtype == "Condition" else _procedure_entry
                for entry in read(res, kb, as_of):
                    if entry not in conditions:
                        conditions.append(entry)
            elif rtype in {"MedicationRequest", "MedicationStatement"}:
                med = read_medication(res, kb, as_of=as_of, medications=medications)
                if med is not None:
                    meds.append(med)
            elif rtype == "AllergyIntolerance":
                if (a := _allergy_entry(res, kb)) and a not in allergies:
                    allergies.append(a)
            elif rtype == "Observation":
                _observation(res, keep, as_of, unread)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # NOTE: a malformed resource is skipped and named, never fatal; one of a type the screen reads is
            # also named as not screened (it was dropped silently: a tramadol allergy whose category was a
            # CodeableConcept left the screen clean)
            skipped.append(f"{_label(res)}: unreadable ({type(exc).__name__})")
            if rtype in reading.SCREENED_TYPES:
                conditions.append(not_read(res, f"unreadable ({type(exc).__name__})"))
    # NOTE: the renal value is the more recent of the latest clearance and the latest eGFR (the same day: the
    # lower; an undated one is older than any dated one); the clearance won whenever there was one, so a 2020
    # clearance of 90 beat this week's eGFR of 10 and the renal dose limit was missed.
    renal = renal_of(latest.get("crcl"), latest.get("egfr"))
    for kind, (days, label) in unread_at.items():
        # a result whose value cannot be read, not older than the latest one read of its kind (a clearance's
        # or an eGFR's: the renal value read): not screened
        seen = renal if kind in _RENAL else latest.get(_KEPT_AS[kind])
        if seen is None or days <= seen[0][0]:
            conditions.append(label)
    for kind, (_, value) in latest.items():
        if kind in _RENAL:
            continue
        fields[kind] = value
    if renal is not None:
        fields["creatinine_clearance_ml_min"] = min(max(float(renal[1]), reading.CRCL_MIN), reading.CRCL_MAX)
        fields["renal_measure"] = "creatinine_clearance" if renal is latest.get("crcl") else "egfr"
    # NOTE: a page of the record not read (a Bundle given as it is, with a next link nobody followed) is
    # never a clean screen: named as not screened, as the CDS service names a prefetch cut short.
    conditions.extend(f"record cut short: Bundle page not read ({url})"[:200] for url in pages_not_read(raw))
    fields["conditions"] = conditions
    fields["allergies"] = allergies
    # Validated MedicationIn instances: the patient model takes them as they are.
    fields["medications"] = [m.to_input() for m in _dedupe(meds)]
    if extra:
        if "creatinine_clearance_ml_min" in extra and "renal_measure" not in extra:
            fields.pop("renal_measure", None)  # a value given beside the record is not the record's measure
        fields.update(extra)
    if "age_years" not in fields:
        raise InputError("Patient.birthDate", "needed to compute age_years; none usable in the data")
    return FhirPatient(patient=parse_patient(fields), skipped=tuple(skipped), medications=tuple(meds))


_RENAL = frozenset(reading.values("Observation", "latest", "more recent"))
"""The kinds of result the renal value is read from (the reading table's ``Observation | latest`` row)."""


def renal_of(*latest: tuple[tuple[int, float], Any] | None) -> tuple[tuple[int, float], Any] | None:
    """The renal value: the more recent of the latest clearance and the latest eGFR ((days ago, value), value),
    the same day the lower (the table's ``same day, number`` row); None when neither is read."""
    return min((x for x in latest if x is not None), key=lambda x: x[0], default=None)


def _dedupe(meds: Sequence[Medication]) -> list[Medication]:
    """One entry per product and state: refills of the same order repeat in exports."""
    seen: dict[tuple[str | None, str | None, str], Medication] = {}
    for m in meds:
        key = (m.name.lower() if m.name else None, m.rxnorm, m.status)
        prev = seen.get(key)
        if prev is None:
            seen[key] = m
        elif m.status == "stopped":
            ago = [a for a in (prev.days_since_stopped, m.days_since_stopped) if a is not None]
            recent = min(ago) if len(ago) == 2 else None  # unknown end: strict (today)
            dose = max((d for d in (prev.dose_mg_per_day, m.dose_mg_per_day) if d is not None), default=None)
            seen[key] = Medication(m.name, m.rxnorm, "stopped", recent, dose, prev.resource_id)
        elif (m.dose_mg_per_day or 0) > (prev.dose_mg_per_day or 0):
            seen[key] = m
    return list(seen.values())


_USABLE = reading.values("Observation", "status", "usable")
_KIND_ORDER = reading.values("Observation", "code kind order")
_KIND_OF_CODE: dict[str, str] = {}
for _kind in _KIND_ORDER:
    for _code in reading.values("Observation", "code", _kind):
        _KIND_OF_CODE.setdefault(_code, _kind)
"""Code -> the first kind in the table's kind order whose rows list it (indexed once, not per Observation)."""
_NAMED_KINDS = tuple(k for k in _KIND_ORDER if reading.named_words(k))
"""The kinds an uncoded Observation is read as by the words of its code text, in the table's kind order."""


def observation_kind(loinc: Iterable[str], code_text: str | None) -> str | None:
    """The fact an Observation's LOINC codes are for, the first in the table's kind order."""
    kinds = [k for c in loinc if (k := _KIND_OF_CODE.get(c))]
    if kinds:
        return min(kinds, key=_KIND_ORDER.index)
    return next((k for k in _NAMED_KINDS if _names(code_text, k)), None)


def observation_answer(kind: str, value_concept: object, value_boolean: object) -> bool | None:
    """A pregnancy or breastfeeding status Observation's answer (None: unreadable, or another kind)."""
    o = "Observation"
    if kind == "pregnancy":
        answers = set(codes_of(value_concept, {codes.LOINC, codes.SNOMED}))
        if answers & set(reading.values(o, "pregnancy value", "yes")):
            return True
        if answers & set(reading.values(o, "pregnancy value", "no")):
            return False
    elif kind == "breastfeeding":
        # NOTE: tramadol is not recommended while breastfeeding (label 8.2): a recorded status is
        # read; "unknown" or an unreadable answer leaves the field unset, as it was.
        answers = set(codes_of(value_concept, codes.LOINC))
        if answers & set(reading.values(o, "breastfeeding value", "yes")) or value_boolean is True:
            return True
        if answers & set(reading.values(o, "breastfeeding value", "no")) or value_boolean is False:
            return False
    return None


def observation_coded(res: JSON) -> tuple[str | None, bool | None, str | None]:
    """What an Observation's codes and coded value say: its kind, a status answer, a CYP2D6 phenotype.

    The one reading of them: the per-patient mapper reads each Observation with it, and the bulk screen
    the export's distinct codes and values."""
    concept = res.get("code")
    kind = observation_kind(codes_of(concept, codes.LOINC), None) or observation_kind((), _text(concept))
    if kind is None:
        return None, None, None
    answer = observation_answer(kind, res.get("valueCodeableConcept"), res.get("valueBoolean"))
    phenotype = _phenotype(res) if kind == "cyp2d6" and is_cyp2d6(res) else None
    return kind, answer, phenotype


def weight_kg(value: float, quantity: object) -> float | None:
    """A body weight in kg by the table's unit rows (``valueQuantity.code``, else ``.unit``; absent: kg),
    to 10 g, or None for a unit not read or a weight outside its range (rounded first: the patient model's
    range holds for the weight it is given)."""
    unit = (_str(quantity.get("code")) or _str(quantity.get("unit")) or "").lower() if _is_mapping(quantity) else ""
    factor = reading.weight_kg_factor(unit)
    if factor is None:
        return None
    kg = round(value * factor, 2)
    return kg if reading.WEIGHT_MIN_KG < kg <= reading.WEIGHT_MAX_KG else None


_KEPT_AS = {"pregnancy": "pregnant", "breastfeeding": "breastfeeding", "crcl": "crcl", "egfr": "egfr",
            "cyp2d6": "cyp2d6_phenotype"}
"""The kinds of Observation a rule reads (weight is not), by the name their latest value is kept under."""


def not_read(res: JSON, why: str) -> str:
    """How a resource of the patient's that the screen could not read is named among what was not screened
    (the reading table's ``NOT_READ`` notes)."""
    return f"record not read: {_label(res)} ({why})"[:200]


def _observation(res: JSON, keep: Any, as_of: date, unread: Any) -> None:
    """An Observation of the patient's, kept by ``keep`` when it is the latest of its kind: its codes and
    coded value read by :func:`observation_coded`, the bulk screen's reading, then its date and number.
    One of a kind a rule reads whose value cannot be read is passed to ``unread`` (kind, days, label)."""
    if (_status_code(res.get("status")) or reading.ABSENT) not in _USABLE:
        return
    kind, answer, phenotype = observation_coded(res)
    if kind is None:
        return  # not a fact the table reads (most of a record: vital signs, labs): no date to parse
    dated = dated_by(res, "Observation", "date", as_of)
    if dated is False:
        return
    # one dated after the as-of date but read as on or before it (a date tomorrow: today in Sydney) is as
    # recent as the as-of date (the same day's tie-breaks, the stricter, apply)
    when = dated[0] if dated else None
    days = max((as_of - when).days, 0) if when is not None else reading.UNDATED_DAYS
    q = res.get("valueQuantity")
    value = _number(q.get("value")) if isinstance(q, Mapping) else None
    if kind == "pregnancy" and when is not None and days > reading.PREGNANCY_LOOKBACK_DAYS:
        return
    if kind in {"pregnancy", "breastfeeding"} and answer is not None:
        keep(_KEPT_AS[kind], days, 0 if answer else 1, answer)
    elif kind in {"crcl", "egfr"} and value is not None:
        keep(kind, days, value, value)
    elif kind == "weight" and value is not None and (kg := weight_kg(value, q)) is not None:
        keep("weight_kg", days, kg, kg)
    elif kind == "cyp2d6" and phenotype is not None:
        order = [p for p, _ in _PHENOTYPES]
        keep("cyp2d6_phenotype", days, order.index(phenotype), phenotype)
    elif kind in _KEPT_AS and (kind != "cyp2d6" or is_cyp2d6(res)):
        # NOTE: a result the screen reads whose value cannot be read (a valueString '<15' or 'positive', an
        # unknown answer, text only) was ignored: it is named as not screened unless a later one is read
        unread(kind, days, not_read(res, f"{kind} result: value not read"))
