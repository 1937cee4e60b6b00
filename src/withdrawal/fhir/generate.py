"""Synthetic one-patient FHIR records drawn from the whole reading table (``fhir.reading``).

Every status, code, unit, date path and date form, tie-break and look-back of the table can be
drawn, not only the shapes one reader knows; :attr:`RecordGenerator.drawn` records which table rows
the records exercised, so a test can measure (and require) that every row was drawn at least once.
Used by the differential test (per-patient mapper against both bulk engines) and by
``withdrawal population synth --varied``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from withdrawal.fhir import codes, reading
from withdrawal.knowledge.loader import KnowledgeBase

JSON = dict[str, Any]

# words and codes the knowledge base does not know (checked against it at start)
_UNKNOWN_DRUGS = ("zorbivastat 10 MG Oral Tablet", "Quixaprine", "Flumbadex 5 MG")
_UNKNOWN_RX = ("99999901", "99999902")
_IN_SCOPE_UNKNOWN_ICD = ("G98.8", "F99")
_OUT_OF_SCOPE_ICD = ("L98.9", "H52.4", "Z00.00")
_OUT_OF_SCOPE_SCT = ("38341003", "162864005")
_UNKNOWN_SCT_NAMING = (("352818000", "Tonic-clonic epilepsy"), ("313307000", "Epilepsy with partial seizures"),
                       ("230456007", "Status epilepticus (disorder)"))
"""SNOMED CT codes the knowledge base does not know, with a display naming a screened condition by its words."""
_UNKNOWN_TEXT = ("a condition the vocabulary has no word for",)
_SYSTEM_NOT_READ = ("http://hl7.org/fhir/sid/icd-9-cm", "345.90")
"""A condition code of a system no row reads (ICD-9-CM 345.90, epilepsy), drawn with no text or display."""
_OIDS = {system: oid for oid, system in codes.SYSTEM_OIDS.items()}
_UNKNOWN_PCS = "0DTJ4ZZ"  # an appendectomy: a procedure the vocabulary does not read
_UNKNOWN_PROCEDURE_SCT = "80146002"
_PCS_REST = ("XZZ", "0ZZ")
"""The last three characters (approach, device, qualifier) a vocabulary ICD-10-PCS prefix is completed
with, in turn, to a whole code (``0CTP`` -> ``0CTPXZZ``)."""
_PHENOTYPE_TEXTS = {
    "ultrarapid": ("Ultrarapid metabolizer", "CYP2D6 ultra-rapid metabolizer", "ultra rapid"),
    "poor": ("Poor metabolizer",),
    "intermediate": ("Intermediate metabolizer",),
    "normal": ("Normal metabolizer", "Extensive metabolizer"),
}


_TIMES_OF_DAY = (("MORN", "08:00:00"), ("NOON", "12:00:00"), ("EVE", "18:00:00"), ("NIGHT", "22:00:00"))
"""Distinct times of day a dosage lists (``when`` code, ``timeOfDay``), in the order of the reading table's rows."""


