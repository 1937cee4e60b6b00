"""How a FHIR R4 record becomes patient facts: one declarative table for every path.

The per-patient mapper (``fhir.mapping``: CLI, REST, CDS Hooks) and the bulk SQL
(``population.facts`` and the two engines' projections) both read their decisions from
:data:`TABLE`; the generator of synthetic exports draws from it and ``docs/fhir-reading.md`` is
rendered from it (:func:`markdown`), so none of them can drift from the others.

Each row is one decision: on ``resource``, the ``element`` with ``value`` reads as ``reading``.
Where the record is silent or ambiguous the stricter reading is taken (a draft or unknown order
counts as taken; a preliminary result counts; the lower of two same-day clearances counts), and
the reason is given in ``why``. Codes are terminology identifiers (``fhir.codes``); the few
numbers (look-back, plausible range) are marked with where they come from.

Orders matter: dates are tried in the order of their rows, phenotype words and units likewise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from withdrawal.fhir import codes

READING_VERSION = "2"
"""Bumped whenever a row's reading changes; the population summary names it."""


@dataclass(frozen=True)
class Row:
    resource: str
    element: str
    value: str
    reading: str
    why: str = ""

    @property
    def key(self) -> str:
        return f"{self.resource}|{self.element}|{self.value}"


_VS = "FHIR R4 value set"
TEXT_NAMING = "code text naming "
"""Prefix of an Observation ``code`` row whose value is a word, not a code: a code text (or a 53040-2
result's components) naming it reads as the row's kind (:func:`named_words`)."""
_STRICT = "stricter when in doubt"
DATES = "(every date)"
"""The resource of the rows of the one rule for a date after the as-of date (``after as-of``)."""
AFTER_AS_OF = "by the rule"
"""The reading of a row saying a date element is checked by the :data:`DATES` rows."""


