"""The bulk reading of FHIR resources, generated from ``withdrawal.fhir.reading`` for both engines.

One neutral schema (:data:`FIELDS`) gives DuckDB's ``read_json`` column types and Spark's DDL
schema; one generator (:func:`stage_sql`) gives each engine's projection of a resource type onto
the flat staging columns of ``facts.py``. Statuses, code lists, the order in which dates are tried
and the phenotype words are the table's rows; the readers that work on codes and text (which RxNorm
code wins, condition codes and scope, doses and units) are the per-patient mapper's own functions,
run on the distinct staged values (``facts.map_tables``).

Staged columns:

* ``pat(patient_id, birth_date, birth_first, sex)``: ``birth_date`` the last day a partial birthDate allows,
  ``birth_first`` its first (the youngest and oldest the patient can be)
* ``cond(patient_id, clinical, verification, onset, onset_late, abatement, abatement_late, concept, procedure)``:
  one row per Condition or Procedure (``procedure`` 1: read as the condition its code names; its performed date
  is the onset); ``concept`` the code's JSON text; each ``*_late`` the days after the as-of date its date may be
  and still count as on or before it (``fhir.mapping.late_days``)
* ``med(patient_id, rtype, status, intent, start_date, start_late, end_date, stop_date, concept, text, ref,
  ref_display, dosage)``: ``start_late`` the days after the as-of date its start date may be and still count as
  started (``fhir.mapping.late_days``); ``concept`` the medication's CodeableConcept (its own or a contained
  Medication's) and ``dosage`` the dosage array, as JSON text the export wrote; ``text`` the reference's
  display for a contained Medication without a code; ``ref`` is set when the medication is a reference
  not resolved in the row (then joined with the export's Medication resources)
* ``alg(patient_id, clinical, verification, category, concept)``: ``category`` and ``concept`` as JSON text
  (a category read by the mapper's ``allergy_counted`` on the distinct texts: an item may be a CodeableConcept)
* ``obs(patient_id, status, effective, effective_late, value, code, coded, vstring, vbool, component)``: ``code``,
  ``coded`` (valueCodeableConcept) and ``component`` as JSON text, ``vbool`` 1, 0 or -1 (absent)
* ``medres(id, has_code, concept)`` from Medication resources
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

from withdrawal.fhir import reading
from withdrawal.fhir.mapping import HISTORY
from withdrawal.knowledge.models import Sex
from withdrawal.population.sql import Dialect

# --- one schema, two spellings -------------------------------------------------------------

S, D, B = "string", "double", "boolean"
J = "json"  # a value kept as its JSON text (DuckDB's JSON type; a STRING in Spark, which keeps an object's text)
CODING: list[Any] = [{"system": S, "code": S, "display": S}]
CONCEPT: dict[str, Any] = {"coding": CODING, "text": S}
REF: dict[str, Any] = {"reference": S, "display": S}
QTY: dict[str, Any] = {"value": D, "unit": S, "code": S}
PERIOD: dict[str, Any] = {"start": S, "end": S}
# the dosage is read by the mapper's own ``daily_dose_mg`` on the distinct texts, so it is staged as
# the export wrote it (no struct to build and serialise again per row)
DOSAGE = J
# the medication's concept is read by the mapper's own ``concept_identity`` on the distinct texts
_MED: dict[str, Any] = {"status": S, "subject": REF, "medicationCodeableConcept": J, "medicationReference": REF,
                        "contained": [{"resourceType": S, "id": S, "code": J}]}
FIELDS: dict[str, dict[str, Any]] = {
    "Patient": {"gender": S, "birthDate": S},
    "Condition": {"subject": REF, "clinicalStatus": CONCEPT, "verificationStatus": CONCEPT, "code": J,
                  "onsetDateTime": S, "onsetPeriod": PERIOD, "abatementDateTime": S, "abatementPeriod": PERIOD},
    "MedicationRequest": {**_MED, "intent": S, "authoredOn": S, "dosageInstruction": DOSAGE,
                          "dispenseRequest": {"validityPeriod": PERIOD}},
    "MedicationStatement": {**_MED, "effectivePeriod": PERIOD, "effectiveDateTime": S, "dosage": DOSAGE},
    "AllergyIntolerance": {"patient": REF, "clinicalStatus": CONCEPT, "verificationStatus": CONCEPT,
                           "category": J, "code": J},
    "Observation": {"status": S, "subject": REF, "code": J, "effectiveDateTime": S, "effectiveInstant": S,
                    "effectivePeriod": PERIOD, "issued": S, "valueQuantity": QTY, "valueCodeableConcept": J,
                    "valueBoolean": B, "valueString": S, "component": J},
    "Medication": {"code": J},
    "Procedure": {"subject": REF, "status": S, "code": J, "performedDateTime": S, "performedPeriod": PERIOD},
}
TYPES: tuple[str, ...] = tuple(FIELDS)


def duck_type(t: Any) -> str:
    if isinstance(t, list):
        return duck_type(t[0]) + "[]"
    if isinstance(t, dict):
        return "STRUCT(" + ", ".join(f'"{k}" {duck_type(v)}' for k, v in t.items()) + ")"
    return {S: "VARCHAR", D: "DOUBLE", B: "BOOLEAN", J: "JSON"}[t]


def spark_type(t: Any) -> str:
    if isinstance(t, list):
        return f"ARRAY<{spark_type(t[0])}>"
    if isinstance(t, dict):
        return "STRUCT<" + ", ".join(f"`{k}`: {spark_type(v)}" for k, v in t.items()) + ">"
    return {S: "STRING", D: "DOUBLE", B: "BOOLEAN", J: "STRING"}[t]


def duck_columns(rtype: str) -> dict[str, str]:
    return {k: duck_type(v) for k, v in FIELDS[rtype].items()}


def spark_schema(rtype: str) -> str:
    return ", ".join(f"`{k}` {spark_type(v)}" for k, v in FIELDS[rtype].items())


# --- text helpers (the same in both dialects) ---------------------------------------------


def clean(expr: str) -> str:
    """A string stripped of surrounding spaces; empty becomes NULL (the mapper's ``_str``). Trimmed only
    when it starts or ends with a space or is empty (trimming every value was a tenth of the read)."""
    return (f"CASE WHEN {expr} LIKE ' %' OR {expr} LIKE '% ' OR {expr} = '' "
            f"THEN nullif(trim({expr}), '') ELSE {expr} END")


def date_sql(expr: str) -> str:
    """The calendar date of a FHIR date or dateTime: a year is 1 January, a year-month its first day,
    a dateTime its date as written (``fhir.mapping.parse_date``)."""
    e = clean(expr)
    return (f"CASE WHEN length({e}) = 10 THEN try_cast({e} AS DATE) "
            f"WHEN length({e}) = 4 THEN try_cast(concat({e}, '-01-01') AS DATE) "
            f"WHEN length({e}) = 7 THEN try_cast(concat({e}, '-01') AS DATE) "
            f"WHEN length({e}) > 10 THEN try_cast(substr({e}, 1, 10) AS DATE) END")


def birth_sql(expr: str) -> str:
    """The birth date a patient's age is counted from: a partial date's last day where the reading table says
    so (``Patient | birthDate``: the youngest the patient can be), else as :func:`date_sql` reads it; the
    first day it allows is :func:`date_sql` (``fhir.mapping.birth_dates``)."""
    e = clean(expr)
    last = {"year": f"try_cast(concat({e}, '-12-31') AS DATE)",
            "year-month": f"last_day(try_cast(concat({e}, '-01') AS DATE))"}
    whens = "".join(f"WHEN length({e}) = {n} THEN {last[p]} " for p, n in (("year", 4), ("year-month", 7))
                    if reading.reading_of("Patient", "birthDate", p) == "last day")
    return f"CASE {whens}ELSE {date_sql(expr)} END" if whens else date_sql(expr)


def first_date(q: Dialect, paths: Sequence[str], available: Mapping[str, Any]) -> str:
    parts = [date_sql(q.path(p)) for p in paths if p.split(".")[0] in available]
    return f"coalesce({', '.join(parts)})" if len(parts) > 1 else (parts[0] if parts else "CAST(NULL AS DATE)")


def utc_shift_sql(expr: str) -> str:
    """Days (-1, 0 or 1) from a dateTime's date as written to its UTC date, by its time and offset; NULL for a
    date or a dateTime without a readable time and offset (``fhir.mapping.utc_shift``). Kept small: Spark
    compiles each projection into one method (a longer one, with the text repeated in every branch, failed
    Spark's code generation)."""
    t = f"trim({expr})"
    n = f"length({t})"
    offset = (f"CASE WHEN {t} LIKE '%Z' THEN 0 WHEN substr({t}, {n} - 2, 1) = ':' THEN "
              f"try_cast(concat(substr({t}, {n} - 5, 1), '1') AS INT) * "
              f"(try_cast(substr({t}, {n} - 4, 2) AS INT) * 60 + try_cast(substr({t}, {n} - 1, 2) AS INT)) END")
    minutes = f"try_cast(substr({t}, 12, 2) AS INT) * 60 + try_cast(substr({t}, 15, 2) AS INT) - ({offset})"
    return (f"CASE WHEN {n} > 10 AND substr({t}, 11, 1) = 'T' AND substr({t}, 14, 1) = ':' "
            f"THEN CAST(floor(({minutes}) / 1440.0) AS INT) END")


def late_sql(q: Dialect, paths: Sequence[str], available: Mapping[str, Any]) -> str:
    """How many days after the as-of date the first date of ``paths`` (the table's order) may be and still count
    as on or before it (``fhir.mapping.late_days``, the reading table's ``(every date) | after as-of`` rows): a
    date one day, a dateTime with an offset none after its shift. One short branch per path (Spark compiles a
    projection into one method)."""
    on_date = int(reading.number(reading.DATES, "after as-of", "date"))
    exact = int(reading.number(reading.DATES, "after as-of", "dateTime with offset"))
    whens = "".join(
        f"WHEN {date_sql(q.path(p))} IS NOT NULL THEN coalesce({exact} - ({utc_shift_sql(q.path(p))}), {on_date}) "
        for p in paths if p.split(".")[0] in available)
    return f"CASE {whens}END" if whens else "CAST(NULL AS INT)"


def dated_sql(q: Dialect, resource: str, element: str, available: Mapping[str, Any]) -> tuple[str, str]:
    """(the first date of ``resource``'s ``element`` rows, its :func:`late_sql`): what the facts compare with the
    as-of date, for an element the table's ``after as-of`` rows check (``fhir.mapping.dated_by``)."""
    if reading.reading_of(resource, "after as-of", element) not in (reading.AFTER_AS_OF, "never earlier"):
        raise KeyError(f"{resource}|after as-of|{element}")
    paths = reading.values(resource, element)
    return first_date(q, paths, available), late_sql(q, paths, available)


def ref_id(q: Dialect, ref: str) -> str:
    """The id in a Reference string (``Patient/x``, ``https://host/Patient/x``, ``Patient/x/_history/2``,
    ``urn:uuid:x``, ``#x``), as ``fhir.mapping.reference_id`` reads it (its ``HISTORY`` pattern; none: NULL)."""
    r = clean(ref)
    # the version part is stripped only where there is one (a regular expression per row is not cheap)
    unversioned = (f"CASE WHEN instr({r}, '/_history/') > 0 "
                   f"THEN regexp_replace({r}, {q.literal(HISTORY.pattern)}, '') ELSE {r} END")
    return ("nullif(" + f"CASE WHEN {r} LIKE '%/%' THEN {q.after_last_slash(unversioned)} "
            f"WHEN {r} LIKE 'urn:uuid:#%' THEN substr({r}, 11) WHEN {r} LIKE 'urn:uuid:%' THEN substr({r}, 10) "
            f"WHEN {r} LIKE '#%' THEN substr({r}, 2) ELSE {r} END, '')")


def code_status(q: Dialect, concept: str) -> str:
    """A status given as a CodeableConcept: the first coding's code, lower case."""
    first = q.first_where(f"{concept}.coding", lambda x: clean(f"{x}.code") + " IS NOT NULL")
    return f"lower({clean(f'({first}).code')})"


# --- the projections ---------------------------------------------------------------------


def _medication(q: Dialect, rtype: str) -> str:
    f = FIELDS[rtype]
    mcc = "medicationCodeableConcept"
    ref = ref_id(q, "medicationReference.reference")
    cont = q.first(q.filter("contained", f"x.id = {ref}"))
    concept = f"CASE WHEN {mcc} IS NOT NULL THEN {q.json_text(mcc)} ELSE {q.json_text(cont + '.code')} END"
    # a contained Medication without a code is named by the reference's display
    text = (f"CASE WHEN {mcc} IS NULL AND {cont} IS NOT NULL AND {cont}.code IS NULL "
            f"THEN {clean('medicationReference.display')} END")
    dosage = "dosageInstruction" if rtype == "MedicationRequest" else "dosage"
    intent = "intent" if "intent" in f else "CAST(NULL AS STRING)"
    return (f"{ref_id(q, 'subject.reference')} AS patient_id, {q.literal(rtype)} AS rtype, "
            f"coalesce(lower({clean('status')}), {q.literal(reading.ABSENT)}) AS status, {clean(intent)} AS intent, "
            "{} AS start_date, {} AS start_late, ".format(*dated_sql(q, rtype, "start date", f)) +
            f"{first_date(q, reading.values(rtype, 'end date'), f)} AS end_date, "
            f"{first_date(q, reading.values(rtype, 'stop date'), f)} AS stop_date, "
            f"{concept} AS concept, {text} AS text, "
            f"CASE WHEN {mcc} IS NULL AND {cont} IS NULL THEN {ref} END AS ref, "
            f"{clean('medicationReference.display')} AS ref_display, "
            f"{q.json_text(dosage)} AS dosage")


def _observation(q: Dialect) -> str:
    """The code, coded value, string value, boolean and components as written: the mapper's own
    ``observation_coded`` reads their distinct combinations (``facts.obs_map``)."""
    o = "Observation"
    return (f"{ref_id(q, 'subject.reference')} AS patient_id, coalesce(lower({clean('status')}), "
            f"{q.literal(reading.ABSENT)}) AS status, "
            "{} AS effective, {} AS effective_late, ".format(*dated_sql(q, o, "date", FIELDS[o])) +
            f"valueQuantity.value AS value, coalesce({q.json_text('code')}, '') AS code, "
            f"coalesce({q.json_text('valueCodeableConcept')}, '') AS coded, "
            f"coalesce({clean('valueString')}, '') AS vstring, "
            f"coalesce(CAST(valueBoolean AS INT), -1) AS vbool, coalesce({q.json_text('component')}, '') AS component")


def stage_sql(q: Dialect, rtype: str) -> str:
    """The projection of one resource type onto its staging columns (a SELECT list)."""
    c = "Condition"
    concept = f"coalesce({q.json_text('code')}, '')"  # read by the mapper's own functions on the distinct texts
    sexes = tuple(get_args(Sex))
    if rtype == "Patient":
        return (f"{clean('id')} AS patient_id, {birth_sql('birthDate')} AS birth_date, "
                f"{date_sql('birthDate')} AS birth_first, "
                f"CASE WHEN {clean('gender')} IN {q.literals(sexes)} THEN {clean('gender')} ELSE 'unknown' END AS sex")
    if rtype == c:
        return (f"{ref_id(q, 'subject.reference')} AS patient_id, {code_status(q, 'clinicalStatus')} AS clinical, "
                f"{code_status(q, 'verificationStatus')} AS verification, "
                "{} AS onset, {} AS onset_late, ".format(*dated_sql(q, c, "onset", FIELDS[c])) +
                "{} AS abatement, {} AS abatement_late, ".format(*dated_sql(q, c, "abatement", FIELDS[c])) +
                f"{concept} AS concept, 0 AS procedure")
    if rtype in ("MedicationRequest", "MedicationStatement"):
        return _medication(q, rtype)
    if rtype == "AllergyIntolerance":
        return (f"{ref_id(q, 'patient.reference')} AS patient_id, {code_status(q, 'clinicalStatus')} AS clinical, "
                f"{code_status(q, 'verificationStatus')} AS verification, "
                f"coalesce({q.json_text('category')}, '') AS category, "
                f"{concept} AS concept")
    if rtype == "Observation":
        return _observation(q)
    if rtype == "Procedure":
        # read as a Condition (the same columns, ``cond``): codes only; a status the table does not count
        # is staged as the clinical status 'ignored', which no Condition reading counts
        p = "Procedure"
        return (f"{ref_id(q, 'subject.reference')} AS patient_id, "
                f"CASE WHEN coalesce(lower({clean('status')}), {q.literal(reading.ABSENT)}) IN "
                f"{q.literals(reading.values(p, 'status', 'counted'))} THEN CAST(NULL AS STRING) ELSE 'ignored' END "
                f"AS clinical, CAST(NULL AS STRING) AS verification, "
                "{} AS onset, {} AS onset_late, ".format(*dated_sql(q, p, "performed", FIELDS[p])) +
                f"CAST(NULL AS DATE) AS abatement, CAST(NULL AS INT) AS abatement_late, {concept} AS concept, "
                "1 AS procedure")
    if rtype == "Medication":
        return f"{clean('id')} AS id, code IS NOT NULL AS has_code, {q.json_text('code')} AS concept"
    raise KeyError(rtype)


def empty_sql(d: Dialect, rtype: str) -> str:
    """A typed empty projection (for a type the export does not hold): the same columns, no rows."""
    return f"SELECT {stage_sql(d, rtype)} FROM src_{rtype.lower()}"
