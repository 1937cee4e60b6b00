"""FHIR R4 resources to the patient model (input format version 1).

Real exports are messy, so every resource is read defensively: anything that is
not a JSON object, has an unexpected shape or a status that excludes it is
skipped and listed (type, id and reason, never its content). Codes that the
knowledge base does not know are passed through as text, so the assessment
reports them under ``unrecognised`` instead of dropping them.

Readings made on purpose (the strict side where the record is silent):

* Conditions count when ``clinicalStatus`` is active, recurrence or relapse, or
  absent; whatever their ``verificationStatus`` except refuted and
  entered-in-error (a provisional diagnosis of seizure disorder still matters).
* Medication requests and statements that are active, on hold, intended or of
  unknown status count as active; stopped and completed ones as stopped, with
  the days since their end date where one is recorded, else as stopped today.
* eGFR stands in for creatinine clearance only when no clearance is recorded;
  the most recent value is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, get_args

from withdrawal.errors import InputError
from withdrawal.fhir import codes
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Sex
from withdrawal.patient import MedicationIn, PatientIn, parse_patient, resolve_drug_name

JSON = Mapping[str, Any]

_MG = re.compile(r"(\d+(?:\.\d+)?)\s*MG(?![A-Za-z/])", re.IGNORECASE)
_PHENOTYPES = (
    ("ultrarapid", ("ultrarapid", "ultra-rapid", "ultra rapid")),
    ("intermediate", ("intermediate",)),
    ("poor", ("poor",)),
    ("normal", ("normal", "extensive")),
)
_PERIOD_PER_DAY = {"s": 86400.0, "min": 1440.0, "h": 24.0, "d": 1.0, "wk": 1 / 7, "mo": 1 / 30, "a": 1 / 365}


@dataclass(frozen=True)
class Medication:
    """One medication read from FHIR, before it becomes a :class:`MedicationIn`."""

    name: str | None
    rxnorm: str | None
    status: str  # "active" or "stopped"
    days_since_stopped: float | None = None
    dose_mg_per_day: float | None = None
    resource_id: str | None = None

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
    """Flatten a Bundle (nested Bundles too), a resource or a list into resources."""
    out: list[JSON] = []

    def walk(node: object, depth: int) -> None:
        if depth > 4 or not isinstance(node, Mapping):
            return
        if node.get("resourceType") == "Bundle":
            entries = node.get("entry")
            if isinstance(entries, list):
                for e in entries:
                    if isinstance(e, Mapping):
                        walk(e.get("resource"), depth + 1)
            return
        if isinstance(node.get("resourceType"), str):
            out.append(node)

    if isinstance(raw, list):
        for r in raw:
            walk(r, 0)
    else:
        walk(raw, 0)
    return out


# --- small readers --------------------------------------------------------------------


def _str(v: object) -> str | None:
    return v.strip() if isinstance(v, str) and v.strip() else None


def _codings(concept: object) -> list[JSON]:
    if not isinstance(concept, Mapping):
        return []
    cs = concept.get("coding")
    return [c for c in cs if isinstance(c, Mapping)] if isinstance(cs, list) else []


def _codes(concept: object, systems: Iterable[str] | str) -> list[str]:
    wanted = {systems} if isinstance(systems, str) else set(systems)
    return [c for x in _codings(concept) if x.get("system") in wanted and (c := _str(x.get("code")))]


def _text(concept: object) -> str | None:
    if not isinstance(concept, Mapping):
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
        if len(s) == 10:
            return date.fromisoformat(s)
        return datetime.fromisoformat(s.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def age_on(birth: date, as_of: date) -> int:
    """Completed years between a birth date and ``as_of``."""
    return as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if f == f and abs(f) < 1e9 else None


def _ref_id(ref: object) -> str | None:
    if not isinstance(ref, Mapping):
        return None
    r = _str(ref.get("reference"))
    if not r:
        return None
    return r.rsplit("/", 1)[-1] if "/" in r else r.removeprefix("urn:uuid:").removeprefix("#")


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
        ids = resolve_drug_name(part[: m.start()] or part, kb)
        if len(ids) == 1:
            out[ids[0]] = float(m.group(1))
    return out


def daily_dose_mg(dosages: object, strength_mg: float | None) -> float | None:
    """Most a dosage instruction allows per day, in mg; None when it cannot be read."""
    if not isinstance(dosages, list):
        return None
    total = 0.0
    for d in dosages:
        if not isinstance(d, Mapping):
            return None
        per_dose = _dose_mg(d, strength_mg)
        per_day = _times_per_day(d.get("timing"))
        if per_dose is None or per_day is None:
            return None
        total += per_dose * per_day
    return round(total, 3) if total > 0 else None


def _dose_mg(d: JSON, strength_mg: float | None) -> float | None:
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
    if unit == "mg":
        return value
    if unit == "g":
        return value * 1000
    if strength_mg is not None and unit in {"", "1", "{tbl}", "tablet", "tablets", "tab", "{capsule}", "capsule"}:
        return value * strength_mg
    return None


def _times_per_day(timing: object) -> float | None:
    if not isinstance(timing, Mapping):
        return None
    rep = timing.get("repeat")
    if not isinstance(rep, Mapping):
        return None
    freq = _number(rep.get("frequencyMax")) or _number(rep.get("frequency")) or 1.0
    period = _number(rep.get("period"))
    unit = _str(rep.get("periodUnit"))
    if not period or period <= 0 or unit not in _PERIOD_PER_DAY:
        return None
    return freq * _PERIOD_PER_DAY[unit] / period


def _medication_concept(res: JSON, contained: Mapping[str, JSON]) -> object:
    concept = res.get("medicationCodeableConcept")
    if concept is None:
        med = contained.get(_ref_id(res.get("medicationReference")) or "")
        concept = med.get("code") if med else None
        if concept is None and isinstance(res.get("medicationReference"), Mapping):
            concept = {"text": _str(res["medicationReference"].get("display"))}
    return concept


def read_medication(
    res: JSON, kb: KnowledgeBase, *, as_of: date, medications: Mapping[str, JSON] | None = None
) -> Medication | None:
    """A MedicationRequest or MedicationStatement as a medication, or None to skip it."""
    rtype = res.get("resourceType")
    status = _status_code(res.get("status")) or "unknown"
    if rtype == "MedicationRequest":
        if status in codes.REQUEST_ACTIVE:
            state = "active"
        elif status in codes.REQUEST_STOPPED:
            state = "stopped"
        else:
            return None
        if _str(res.get("intent")) in {"proposal", "plan"} and state == "stopped":
            return None
    elif rtype == "MedicationStatement":
        if status in codes.STATEMENT_ACTIVE:
            state = "active"
        elif status in codes.STATEMENT_STOPPED:
            state = "stopped"
        else:
            return None
    else:
        return None
    contained: dict[str, JSON] = dict(medications or {})
    for c in res.get("contained") or []:
        if isinstance(c, Mapping) and (cid := _str(c.get("id"))):
            contained[cid] = c
    concept = _medication_concept(res, contained)
    rx_codes = _codes(concept, codes.RXNORM)
    text = _text(concept)
    known = next((c for c in rx_codes if c in kb.drug_rxcui), None)
    rxnorm = known or (rx_codes[0] if rx_codes and rx_codes[0].isdigit() else None)
    if not (text or rxnorm):
        return None
    strengths = strengths_mg(text, kb) if text else {}
    ids = (kb.drug_rxcui[known],) if known else (resolve_drug_name(text, kb) if text else ())
    strength = strengths.get("tramadol") if "tramadol" in ids else (strengths.get(ids[0]) if len(ids) == 1 else None)
    dosage = res.get("dosageInstruction") if rtype == "MedicationRequest" else res.get("dosage")
    dose = daily_dose_mg(dosage, strength)
    ago: float | None = None
    if state == "stopped":
        end = _end_date(res)
        ago = float(max((as_of - end).days, 0)) if end else None
    return Medication(
        name=text,
        rxnorm=rxnorm,
        status=state,
        days_since_stopped=ago,
        dose_mg_per_day=dose,
        resource_id=_str(res.get("id")),
    )


def _end_date(res: JSON) -> date | None:
    period = res.get("effectivePeriod")
    if isinstance(period, Mapping) and (end := parse_date(period.get("end"))):
        return end
    if res.get("resourceType") == "MedicationStatement" and (d := parse_date(res.get("effectiveDateTime"))):
        return d
    disp = res.get("dispenseRequest")
    if isinstance(disp, Mapping):
        vp = disp.get("validityPeriod")
        if isinstance(vp, Mapping) and (end := parse_date(vp.get("end"))):
            return end
    return None


# --- the whole record -----------------------------------------------------------------


def _condition_entry(res: JSON, kb: KnowledgeBase) -> str | None:
    clinical = _status_code(res.get("clinicalStatus"))
    if clinical is not None and clinical not in codes.CONDITION_ACTIVE:
        return None
    if _status_code(res.get("verificationStatus")) in codes.CONDITION_REFUTED:
        return None
    concept = res.get("code")
    icd = _codes(concept, codes.ICD10CM)
    sct = _codes(concept, codes.SNOMED)
    for c in icd:
        if key := kb.lookup_condition(c):
            return key
    for c in sct:
        if key := kb.condition_codes.get("SCT:" + c):
            return key
    text = _text(concept)
    if text and (key := kb.lookup_condition(text)):
        return key
    code = f"ICD-10-CM {icd[0]}" if icd else (f"SNOMED {sct[0]}" if sct else None)
    if code and text:
        return f"{code}: {text}"[:200]
    return code or (text[:200] if text else None)


def _allergy_entry(res: JSON, kb: KnowledgeBase) -> str | None:
    if _status_code(res.get("clinicalStatus")) in {"inactive", "resolved"}:
        return None
    if _status_code(res.get("verificationStatus")) in codes.CONDITION_REFUTED:
        return None
    cats = res.get("category")
    if isinstance(cats, list) and cats and "medication" not in cats:
        return None
    concept = res.get("code")
    for c in _codes(concept, codes.RXNORM):
        if c in kb.drug_rxcui:
            return kb.drugs[kb.drug_rxcui[c]].name
    return _text(concept)


def _phenotype(res: JSON) -> str | None:
    value = res.get("valueCodeableConcept")
    text = (_text(value) or _str(res.get("valueString")) or "").lower()
    for key, words in _PHENOTYPES:
        if any(w in text for w in words):
            return key
    return None


def _is_cyp2d6(res: JSON) -> bool:
    concept = res.get("code")
    if set(_codes(concept, codes.LOINC)) & codes.CYP2D6_PHENOTYPE:
        comps = json_text(res.get("component")) + json_text(concept)
        return "cyp2d6" in comps.lower() or "79714-9" in _codes(concept, codes.LOINC)
    return "cyp2d6" in (_text(concept) or "").lower()


def json_text(node: object) -> str:
    """Concatenated strings inside a small JSON node (for a gene symbol in components)."""
    if isinstance(node, str):
        return node + " "
    if isinstance(node, Mapping):
        return "".join(json_text(v) for v in node.values())
    if isinstance(node, list):
        return "".join(json_text(v) for v in node[:50])
    return ""


def _effective(res: JSON) -> date:
    period = res.get("effectivePeriod")
    start = parse_date(period.get("start")) if isinstance(period, Mapping) else None
    return parse_date(res.get("effectiveDateTime")) or parse_date(res.get("issued")) or start or date.min


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
    if chosen is not None:
        birth = parse_date(chosen.get("birthDate"))
        if birth is not None and birth <= as_of:
            fields["age_years"] = min(age_on(birth, as_of), 120)
        gender = _str(chosen.get("gender"))
        if gender in get_args(Sex):
            fields["sex"] = gender
    medications_by_id = {
        rid: r for r in resources if r.get("resourceType") == "Medication" and (rid := _str(r.get("id")))
    }
    conditions: list[str] = []
    meds: list[Medication] = []
    allergies: list[str] = []
    latest: dict[str, tuple[date, Any]] = {}

    def keep(kind: str, when: date, value: Any) -> None:
        # The latest observation counts; on the same date a "yes" (pregnant, breastfeeding) is
        # not overwritten by a "no" (the stricter reading, as in the population screen).
        prev = latest.get(kind)
        if prev is None or when > prev[0] or (when == prev[0] and prev[1] is not True):
            latest[kind] = (when, value)

    for res in resources:
        rtype = res.get("resourceType")
        if rtype in {"Patient", "Medication"}:
            continue
        subject = _ref_id(res.get("subject")) or _ref_id(res.get("patient"))
        if pid and subject and subject != pid:
            skipped.append(f"{_label(res)}: another patient")
            continue
        try:
            if rtype == "Condition":
                if entry := _condition_entry(res, kb):
                    if entry not in conditions:
                        conditions.append(entry)
            elif rtype in {"MedicationRequest", "MedicationStatement"}:
                med = read_medication(res, kb, as_of=as_of, medications=medications_by_id)
                if med is not None:
                    meds.append(med)
            elif rtype == "AllergyIntolerance":
                if (a := _allergy_entry(res, kb)) and a not in allergies:
                    allergies.append(a)
            elif rtype == "Observation":
                _observation(res, keep)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # NOTE: a malformed resource is skipped and named, never fatal.
            skipped.append(f"{_label(res)}: unreadable ({type(exc).__name__})")
    for kind, (_, value) in latest.items():
        if kind == "pregnant":
            fields["pregnant"] = bool(value)
        elif kind in {"crcl", "egfr"}:
            continue
        else:
            fields[kind] = value
    renal = latest.get("crcl") or latest.get("egfr")
    if renal is not None:
        fields["creatinine_clearance_ml_min"] = min(max(float(renal[1]), 0.0), 300.0)
    fields["conditions"] = conditions
    fields["allergies"] = allergies
    # Validated MedicationIn instances: the patient model takes them as they are.
    fields["medications"] = [m.to_input() for m in _dedupe(meds)]
    if extra:
        fields.update(extra)
    if "age_years" not in fields:
        raise InputError("Patient.birthDate", "needed to compute age_years; none usable in the data")
    return FhirPatient(patient=parse_patient(fields), skipped=tuple(skipped), medications=tuple(meds))


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


def _observation(res: JSON, keep: Any) -> None:
    if (_status_code(res.get("status")) or "final") not in codes.OBSERVATION_USABLE:
        return
    loinc = set(_codes(res.get("code"), codes.LOINC))
    when = _effective(res)
    q = res.get("valueQuantity")
    value = _number(q.get("value")) if isinstance(q, Mapping) else None
    if loinc & codes.PREGNANCY_STATUS:
        answers = set(_codes(res.get("valueCodeableConcept"), {codes.LOINC, codes.SNOMED}))
        if answers & codes.PREGNANT_ANSWERS:
            keep("pregnant", when, True)
        elif answers & codes.NOT_PREGNANT_ANSWERS:
            keep("pregnant", when, False)
    elif loinc & codes.BREASTFEEDING_STATUS:
        # NOTE: tramadol is not recommended while breastfeeding (label 8.2): a recorded status is
        # read; "unknown" or an unreadable answer leaves the field unset, as it was.
        answers = set(_codes(res.get("valueCodeableConcept"), codes.LOINC))
        flag = res.get("valueBoolean")
        if answers & codes.BREASTFEEDING_ANSWERS or flag is True:
            keep("breastfeeding", when, True)
        elif answers & codes.NOT_BREASTFEEDING_ANSWERS or flag is False:
            keep("breastfeeding", when, False)
    elif loinc & codes.CREATININE_CLEARANCE and value is not None:
        keep("crcl", when, value)
    elif loinc & codes.EGFR and value is not None:
        keep("egfr", when, value)
    elif loinc & codes.BODY_WEIGHT and value is not None and 0 < value <= 500:
        unit = (_str(q.get("code")) or _str(q.get("unit")) or "kg").lower() if isinstance(q, Mapping) else "kg"
        kg = value * 0.45359237 if unit in {"[lb_av]", "lb", "lbs"} else value
        if 0 < kg <= 500:
            keep("weight_kg", when, round(kg, 2))
    elif _is_cyp2d6(res) and (ph := _phenotype(res)):
        keep("cyp2d6_phenotype", when, ph)