def _rows() -> list[Row]:
    r: list[Row] = []

    def add(resource: str, element: str, values: Iterable[str], reading: str, why: str = "") -> None:
        r.extend(Row(resource, element, v, reading, why) for v in values)

    # --- every coding ----------------------------------------------------------------------
    for oid, system in codes.SYSTEM_OIDS.items():
        name, page = codes.SYSTEM_OID_SOURCES[oid]
        add("Coding", "system", (oid,), system,
            f"the HL7 OID of {name} ({page}): read as the system it names on every resource (Conditions, "
            "Procedures, medications, allergies, Observations)")

    # --- the patient -----------------------------------------------------------------------
    add("Patient", "birthDate", ("year", "year-month"), "last day",
        "a partial date is read as the last day it allows: the youngest the patient can be (" + _STRICT
        + ": one who may be 11 is not read as 12). Where the youngest and oldest ages it allows on the as-of "
        "date differ, the age is named as not screened ('Patient.birthDate 2013: age 11 or 12')")
    add("Patient", "birthDate", ("date",), "as written", "a full date (a dateTime: its date as written)")

    # --- dates after the as-of date ----------------------------------------------------------
    add(DATES, "after as-of", ("date",), "1",
        "days: a date (a date, or a dateTime with no readable time and offset: it cannot say its time zone) at "
        "most this many days after the as-of date counts as on or before it. The as-of date is a UTC date; an "
        "EHR ahead of UTC writes its local date, tomorrow in UTC (an MAOI ordered, a pregnancy test or a seizure "
        "recorded this morning in Sydney). One later is not yet part of the record (" + _STRICT + ")")
    add(DATES, "after as-of", ("dateTime with offset",), "0",
        "days: compared exactly, by its UTC date (its time less its offset: `2026-06-02T08:00:00+10:00` is "
        "2026-06-01 in UTC), on or before the as-of date")
    for res, element in (("MedicationRequest", "start date"), ("MedicationStatement", "start date"),
                         ("Condition", "onset"), ("Procedure", "performed"), ("Observation", "date")):
        add(res, "after as-of", (element,), AFTER_AS_OF,
            f"its {element} is on or before the as-of date by the '{DATES} | after as-of' rows")
    add("Condition", "after as-of", ("abatement",), "never earlier",
        "abated on or before the as-of date both as written and by its UTC date (the exact reading of a dateTime "
        "with an offset may only keep a condition, never drop one: " + _STRICT + ")")
    add("AllergyIntolerance", "after as-of", ("(no date read)",), "none",
        "no date of an allergy is read: a recorded allergy counts whenever it was recorded (" + _STRICT + ")")

    # --- medications ---------------------------------------------------------------------
    mr, ms = "MedicationRequest", "MedicationStatement"
    add(mr, "status", ("active", "on-hold"), "active", _VS + " medicationrequest-status")
    add(mr, "status", ("draft", "unknown", "(absent)"), "active",
        _STRICT + ": an order being written or of unknown state may be given (a draft MAOI is screened)")
    add(mr, "status", ("stopped", "completed"), "stopped", _VS + " medicationrequest-status")
    add(mr, "status", ("cancelled", "entered-in-error"), "ignored", "never given, or recorded by mistake")
    add(mr, "intent", ("proposal", "plan"), "ignored when stopped", "a stopped proposal was never an order")
    add(ms, "status", ("active", "on-hold"), "active", _VS + " medication-statement-status")
    add(ms, "status", ("intended", "unknown", "(absent)"), "active",
        _STRICT + ": the patient intends to take it or may be taking it")
    add(ms, "status", ("stopped", "completed"), "stopped", _VS + " medication-statement-status")
    add(ms, "status", ("not-taken", "entered-in-error"), "ignored", "not taken, or recorded by mistake")
    add(mr, "start date", ("authoredOn",), "",
        "a record that starts after the as-of date is not yet part of it (by the 'after as-of' rows)")
    add(ms, "start date", ("effectivePeriod.start", "effectiveDateTime"), "", "tried in this order; as for orders")
    add(mr, "end date", ("dispenseRequest.validityPeriod.end",), "",
        "an active order whose validity period ended on or before the as-of date can no longer be filled: "
        "stopped on that date, so the washout windows still count from it")
    add(ms, "end date", ("effectivePeriod.end",), "", "an active statement that ended: stopped on that date")
    add(mr, "stop date", ("dispenseRequest.validityPeriod.end",), "",
        "a stopped or completed order with none: stopped on the as-of date (" + _STRICT + ")")
    add(ms, "stop date", ("effectivePeriod.end", "effectiveDateTime"), "",
        "tried in this order; none: stopped on the as-of date (" + _STRICT + ")")
    add("Medication", "code", (codes.RXNORM,), "rxnorm",
        "the first RxNorm coding the knowledge base knows wins, else the first numeric one, else the text")
    add("Medication", "text", ("code.text", "code.coding.display"), "name",
        "tried in this order; the name resolves when no RxNorm code is known")
    add("Medication", "medication[x]", ("medicationCodeableConcept", "medicationReference (contained)",
                                        "medicationReference (Bundle / export)", "medicationReference.display"),
        "concept", "tried in this order")
    add("Medication", "release form", ("Extended Release", "24 HR", "ER", "XR"), "extended",
        "words of the product's name (RxNorm SCD: ``tramadol hydrochloride 100 MG 24 HR Extended Release Oral "
        "Tablet``); extended-release products have their own dose limits (per-patient order checks)")
    add("Medication", "duplicates", ("same product and state",), "one entry, highest dose",
        "refills of one order repeat in exports; a stopped duplicate keeps the most recent stop")
    # dose: units are per dose (mg factor), per hour (patches), or counts of the product's strength
    add("Dosage", "doseQuantity unit", ("mg",), "1")
    add("Dosage", "doseQuantity unit", ("g",), "1000")
    add("Dosage", "doseQuantity unit", ("ug", "mcg"), "0.001")
    add("Dosage", "doseQuantity unit", ("ug/h", "mcg/h", "[mcg]/h"), "rate",
        "a transdermal rate: mg/day by the knowledge base's mcg_per_h dose unit (mme.yaml), whatever the timing")
    add("Dosage", "doseQuantity unit", ("{tablet}", "{tbl}", "{pill}", "{capsule}", "tablet", "tablets", "tab",
                                        "capsule", "1", "(absent)"), "strength",
        "a count of units: value x the product's strength in mg, read from the RxNorm SCD/SBD text "
        "(``tramadol hydrochloride 50 MG Oral Tablet``); no strength, no dose")
    add("Dosage", "dose", ("doseQuantity", "doseRange.high"), "",
        "tried in this order; a range counts at its high end (" + _STRICT + ")")
    add("Dosage", "times per dose period", ("frequencyMax", "frequency", "(absent)"), "",
        "tried in this order (most allowed, " + _STRICT + "); absent: once")
    add("Dosage", "times of day", ("when", "timeOfDay"), "at least",
        "each distinct time of day listed is a dose: at least as many times per dose period (" + _STRICT + ")")
    add("Dosage", "periodUnit", ("s",), "86400")
    add("Dosage", "periodUnit", ("min",), "1440")
    add("Dosage", "periodUnit", ("h",), "24")
    add("Dosage", "periodUnit", ("d",), "1")
    add("Dosage", "periodUnit", ("wk",), "0.14285714285714285")
    add("Dosage", "periodUnit", ("mo",), "0.03333333333333333")
    add("Dosage", "periodUnit", ("a",), "0.0027397260273972603")
    add("Dosage", "instructions", ("every dosageInstruction",), "summed",
        "a dose that cannot be read in one instruction leaves the whole dose unknown")

    # --- conditions ------------------------------------------------------------------------
    c = "Condition"
    add(c, "clinicalStatus", ("active", "recurrence", "relapse", "(absent)"), "counted",
        _VS + " condition-clinical; absent: " + _STRICT)
    add(c, "clinicalStatus", ("inactive", "remission", "resolved"), "ignored", _VS + " condition-clinical")
    add(c, "verificationStatus", ("refuted", "entered-in-error"), "ignored",
        "any other status counts: a provisional seizure disorder still matters")
    add(c, "onset", ("onsetDateTime", "onsetPeriod.start"), "",
        "tried in this order; an onset after the as-of date (the 'after as-of' rows): not yet a condition")
    add(c, "abatement", ("abatementDateTime", "abatementPeriod.end"), "",
        "tried in this order; abated on or before the as-of date (the 'after as-of' row): not counted")
    add(c, "code", sorted(codes.ICD10CM), "icd10", "every coding counts (ICD-10-CM with parent codes, ICD-10-PCS)")
    add(c, "code", (codes.SNOMED,), "snomed", "every coding counts")
    add(c, "code", ("code.text", "code.coding.display"), "text",
        "plain words, when no coding is known; tried in this order")
    add(c, "unknown code", ("inside condition_scope", "free text only"), "unresolved",
        "the screen could not look at it: an incomplete screen, never a clean one")
    add(c, "unknown code", ("text naming a screened condition",), "unresolved",
        "outside condition_scope, but its text (or a coding's display) names a condition a rule reads by its "
        "label or a synonym as whole words ('Tonic-clonic epilepsy': epilepsy): named as not screened, never "
        "read as that condition (vocabulary snomed_screened_concepts; " + _STRICT + ")")
    add(c, "unknown code", ("outside condition_scope",), "out of scope", "listed, not screened")
    add(c, "unknown code", ("system not read, no text or display",), "unresolved",
        "coded only in a system no row reads (ICD-9-CM, a local system), with no code.text and no display: "
        "named as not screened ('code not read: http://hl7.org/fhir/sid/icd-9-cm|345.90'; " + _STRICT
        + "), never dropped; a Procedure's code likewise. With a text or display the text rows apply")

    p = "Procedure"
    add(p, "status", ("completed", "in-progress", "stopped", "on-hold", "unknown", "(absent)"), "counted",
        "FHIR R4 value set event-status; begun or of unknown state: " + _STRICT)
    add(p, "status", ("preparation", "not-done", "entered-in-error"), "ignored", "not performed, or in error")
    add(p, "performed", ("performedDateTime", "performedPeriod.start"), "",
        "tried in this order; performed after the as-of date (the 'after as-of' rows): not yet. No source says how "
        "recent a tonsillectomy must be for the label's warning: any recorded one counts (" + _STRICT + ")")
    add(p, "code", sorted(codes.ICD10PCS), "icd10pcs", "read as a condition (tonsillectomy: 0CTP, 0CTQ)")
    add(p, "code", (codes.SNOMED,), "snomed", "read as a condition (tonsillectomy: 173422009)")
    add(p, "unknown code", ("text naming a screened condition",), "unresolved",
        "a code the knowledge base does not know (a CPT code, a SNOMED CT code outside the vocabulary), or none, "
        "whose code.text or a coding's display names a condition the vocabulary records by a procedure (one with "
        "ICD-10-PCS codes: tonsillectomy_recent) by its label or a synonym as whole words ('Tonsillectomy'): named "
        "as not screened, never read as that condition (" + _STRICT + "). Any other text is not read "
        "('Appendectomy': as before, listed by its code or dropped)")

    # --- allergies -------------------------------------------------------------------------
    a = "AllergyIntolerance"
    add(a, "clinicalStatus", ("inactive", "resolved"), "ignored", _VS + " allergyintolerance-clinical")
    add(a, "clinicalStatus", ("active", "(absent)"), "counted", _VS + "; absent: " + _STRICT)
    add(a, "verificationStatus", ("refuted", "entered-in-error"), "ignored")
    add(a, "category", ("medication", "(absent)"), "counted", "other categories (food, environment) are not read")
    add(a, "code", (codes.RXNORM,), "rxnorm", "a known RxNorm code, else the text names the drug")

    # --- observations ----------------------------------------------------------------------
    o = "Observation"
    add(o, "status", ("final", "amended", "corrected", "(absent)"), "usable", _VS + " observation-status")
    add(o, "status", ("preliminary",), "usable", _STRICT + ": a preliminary positive result is acted on")
    add(o, "status", ("registered", "cancelled", "entered-in-error", "unknown"), "ignored",
        "no result yet, withdrawn or in error")
    add(o, "date", ("effectiveDateTime", "effectiveInstant", "effectivePeriod.end", "effectivePeriod.start",
                    "issued"), "",
        "tried in this order; after the as-of date (the 'after as-of' rows): ignored; one dated after it but "
        "read as on or before it is as recent as the as-of date; none: older than any dated one, and not "
        "held to a look-back")
    add(o, "code", sorted(codes.PREGNANCY_STATUS), "pregnancy",
        "pregnancy status: 82810-3 (IPS), 11449-6 (reported; the older code, same answers)")
    add(o, "code", sorted(codes.BREASTFEEDING_STATUS), "breastfeeding", "LOINC breastfeeding status")
    add(o, "code", sorted(codes.CREATININE_CLEARANCE), "crcl", "creatinine clearance, mL/min")
    add(o, "code", sorted(codes.EGFR), "egfr", "eGFR, read as the clearance when it is the more recent "
        "(the 'latest' row for crcl, egfr)")
    add(o, "code", sorted(codes.CYP2D6_PHENOTYPE), "cyp2d6",
        "79714-9 is CYP2D6's own; 53040-2 counts when CYP2D6 is named in its code text or components")
    add(o, "code", (TEXT_NAMING + codes.CYP2D6_GENE,), "cyp2d6", "an uncoded CYP2D6 result, read by its value's words")
    add(o, "code kind order", ("pregnancy", "breastfeeding", "crcl", "egfr", "weight", "cyp2d6"), "",
        "an Observation coded for several facts is read as the first")
    add(o, "code", sorted(codes.BODY_WEIGHT), "weight", "per-patient only (no rule reads it)")
    add(o, "weight unit", ("kg", "(absent)"), "1",
        "kg per unit of valueQuantity.code, else .unit (lower case); absent: kg, the patient model's unit. "
        "Another unit: the weight is not read")
    add(o, "weight unit", ("g",), "0.001", "UCUM gram")
    add(o, "weight unit", ("[lb_av]", "lb", "lbs"), "0.45359237", "the avoirdupois pound (UCUM [lb_av])")
    add(o, "weight range", ("lowest",), "0",
        "in kg, after the unit: a weight at or below it is not read (the patient model's range)")
    add(o, "weight range", ("highest",), "500", "in kg, after the unit: a weight above it is not read")
    add(o, "pregnancy value", sorted(codes.PREGNANT_ANSWERS), "yes")
    add(o, "pregnancy value", sorted(codes.NOT_PREGNANT_ANSWERS), "no")
    add(o, "breastfeeding value", (*sorted(codes.BREASTFEEDING_ANSWERS), "valueBoolean true"), "yes")
    add(o, "breastfeeding value", (*sorted(codes.NOT_BREASTFEEDING_ANSWERS), "valueBoolean false"), "no")
    add(o, "look-back days", ("pregnancy",), "280",
        "a pregnancy status older than a full-term pregnancy (40 weeks) no longer says she is pregnant "
        "(design choice; from_memory)")
    add(o, "latest", ("same day, yes/no",), "yes wins", _STRICT)
    add(o, "latest", ("same day, number",), "lowest wins", _STRICT + " (the lower clearance)")
    add(o, "latest", ("crcl", "egfr"), "more recent",
        "the renal value (creatinine_clearance_ml_min, which the dose-limit rules read) is the more recent of the "
        "latest clearance and the latest eGFR, by the dates above: an old clearance never hides a recent eGFR. "
        "The same day: the lower (" + _STRICT + "); an undated one is older than any dated one. A result of either "
        "whose value cannot be read is named unless the value read is more recent")
    add(o, "latest", ("same day, phenotype",), "first in the phenotype order", _STRICT)
    add(o, "clearance range", ("lowest",), "0", "clamped to the patient model's range (mL/min)")
    add(o, "clearance range", ("highest",), "300", "clamped to the patient model's range (mL/min)")
    add(o, "phenotype value", ("valueCodeableConcept.text", "valueCodeableConcept.coding.display",
                               "valueString"), "", "tried in this order")
    add(o, "phenotype word", ("ultrarapid", "ultra-rapid", "ultra rapid"), "ultrarapid")
    add(o, "phenotype word", ("poor",), "poor")
    add(o, "phenotype word", ("intermediate",), "intermediate")
    add(o, "phenotype word", ("normal", "extensive"), "normal")
    return r