@dataclass
class RecordGenerator:
    """Draws records with ``rng``; ``drawn`` collects the keys of the table rows used."""

    kb: KnowledgeBase
    as_of: date
    rng: random.Random
    drawn: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for t in _UNKNOWN_DRUGS:
            if self.kb.lookup_drug(t):
                raise ValueError(f"{t!r} is known to the knowledge base; the generator needs unknown names")
        for code in (*_IN_SCOPE_UNKNOWN_ICD, *_OUT_OF_SCOPE_ICD):
            if self.kb.lookup_condition(code):
                raise ValueError(f"{code} is known to the knowledge base; the generator needs unknown codes")
        self._drugs = sorted(self.kb.drugs.values(), key=lambda d: d.id)
        self._with_rx = [d for d in self._drugs if d.rxcui]
        self._conds = sorted(self.kb.conditions.values(), key=lambda c: c.key)
        self._icd = [(c.key, code) for c in self._conds for code in c.icd10cm]
        self._sct = [(c.key, code) for c in self._conds for code in c.snomed]
        # procedures: the conditions the vocabulary records by a procedure code (a tonsillectomy)
        procedures = [c for c in self._conds if c.icd10pcs]
        prefixes = [code for c in procedures for code in c.icd10pcs]
        self._pcs = tuple(p + _PCS_REST[i % len(_PCS_REST)] for i, p in enumerate(prefixes))
        self._procedure_sct = tuple(code for c in procedures for code in c.snomed)
        if any(_UNKNOWN_PCS.upper().startswith(p.upper()) for p in prefixes) or any(
                _UNKNOWN_PROCEDURE_SCT in c.snomed for c in self._conds):
            raise ValueError("the generator's unknown procedure is known to the knowledge base")
        self._n = 0

    # --- helpers ------------------------------------------------------------------------

    def use(self, resource: str, element: str, value: str) -> str:
        key = f"{resource}|{element}|{value}"
        if reading.reading_of(resource, element, value) is None:
            raise KeyError(f"not a row of the reading table: {key}")
        self.drawn.add(key)
        return value

    def system(self, system: str) -> str:
        """``system``, or for every fourth resource (by the record's number, no further draw) its HL7 OID: a
        'Coding | system' row, read as the system it names (the records' readings, and the golden outputs, stay
        as they were)."""
        oid = _OIDS.get(system)
        if oid is None or self._n % 4:
            return system
        return self.use("Coding", "system", oid)

    def pick(self, resource: str, element: str) -> str:
        return self.use(resource, element, self.rng.choice(reading.values(resource, element)))

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def day(self, lo: int = -400, hi: int = 20) -> date:
        """A day between ``lo`` and ``hi`` days from the as-of date (mostly in the past)."""
        return self.as_of + timedelta(days=self.rng.randint(lo, hi))

    def date_text(self, d: date, *, datetime_ok: bool = True) -> str:
        """A FHIR date or dateTime in one of its forms (year, year-month, date, dateTime with Z or offset)."""
        form = self.rng.randrange(6 if datetime_ok else 4)
        if form == 0:
            return f"{d.year:04d}"
        if form == 1:
            return f"{d.year:04d}-{d.month:02d}"
        if form in (2, 3):
            return d.isoformat()
        if form == 4:
            return d.isoformat() + "T08:30:00Z"
        return d.isoformat() + "T23:15:00-05:00"

    def after_as_of(self, resource: str, element: str, value: str) -> None:
        """Marks the 'after as-of' rows a date drawn for ``element`` is read by: its own and the rule's for its
        form (no further draw)."""
        self.use(resource, "after as-of", element)
        self.use(reading.DATES, "after as-of", "dateTime with offset" if len(value) > 10 else "date")

    def set_path(self, res: JSON, path: str, value: object) -> None:
        node = res
        parts = path.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value

    @staticmethod
    def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> JSON:
        coding: JSON = {"system": system, "code": code}
        if display:
            coding["display"] = display
        out: JSON = {"coding": [coding]}
        if text:
            out["text"] = text
        return out

    # --- the record -----------------------------------------------------------------------

    def record(self, pid: str) -> list[JSON]:
        """One patient: Patient, Conditions, medications (with Medication resources), allergies, Observations."""
        r = self.rng
        age = r.randint(1, 95)
        birth = date(self.as_of.year - age, r.randint(1, 12), r.randint(1, 28))
        born = self.date_text(birth, datetime_ok=False)
        self.use("Patient", "birthDate", {4: "year", 7: "year-month"}.get(len(born), "date"))  # no further draw
        patient: JSON = {"resourceType": "Patient", "id": pid, "birthDate": born}
        if r.random() < 0.95:
            patient["gender"] = r.choice(("female", "male", "other", "unknown"))
        out = [patient]
        subject = {"reference": r.choice((f"Patient/{pid}", f"urn:uuid:{pid}"))}
        for _ in range(r.randint(0, 4)):
            out.append(self.condition(subject))
        for _ in range(r.randint(0, 5)):
            out.extend(self.medication(subject))
        for _ in range(r.randint(0, 2)):
            out.append(self.allergy(pid))
        if r.random() < 0.25:
            out.append(self.procedure(subject))
        for _ in range(r.randint(0, 5)):
            out.extend(self.observation(subject))
        return out

    def condition(self, subject: JSON) -> JSON:
        r, c = self.rng, "Condition"
        res: JSON = {"resourceType": c, "id": self._id("c"), "subject": subject}
        clinical = self.pick(c, "clinicalStatus")
        if clinical != reading.ABSENT:
            res["clinicalStatus"] = {"coding": [{"code": clinical}]}
        if r.random() < 0.3:
            ver = r.choice(("confirmed", "provisional", *reading.values(c, "verificationStatus")))
            if ver in reading.values(c, "verificationStatus"):
                self.use(c, "verificationStatus", ver)
            res["verificationStatus"] = {"coding": [{"code": ver}]}
        kind = r.randrange(8)
        if kind <= 2 and self._icd:
            _, code = r.choice(self._icd)
            res["code"] = self.concept(self._icd_system(), code)
        elif kind == 3 and self._sct:
            _, code = r.choice(self._sct)
            res["code"] = self.concept(self.system(self.use(c, "code", codes.SNOMED)), code)
        elif kind == 4:
            words = [s for cond in self._conds for s in cond.synonyms] or [self._conds[0].label]
            text = r.choice(words)
            if r.random() < 0.5:
                self.use(c, "code", "code.text")
                res["code"] = {"text": text}
            else:
                res["code"] = {"coding": [{"system": "http://example.org/local", "code": "x1", "display": text}]}
                self.use(c, "code", "code.coding.display")
        elif kind == 5:
            res["code"] = self.concept(self._icd_system(), r.choice(_IN_SCOPE_UNKNOWN_ICD), text="unclear finding")
            self.use(c, "unknown code", "inside condition_scope")
        elif kind == 6:
            if r.random() < 0.5:
                res["code"] = self.concept(self._icd_system(), r.choice(_OUT_OF_SCOPE_ICD))
            else:
                res["code"] = self.concept(self.use(c, "code", codes.SNOMED), r.choice(_OUT_OF_SCOPE_SCT))
                if self._n % 3 == 0:  # by the record's number, no further draw: a display naming a screened one
                    code, display = _UNKNOWN_SCT_NAMING[self._n % len(_UNKNOWN_SCT_NAMING)]
                    res["code"] = self.concept(codes.SNOMED, code, display)
                    self.use(c, "unknown code", "text naming a screened condition")
                    return self._condition_dates(res)
            self.use(c, "unknown code", "outside condition_scope")
        else:
            res["code"] = {"text": r.choice(_UNKNOWN_TEXT)}
            self.use(c, "unknown code", "free text only")
            if self._n % 2:  # by the record's number, no further draw: as unresolved as the free text
                res["code"] = self.concept(*_SYSTEM_NOT_READ)
                self.use(c, "unknown code", "system not read, no text or display")
        return self._condition_dates(res)

    def _condition_dates(self, res: JSON) -> JSON:
        r, c = self.rng, "Condition"
        if r.random() < 0.3:
            path = self.pick(c, "onset")
            self.set_path(res, path, value := self.date_text(self.day(-2000, 30)))
            self.after_as_of(c, "onset", value)
        if r.random() < 0.2:
            path = self.pick(c, "abatement")
            self.set_path(res, path, value := self.date_text(self.day(-300, 60)))
            self.after_as_of(c, "abatement", value)
        return res

    def _icd_system(self) -> str:
        system = self.use("Condition", "code", self.rng.choice(sorted(codes.ICD10CM)))
        if system in codes.SYSTEM_OIDS:
            self.use("Coding", "system", system)
        return system

    def _drug_concept(self) -> tuple[JSON, float | None]:
        """A medication concept and the strength its text states (for unit counts)."""
        r, m = self.rng, "Medication"
        kind = r.randrange(7)
        strength: float | None = None
        if kind <= 1 and self._with_rx:
            d = r.choice(self._with_rx)
            concept = self.concept(self.system(self.use(m, "code", codes.RXNORM)), str(d.rxcui))
            if r.random() < 0.5:
                strength = float(r.choice((5, 10, 50, 100)))
                concept["text"] = f"{d.name} {strength:g} MG Oral Tablet"
                self.use(m, "text", "code.text")
            if r.random() < 0.3:  # an unknown code listed first: the known one wins
                concept["coding"].insert(0, {"system": codes.RXNORM, "code": r.choice(_UNKNOWN_RX)})
            return concept, strength
        if kind == 2:
            d = r.choice(self._drugs)
            name = r.choice((d.name, *d.brands, *d.synonyms))
            strength = float(r.choice((2, 15, 37.5, 50)))
            text = f"{name} {strength:g} MG Oral Tablet"
            if r.random() < 0.5:
                self.use(m, "text", "code.text")
                return {"text": text}, strength
            self.use(m, "text", "code.coding.display")
            return {"coding": [{"system": "http://example.org/ndc", "code": "0", "display": text}]}, strength
        if kind == 3:
            self.use(m, "text", "code.text")
            return {"text": "Acetaminophen 325 MG / traMADol Hydrochloride 37.5 MG Oral Tablet"}, 37.5
        if kind == 4:
            self.use(m, "code", codes.RXNORM)
            return self.concept(codes.RXNORM, r.choice(_UNKNOWN_RX), text=r.choice(_UNKNOWN_DRUGS)), None
        if kind == 5:
            self.use(m, "text", "code.text")
            if r.random() < 0.5:
                word = self.pick(m, "release form")
                return {"text": f"tramadol hydrochloride 100 MG {word} Oral Tablet"}, 100.0
            return {"text": r.choice(_UNKNOWN_DRUGS)}, None
        self.use(m, "text", "code.text")
        return {"text": "tramadol hydrochloride 50 MG Oral Tablet"}, 50.0

    def medication(self, subject: JSON) -> list[JSON]:
        r = self.rng
        rtype = r.choice(("MedicationRequest", "MedicationStatement"))
        res: JSON = {"resourceType": rtype, "id": self._id("m"), "subject": subject}
        status = self.pick(rtype, "status")
        if status != reading.ABSENT:
            res["status"] = status
        if rtype == "MedicationRequest":
            intent = r.choice(("order", "order", *reading.values(rtype, "intent")))
            if intent in reading.values(rtype, "intent"):
                self.use(rtype, "intent", intent)
            res["intent"] = intent
        concept, _ = self._drug_concept()
        extra: list[JSON] = []
        how = self.pick("Medication", "medication[x]")
        if how == "medicationCodeableConcept":
            res["medicationCodeableConcept"] = concept
        elif how == "medicationReference (contained)":
            res["contained"] = [{"resourceType": "Medication", "id": "med1", "code": concept}]
            res["medicationReference"] = {"reference": "#med1"}
        elif how == "medicationReference (Bundle / export)":
            mid = self._id("med")
            extra.append({"resourceType": "Medication", "id": mid, "code": concept})
            res["medicationReference"] = {"reference": f"Medication/{mid}"}
        else:
            display = concept.get("text") or r.choice(_UNKNOWN_DRUGS)
            res["medicationReference"] = {"reference": "Medication/not-in-the-record"}
            if self._n % 4:  # NOTE: every fourth has no display: a medication no reader can identify
                res["medicationReference"]["display"] = display
        for element in ("start date", "end date", "stop date"):
            if r.random() < 0.45:
                path = self.pick(rtype, element)
                lo, hi = (-300, 15) if element == "start date" else (-60, 40)
                value = self.date_text(self.day(lo, hi))
                if element == "start date":  # how far after the as-of date it may be: by its form, no further draw
                    self.after_as_of(rtype, element, value)
                if path.endswith(".start") or path.endswith(".end"):
                    self.set_path(res, path, value)
                else:
                    res[path] = value
        if r.random() < 0.8:
            key = "dosageInstruction" if rtype == "MedicationRequest" else "dosage"
            n = 2 if r.random() < 0.1 else 1
            if n == 2:
                self.use("Dosage", "instructions", "every dosageInstruction")
            res[key] = [self.dosage() for _ in range(n)]
        out = [res, *extra]
        if r.random() < 0.08:  # a refill of the same order: one product counted once
            self.use("Medication", "duplicates", "same product and state")
            twin = {**res, "id": self._id("m")}
            out.append(twin)
        return out

    def dosage(self) -> JSON:
        r = self.rng
        unit = self.pick("Dosage", "doseQuantity unit")
        value = r.choice((0.5, 1, 2, 5, 10, 25, 50, 100, 12.5))
        qty: JSON = {"value": value}
        if unit != reading.ABSENT:
            qty["code" if r.random() < 0.5 else "unit"] = unit
        dose_path = self.pick("Dosage", "dose")
        dar: JSON = {"doseQuantity": qty} if dose_path == "doseQuantity" else {
            "doseRange": {"low": {**qty, "value": value / 2}, "high": qty}}
        rep: JSON = {}
        freq = self.pick("Dosage", "times per dose period")
        if freq == "frequency":
            rep["frequency"] = r.randint(1, 4)
        elif freq == "frequencyMax":
            rep["frequency"] = 1
            rep["frequencyMax"] = r.randint(2, 6)
        if r.random() < 0.95:
            rep["period"] = r.choice((1, 1, 2, 4, 6, 8, 12))
            rep["periodUnit"] = self.pick("Dosage", "periodUnit")
        times = reading.values("Dosage", "times of day")
        if turn := self._n % (len(times) + 1):
            # NOTE: by the record's number, no further draw: the times of day listed are as many as the
            # times the dosage already gives (at most 4), so the dose, the records' screens and the golden
            # outputs stay as they were; the doses with more times than that are in the mapper's tests.
            count = min(int(rep.get("frequencyMax") or rep.get("frequency") or 1), len(_TIMES_OF_DAY))
            element = self.use("Dosage", "times of day", times[turn - 1])
            rep[element] = [t[turn - 1] for t in _TIMES_OF_DAY[:count]]
        return {"timing": {"repeat": rep}, "doseAndRate": [dar]}

    def procedure(self, subject: JSON) -> JSON:
        r, p = self.rng, "Procedure"
        res: JSON = {"resourceType": p, "id": self._id("x"), "subject": subject}
        status = self.pick(p, "status")
        if status != reading.ABSENT:
            res["status"] = status
        if r.random() < 0.5:
            system = self.use(p, "code", r.choice(sorted(codes.ICD10PCS)))
            res["code"] = self.concept(system, r.choice((*self._pcs, _UNKNOWN_PCS)))
        else:
            res["code"] = self.concept(self.use(p, "code", codes.SNOMED),
                                       r.choice((*self._procedure_sct, _UNKNOWN_PROCEDURE_SCT)))
            if res["code"]["coding"][0]["code"] == _UNKNOWN_PROCEDURE_SCT and self._n % 3 == 0:
                # by the record's number, no further draw: a display naming a condition recorded by a procedure
                res["code"]["coding"][0]["display"] = "Tonsillectomy"
                self.use(p, "unknown code", "text naming a screened condition")
        if r.random() < 0.7:
            path = self.pick(p, "performed")
            value = self.date_text(self.day(-800, 20))
            self.after_as_of(p, "performed", value)
            if "." in path:
                self.set_path(res, path, value)
            else:
                res[path] = value
        return res

    def allergy(self, pid: str) -> JSON:
        r, a = self.rng, "AllergyIntolerance"
        res: JSON = {"resourceType": a, "id": self._id("a"), "patient": {"reference": f"Patient/{pid}"}}
        self.use(a, "after as-of", "(no date read)")
        clinical = self.pick(a, "clinicalStatus")
        if clinical != reading.ABSENT:
            res["clinicalStatus"] = {"coding": [{"code": clinical}]}
        if r.random() < 0.2:
            res["verificationStatus"] = {"coding": [{"code": self.pick(a, "verificationStatus")}]}
        cat = r.choice((*reading.values(a, "category"), "food"))
        if cat in reading.values(a, "category"):
            self.use(a, "category", cat)
        if cat != reading.ABSENT:
            res["category"] = [cat]
        if r.random() < 0.5 and self._with_rx:
            d = r.choice(self._with_rx)
            res["code"] = self.concept(self.system(self.use(a, "code", codes.RXNORM)), str(d.rxcui))
        else:
            d = r.choice(self._drugs)
            res["code"] = {"text": r.choice((d.name, "shellfish", *_UNKNOWN_DRUGS))}
        return res

    def observation(self, subject: JSON) -> list[JSON]:
        r, o = self.rng, "Observation"
        kind = self.pick(o, "code kind order")
        res: JSON = {"resourceType": o, "id": self._id("o"), "subject": subject}
        status = self.pick(o, "status")
        if status != reading.ABSENT:
            res["status"] = status
        if r.random() < 0.93:
            path = self.pick(o, "date")
            lo = -400 if kind == "pregnancy" else -200
            value = self.date_text(self.day(lo, 10))
            self.after_as_of(o, "date", value)
            if "." in path:
                self.set_path(res, path, value)
            else:
                res[path] = value
        if kind == "pregnancy" and "effectiveDateTime" in res and r.random() < 0.5:
            res["effectiveDateTime"] = (self.as_of - timedelta(days=r.randint(281, 400))).isoformat()
            self.use(o, "look-back days", "pregnancy")
        drawn = reading.values(o, "code", kind)
        if kind == "pregnancy":
            # NOTE: the IPS code is drawn as it was when it was pregnancy's only code; the record's number
            # gives the other pregnancy codes their turn, with no further draw (the records drawn, and the
            # golden outputs, stay as they were).
            code = self.rng.choice((codes.PREGNANCY_STATUS_IPS,))
            others = [c for c in drawn if c != codes.PREGNANCY_STATUS_IPS]
            code = others[self._n % (len(others) + 1) - 1] if self._n % (len(others) + 1) else code
        else:
            code = self.rng.choice(drawn)
        self.use(o, "code", code)
        res["code"] = self.concept(self.system(codes.LOINC), code)
        if kind in ("pregnancy", "breastfeeding"):
            answers = reading.values(o, f"{kind} value")
            answer = self.use(o, f"{kind} value", r.choice(answers))
            if answer.startswith("valueBoolean"):
                res["valueBoolean"] = answer.endswith("true")
            else:
                system = codes.SNOMED if answer.isdigit() else codes.LOINC
                res["valueCodeableConcept"] = self.concept(system, answer)
        elif kind in ("crcl", "egfr", "weight"):
            number = round(r.uniform(5, 140), 1)
            if r.random() < 0.05:
                number = r.choice((-3.0, 350.0))
                self.use(o, "clearance range", "lowest" if number < 0 else "highest")
            res["valueQuantity"] = {"value": number, "unit": "mL/min"} if kind != "weight" else self._weight(number)
            if kind != "weight":  # the renal value: the more recent of a clearance and an eGFR (no further draw)
                self.use(o, "latest", kind)
        else:
            self._cyp(res, code)
        out = [res]
        if r.random() < 0.15:  # a second result on the same day: the table's tie-break decides
            twin = dict(res)
            twin["id"] = self._id("o")
            if kind in ("pregnancy", "breastfeeding"):
                other = r.choice(reading.values(o, f"{kind} value"))
                twin.pop("valueBoolean", None)
                twin.pop("valueCodeableConcept", None)
                if other.startswith("valueBoolean"):
                    twin["valueBoolean"] = other.endswith("true")
                else:
                    twin["valueCodeableConcept"] = self.concept(
                        codes.SNOMED if other.isdigit() else codes.LOINC, other)
                self.use(o, "latest", "same day, yes/no")
            elif kind in ("crcl", "egfr"):
                twin["valueQuantity"] = {"value": round(r.uniform(5, 140), 1), "unit": "mL/min"}
                self.use(o, "latest", "same day, number")
            elif kind == "cyp2d6":
                self._cyp(twin, code)
                self.use(o, "latest", "same day, phenotype")
            out.append(twin)
        return out

    def _weight(self, kg: float) -> JSON:
        """A body weight's valueQuantity in one of the table's weight units; -3 and 350 (the rare draws
        above) stand for weights below and above the range. The unit follows from the number drawn, so
        no further draw is made (the records drawn, and the golden outputs, stay as they were)."""
        o = "Observation"
        units = reading.values(o, "weight unit")
        unit = self.use(o, "weight unit", units[int(abs(kg) * 10) % len(units)])
        if kg in (-3.0, 350.0):
            kg = -3.0 if kg < 0 else reading.WEIGHT_MAX_KG + 100
            self.use(o, "weight range", "lowest" if kg < 0 else "highest")
        factor = reading.weight_kg_factor("" if unit == reading.ABSENT else unit)
        assert factor is not None
        value = round(kg / factor, 3)
        return {"value": value} if unit == reading.ABSENT else {"value": value, "unit": unit}

    def _cyp(self, res: JSON, code: str) -> None:
        r, o = self.rng, "Observation"
        pheno = r.choice(list(_PHENOTYPE_TEXTS))
        text = r.choice(_PHENOTYPE_TEXTS[pheno])
        for _, words in reading.phenotype_words():
            if any(w in text.lower() for w in words):
                self.use(o, "phenotype word", next(w for w in words if w in text.lower()))
                break
        where = self.pick(o, "phenotype value")
        res.pop("valueCodeableConcept", None)
        res.pop("valueString", None)
        if where == "valueCodeableConcept.text":
            res["valueCodeableConcept"] = {"text": text}
        elif where == "valueCodeableConcept.coding.display":
            res["valueCodeableConcept"] = {"coding": [{"system": codes.LOINC, "code": "LA0", "display": text}]}
        else:
            res["valueString"] = text
        if code == "53040-2" and r.random() < 0.7:
            res["component"] = [{"code": self.concept(codes.LOINC, "48018-6"),
                                 "valueCodeableConcept": self.concept("http://www.genenames.org", "HGNC:2625",
                                                                      codes.CYP2D6_GENE)}]
        if r.random() < 0.15:
            res["code"] = {"text": f"{codes.CYP2D6_GENE} metabolizer status"}
            self.use(o, "code", reading.TEXT_NAMING + codes.CYP2D6_GENE)


def coverage(drawn: set[str]) -> tuple[int, int, list[str]]:
    """(rows drawn, rows in the table, keys never drawn)."""
    keys = [r.key for r in reading.TABLE]
    missing = [k for k in keys if k not in drawn]
    return len(keys) - len(missing), len(keys), missing