TABLE: tuple[Row, ...] = tuple(_rows())


@cache
def values(resource: str, element: str, reading: str | None = None) -> tuple[str, ...]:
    """The values of the rows for ``resource``/``element`` (with that ``reading``), in table order.

    Cached: the table is fixed, and the mapper asks for the same rows for every resource it reads
    (a scan of the table per Observation was most of a CDS call on a Synthea-sized record)."""
    return tuple(r.value for r in TABLE if r.resource == resource and r.element == element
                 and (reading is None or r.reading == reading))


@cache
def named_words(kind: str | None = None) -> tuple[str, ...]:
    """The lower-case words whose appearance in an Observation's code text reads it as ``kind`` (any
    kind: None), from the table's ``code text naming`` rows: the one definition of what names CYP2D6."""
    return tuple(r.value.removeprefix(TEXT_NAMING).lower() for r in TABLE
                 if r.resource == "Observation" and r.element == "code" and r.value.startswith(TEXT_NAMING)
                 and (kind is None or r.reading == kind))


_READING: dict[tuple[str, str, str], str] = {}
for _r in TABLE:
    _READING.setdefault((_r.resource, _r.element, _r.value), _r.reading)


_SYSTEMS: dict[str, str] = {r.value: r.reading for r in TABLE if r.resource == "Coding" and r.element == "system"}


def system_of(system: object) -> object:
    """The system a coding's ``system`` names: an HL7 OID of a system read (the 'Coding | system' rows) as
    that system's URI, anything else as written. Every reader compares a coding's system through it."""
    return _SYSTEMS.get(system, system) if isinstance(system, str) else system


def reading_of(resource: str, element: str, value: str) -> str | None:
    """What a value reads as (the first row for it), or None; a dict look-up, the table indexed at import."""
    return _READING.get((resource, element, value))


def number(resource: str, element: str, value: str) -> float:
    got = reading_of(resource, element, value)
    if got is None:
        raise KeyError(f"{resource}|{element}|{value}")
    return float(got)


ABSENT = "(absent)"


def med_status(resource: str, status: str | None) -> str:
    """``active``, ``stopped`` or ``ignored`` for a medication status (absent included)."""
    got = reading_of(resource, "status", status or ABSENT)
    return got if got in {"active", "stopped"} else "ignored"


def dose_unit_factor(unit: str) -> str | None:
    """mg per unit as a number string, ``rate``, ``strength`` or None (unit not read)."""
    return reading_of("Dosage", "doseQuantity unit", unit or ABSENT)


def weight_kg_factor(unit: str) -> float | None:
    """kg per unit of a body weight (absent: kg), or None for a unit not read."""
    got = reading_of("Observation", "weight unit", unit or ABSENT)
    return float(got) if got is not None else None


def per_day(period_unit: str) -> float | None:
    got = reading_of("Dosage", "periodUnit", period_unit)
    return float(got) if got is not None else None


def phenotype_words() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(phenotype, words) in the table's order: the first phenotype whose word appears wins."""
    order: list[str] = []
    for r in TABLE:
        if r.element == "phenotype word" and r.reading not in order:
            order.append(r.reading)
    return tuple((p, values("Observation", "phenotype word", p)) for p in order)


PREGNANCY_LOOKBACK_DAYS = int(number("Observation", "look-back days", "pregnancy"))
CRCL_MIN = number("Observation", "clearance range", "lowest")
CRCL_MAX = number("Observation", "clearance range", "highest")
WEIGHT_MIN_KG = number("Observation", "weight range", "lowest")
WEIGHT_MAX_KG = number("Observation", "weight range", "highest")
UNDATED_DAYS = 10**6
"""Days ago of an observation with no date: older than any dated one, outside every look-back."""


# --- the elements read -------------------------------------------------------------------
# What a decoder must keep of a resource is what the rows read: the CDS service decodes a request's
# prefetch to these elements only (``fhir.decoding``), so the elements are derived from the rows here,
# never listed a second time.

_VALUES = "(values)"
_READS: dict[str, tuple[str, ...]] = {
    # element label -> the elements it reads; _VALUES: the rows' values are element paths.
    # A label not named here is itself the element (status, intent, code, clinicalStatus ...).
    "start date": (_VALUES,), "end date": (_VALUES,), "stop date": (_VALUES,), "text": (_VALUES,),
    "after as-of": (),
    "medication[x]": (_VALUES,), "onset": (_VALUES,), "abatement": (_VALUES,), "performed": (_VALUES,),
    "date": (_VALUES,), "phenotype value": (_VALUES,), "instructions": (_VALUES,),
    "pregnancy value": ("valueCodeableConcept",),
    "breastfeeding value": ("valueCodeableConcept", "valueBoolean"),
    "clearance range": ("valueQuantity",), "weight unit": ("valueQuantity",), "weight range": ("valueQuantity",),
    "release form": (), "duplicates": (), "unknown code": (), "code kind order": (), "look-back days": (),
    "latest": (), "phenotype word": (), "system": (),
}
_INSIDE = frozenset({"doseQuantity unit", "dose", "times per dose period", "times of day", "periodUnit"})
"""Labels read inside a Dosage (``dosageInstruction`` or ``dosage``, each kept whole)."""
_ON: dict[str, tuple[str, ...]] = {
    "medication[x]": ("MedicationRequest", "MedicationStatement"),
    "instructions": ("MedicationRequest",),
}
"""Labels whose rows (on Medication, Dosage) read an element of the resources that carry them."""

SCREENED_TYPES = ("Condition", "Procedure", "MedicationRequest", "MedicationStatement", "AllergyIntolerance",
                  "Observation")
"""The resource types the screen reads facts from: one of them that cannot be read is named as not screened."""

ALSO_READ: tuple[tuple[str, str, str], ...] = (
    ("(every resource)", "resourceType", "what the resource is; OperationOutcome is passed over"),
    ("(every resource)", "id", "names what was skipped; finds the Patient, Medications and contained ones"),
    ("(every resource)", "subject", "a resource of another patient is skipped"),
    ("(every resource)", "patient", "the same, where the subject is called so (AllergyIntolerance)"),
    ("Bundle", "entry", "every entry's resource, nested Bundles too"),
    ("Bundle", "link", "a `next` page is read on; a Bundle given as it is with one: the page is named as not "
                       "screened (the record is cut short)"),
    ("Patient", "gender", "sex"),
    ("MedicationRequest", "contained", "a contained Medication a medicationReference names"),
    ("MedicationStatement", "dosage", "its dosage instructions (the Dosage rows)"),
    ("Observation", "valueQuantity", "the number of a clearance, eGFR, weight or hours since the last opioid"),
    ("Observation", "valueInteger", "a scored COWS or SOWS total"),
    ("Observation", "component", "CYP2D6 named in a component; COWS/SOWS item scores; the opioid last used"),
    ("QuestionnaireResponse", "questionnaire", "COWS or SOWS"),
    ("QuestionnaireResponse", "status", "completed or amended responses are scored"),
    ("QuestionnaireResponse", "authored", "the latest counts"),
    ("QuestionnaireResponse", "item", "the item scores, the opioid last used and the hours since"),
)
"""Elements the readers read that no row above decides on (identity, references, the bedside scores)."""

NOT_READ: tuple[tuple[str, str, str], ...] = (
    (", ".join(SCREENED_TYPES), "a resource that cannot be read",
     "per patient (CLI, REST, CDS Hooks): skipped and named as not screened "
     "(`record not read: Type/id (unreadable (TypeError))`), so the screen is incomplete, never clean. The bulk "
     "screen cannot tell such a resource: its engines read each element into a fixed schema, where an element "
     "of another shape reads as empty (DuckDB; the rest of the resource is read) or its line is rejected and "
     "listed with the export's malformed lines (`malformed.csv`, Spark), not named with the patient"),
    ("AllergyIntolerance", "category",
     "each item a code, or (an EHR error) a CodeableConcept or Coding, read by its codes; an item that is "
     "neither is not read, and a category of which no item is read counts as absent; per patient and in bulk"),
    ("Observation", "a value not read",
     "a pregnancy, breastfeeding, creatinine clearance, eGFR or CYP2D6 result (usable, dated no later than "
     "the as-of date, a pregnancy within its look-back) whose value cannot be read (a valueString `<15` or "
     "`positive`, an unknown answer, text only) is named as not screened "
     "(`record not read: Observation/id (kind result: value not read)`) unless a result of its kind that is "
     "read is more recent (the same day: still named); a clearance's or an eGFR's unless the renal value read (the "
     "more recent of the two kinds) is more recent. Per patient "
     "and in bulk alike; a weight is not read by any rule"),
)
"""What the readers do with what they cannot read (every path: an incomplete screen, never a clean one)."""


def row_elements(row: Row) -> tuple[str, ...]:
    """The top-level elements of its resource a row reads (``effectivePeriod.end`` -> ``effectivePeriod``)."""
    if row.element in _INSIDE:
        return ()
    reads = _READS.get(row.element, (row.element,))
    paths = (row.value,) if reads == (_VALUES,) else reads
    # "medicationReference (contained)" reads medicationReference; "every dosageInstruction" reads dosageInstruction
    heads = (p.removeprefix("every ").split(" ", 1)[0].split(".", 1)[0] for p in paths)
    return tuple(h for h in heads if h and h != ABSENT)


@cache
def elements_read() -> dict[str, tuple[str, ...]]:
    """Resource type -> the top-level elements any reader reads of it (the rows', then :data:`ALSO_READ`)."""
    out: dict[str, list[str]] = {}
    for r in TABLE:
        for resource in _ON.get(r.element, (r.resource,)):
            for e in row_elements(r):
                if e not in out.setdefault(resource, []):
                    out[resource].append(e)
    for resource, element, _ in ALSO_READ:
        if element not in out.setdefault(resource, []):
            out[resource].append(element)
    return {k: tuple(v) for k, v in out.items()}


def markdown() -> str:
    """The table as Markdown (``docs/fhir-reading.md``)."""
    lines = [
        "# How a FHIR record is read",
        "",
        f"Reading version {READING_VERSION}. Generated from `withdrawal.fhir.reading.TABLE`",
        "(`python -m withdrawal.fhir.reading > docs/fhir-reading.md`; a test checks that this page is current).",
        "The per-patient mapper (CLI, REST, CDS Hooks) and the bulk screen (DuckDB, Spark) both read these",
        "rows; a differential test checks that they give the same verdict, findings, MME and flags, on records",
        "drawn from every row (`withdrawal.fhir.generate`). Values are tried in the order listed where the",
        "column 'read as' says `(order)`.",
        "",
        "| resource | element | value | read as | why |",
        "|---|---|---|---|---|",
    ]
    for r in TABLE:
        cells = (r.resource, r.element, f"`{r.value}`", r.reading or "(order)", r.why)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += [
        "",
        "## Elements read",
        "",
        "The elements of each resource that the rows above read, and the few the readers read beyond them",
        "(identity, references, the bedside scores). The CDS service decodes a request's prefetch to these",
        "elements only (`withdrawal.fhir.decoding`); every other element is skipped by the JSON decoder.",
        "",
        "| resource | elements |",
        "|---|---|",
    ]
    for resource, elements in elements_read().items():
        lines.append(f"| {resource} | " + ", ".join(f"`{e}`" for e in elements) + " |")
    lines += ["", "Read beyond the rows:", "", "| resource | element | why |", "|---|---|---|"]
    lines += [f"| {r} | `{e}` | {why} |" for r, e, why in ALSO_READ]
    lines += ["", "## What cannot be read", "", "| resource | what | read as |", "|---|---|---|"]
    lines += [f"| {r} | {e} | {why} |" for r, e, why in NOT_READ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(markdown())
