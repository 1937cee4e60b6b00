"""COWS and SOWS as FHIR R4: Questionnaires built from the knowledge base, and their reading.

* :func:`questionnaire` gives the R4 Questionnaire of a scale: one ``choice`` item per scale
  item, its answer options with their scores (``ordinalValue`` extension and the code
  ``<item>-<score>``), plus optional items for the opioid last used and the hours since.
* :func:`read_bedside` reads, from a Bundle or resource list, the latest COWS and SOWS (a
  QuestionnaireResponse to these Questionnaires, or a scored Observation whose components are
  the item scores) and the hours since the last opioid (from the response or an Observation).
* :func:`to_patient_at_bedside` is :func:`withdrawal.fhir.to_patient` with those readings.

No LOINC code for a COWS or SOWS panel, total or item was found in any source consulted (the
research notes looked; a candidate code could not be verified), so every code here is in the
project's own systems (:data:`CODE_SYSTEM`, :data:`ANSWER_SYSTEM`); a LOINC coding is read as
well when one is added to :data:`LOINC_CODES` after it has been checked at loinc.org.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

from withdrawal.errors import InputError
from withdrawal.fhir.mapping import FhirPatient, codes_of, reference_id, resources_of, to_patient
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Scale, Substance

JSON = Mapping[str, Any]

CODE_SYSTEM = "urn:withdrawal:fhir:CodeSystem:withdrawal-scales"
"""The project's own code system: ``cows-total``, ``sows-total``, ``cows.<item>``, ``sows.<item>``,
``hours-since-last-opioid-use``, ``last-opioid-substance``."""
ANSWER_SYSTEM = "urn:withdrawal:fhir:CodeSystem:{scale}-answers"
"""Answer codes ``<item>-<score>`` of one scale (``cows``, ``sows``)."""
SUBSTANCE_SYSTEM = "urn:withdrawal:fhir:CodeSystem:substance"
QUESTIONNAIRE_URL = "urn:withdrawal:fhir:Questionnaire:{scale}"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
LOINC = "http://loinc.org"
LOINC_CODES: Mapping[str, str] = {}
"""Scale id -> LOINC code of its total, once verified (none is: see the module docstring)."""
HOURS_ITEM = "hours_since_last_opioid_use"
SUBSTANCE_ITEM = "last_opioid_substance"
HOURS_CODE = "hours-since-last-opioid-use"
SUBSTANCE_CODE = "last-opioid-substance"
SCALES = ("cows", "sows")
_SUBSTANCES: tuple[str, ...] = get_args(Substance)


def _coding(code: str, display: str) -> dict[str, Any]:
    return {"system": CODE_SYSTEM, "code": code, "display": display}


def questionnaire(scale: Scale, kb_version: str) -> dict[str, Any]:
    """The FHIR R4 Questionnaire of ``scale`` (COWS or SOWS), every answer with its score."""
    answers = ANSWER_SYSTEM.format(scale=scale.id)
    items: list[dict[str, Any]] = []
    for it in scale.items:
        text = f"{it.number}. {it.label}" + (f" ({it.instruction})" if it.instruction else "")
        items.append(
            {
                "linkId": it.id,
                "code": [_coding(f"{scale.id}.{it.id}", it.label)],
                "text": text,
                "type": "choice",
                "required": True,
                "answerOption": [
                    {
                        "valueCoding": {
                            "system": answers,
                            "code": f"{it.id}-{opt.score}",
                            "display": f"{opt.score}: {opt.anchor}",
                            "extension": [{"url": ORDINAL_VALUE, "valueDecimal": opt.score}],
                        }
                    }
                    for opt in it.options
                ],
            }
        )
    items.append(
        {
            "linkId": SUBSTANCE_ITEM,
            "code": [_coding(SUBSTANCE_CODE, "Opioid last used")],
            "text": "Opioid last used (optional)",
            "type": "choice",
            "required": False,
            "answerOption": [
                {"valueCoding": {"system": SUBSTANCE_SYSTEM, "code": s, "display": s}} for s in _SUBSTANCES
            ],
        }
    )
    items.append(
        {
            "linkId": HOURS_ITEM,
            "code": [_coding(HOURS_CODE, "Hours since last opioid use")],
            "text": "Hours since the last opioid use (optional)",
            "type": "decimal",
            "required": False,
        }
    )
    code = [_coding(f"{scale.id}-total", scale.name)]
    if scale.id in LOINC_CODES:
        code.append({"system": LOINC, "code": LOINC_CODES[scale.id], "display": scale.name})
    return {
        "resourceType": "Questionnaire",
        "id": scale.id,
        "url": QUESTIONNAIRE_URL.format(scale=scale.id),
        "version": kb_version,
        "name": scale.id.upper(),
        "title": scale.name,
        "status": "active",
        "subjectType": ["Patient"],
        "description": f"{scale.citation} {scale.administration} Total {scale.total_min}-{scale.total_max}.",
        "code": code,
        "item": items,
    }


@dataclass(frozen=True)
class BedsideReading:
    """What a Bundle says at the bedside: the latest COWS and SOWS and the last opioid use."""

    cows: dict[str, int] | None = None
    sows: dict[str, int] | None = None
    substance: str | None = None
    hours_since_last_use: float | None = None
    sources: Mapping[str, str] | None = None
    """Scale id -> ``Type/id`` of the resource it was read from (for ``derivedFrom``)."""
    skipped: tuple[str, ...] = ()


def _list(v: object) -> list[Any]:
    """A JSON array as a list; anything else (a malformed export) as empty."""
    return v if isinstance(v, list) else []


def _str(v: object) -> str | None:
    return v if isinstance(v, str) and v else None


def _when(text: object) -> datetime | None:
    s = _str(text)
    if s is None:
        return None
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00")) if "T" in s else datetime.fromisoformat(s + "T00:00:00")
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _scale_of_questionnaire(canonical: object) -> str | None:
    url = _str(canonical)
    if url is None:
        return None
    base = url.split("|", 1)[0]
    for sid in SCALES:
        if base == QUESTIONNAIRE_URL.format(scale=sid) or base.rstrip("/").endswith(f"Questionnaire/{sid}"):
            return sid
    return None


def _answer_score(where: str, item_id: str, answer: JSON, allowed: tuple[int, ...]) -> int:
    """The score of one answer: a valueInteger, a coding's ordinalValue, or its ``<item>-<score>`` code."""
    if "valueInteger" in answer:
        value = answer["valueInteger"]
    elif isinstance(answer.get("valueCoding"), Mapping):
        coding = answer["valueCoding"]
        value = None
        for ext in _list(coding.get("extension")):
            if isinstance(ext, Mapping) and ext.get("url") == ORDINAL_VALUE:
                value = ext.get("valueDecimal")
        code = _str(coding.get("code"))
        if value is None and code and code.startswith(f"{item_id}-"):
            tail = code[len(item_id) + 1 :]
            value = int(tail) if re.fullmatch(r"[0-9]{1,3}", tail) else tail
    else:
        raise InputError(f"{where}.answer", "needs a valueCoding or valueInteger", allowed=allowed)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise InputError(f"{where}.answer", "score not allowed", value=value, allowed=allowed)
    return value


def _read_response(res: JSON, sid: str, kb: KnowledgeBase) -> tuple[dict[str, int], str | None, float | None]:
    """Item scores, substance and hours from a QuestionnaireResponse to the scale ``sid``."""
    scale = kb.scales[sid]
    allowed = {i.id: i.allowed_scores for i in scale.items}
    rid = _str(res.get("id")) or "?"
    scores: dict[str, int] = {}
    substance: str | None = None
    hours: float | None = None
    for n, item in enumerate(_list(res.get("item"))):
        if not isinstance(item, Mapping):
            continue
        link = _str(item.get("linkId")) or ""
        where = f"QuestionnaireResponse/{rid}.item[{n}] ({link or 'no linkId'})"
        answers = [a for a in _list(item.get("answer")) if isinstance(a, Mapping)]
        if not answers:
            continue
        if link == SUBSTANCE_ITEM:
            coding = answers[0].get("valueCoding")
            code = _str(coding.get("code")) if isinstance(coding, Mapping) else _str(answers[0].get("valueString"))
            if code not in _SUBSTANCES:
                raise InputError(f"{where}.answer", "unknown substance", value=code, allowed=_SUBSTANCES)
            substance = code
        elif link == HOURS_ITEM:
            value = answers[0].get("valueDecimal", answers[0].get("valueInteger"))
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 24 * 365:
                raise InputError(f"{where}.answer", "hours must be a number from 0 to 8760", value=value)
            hours = float(value)
        elif link in allowed:
            scores[link] = _answer_score(where, link, answers[0], allowed[link])
        else:
            raise InputError(f"{where}.linkId", f"is not an item of {scale.name}", value=link, allowed=list(allowed))
    missing = [i for i in allowed if i not in scores]
    if missing and res.get("status") == "completed":
        raise InputError(
            f"QuestionnaireResponse/{rid}",
            f"is 'completed' but has no answer for {', '.join(missing)}",
            allowed=list(allowed),
        )
    return scores, substance, hours


def _read_scored_observation(res: JSON, sid: str, kb: KnowledgeBase) -> dict[str, int]:
    """Item scores from a scored COWS/SOWS Observation (one component per item); the total is checked."""
    scale = kb.scales[sid]
    allowed = {i.id: i.allowed_scores for i in scale.items}
    rid = _str(res.get("id")) or "?"
    scores: dict[str, int] = {}
    for n, comp in enumerate(_list(res.get("component"))):
        if not isinstance(comp, Mapping):
            continue
        where = f"Observation/{rid}.component[{n}]"
        codes = [c for c in codes_of(comp.get("code"), CODE_SYSTEM) if c.startswith(f"{sid}.")]
        if not codes:
            continue
        item_id = codes[0][len(sid) + 1 :]
        if item_id not in allowed:
            raise InputError(f"{where}.code", f"is not an item of {scale.name}", value=item_id, allowed=list(allowed))
        scores[item_id] = _answer_score(where, item_id, comp, allowed[item_id])
    total = res.get("valueInteger")
    if isinstance(total, int) and not isinstance(total, bool) and len(scores) == len(allowed):
        if total != sum(scores.values()):
            raise InputError(
                f"Observation/{rid}.valueInteger",
                f"total {total} differs from the sum of its item scores ({sum(scores.values())})",
                value=total,
            )
    return scores


_DONE = frozenset({"completed", "amended"})
SKEW = timedelta(minutes=5)
_OBS_DONE = frozenset({"final", "amended", "corrected", "preliminary"})


def read_bedside(
    resources: Iterable[JSON],
    kb: KnowledgeBase,
    *,
    now: datetime | None = None,
    patient_id: str | None = None,
    strict: bool = True,
) -> BedsideReading:
    """The latest COWS, SOWS and last-opioid readings among ``resources``.

    With ``now``, a response or Observation recorded after it (beyond 5 minutes) is skipped: the
    record is read as of then. ``strict``: a response or Observation that cannot be scored raises :class:`InputError`
    (naming the resource, item and allowed values); otherwise it is listed under ``skipped``.

    A response in progress or a scored Observation without every item is listed under
    ``skipped`` (a partial score is never totalled). Hours since last use are counted on to
    ``now`` from the time they were recorded, when both are known.
    """
    latest: dict[str, tuple[datetime, dict[str, int], str]] = {}
    last_use: tuple[datetime, float | None, str | None] | None = None
    skipped: list[str] = []
    epoch = datetime(1900, 1, 1, tzinfo=UTC)

    def subject_ok(res: JSON) -> bool:
        # the mapper's reading of a reference (urn:uuid, versioned, absolute), as to_patient reads subjects
        subj = res.get("subject")
        ref = reference_id(subj.get("reference")) if isinstance(subj, Mapping) else None
        return not (patient_id and ref and ref != patient_id)

    def later(when: datetime) -> bool:
        # NOTE: read as of ``now``: what was recorded after it (beyond a few minutes of clock skew) is not used.
        return now is not None and when - now > SKEW

    def take(res: JSON) -> None:
        nonlocal last_use
        rtype = res.get("resourceType")
        if not subject_ok(res):
            return
        rid = _str(res.get("id")) or "?"
        if rtype == "QuestionnaireResponse":
            sid = _scale_of_questionnaire(res.get("questionnaire"))
            if sid is None:
                return
            if _str(res.get("status")) not in _DONE:
                skipped.append(f"QuestionnaireResponse/{rid}: status {res.get('status')!r}, not completed")
                return
            when = _when(res.get("authored")) or epoch
            if later(when):
                skipped.append(f"QuestionnaireResponse/{rid}: authored after the time read as of")
                return
            scores, substance, hours = _read_response(res, sid, kb)
            if len(scores) == len(kb.scales[sid].items) and (sid not in latest or when >= latest[sid][0]):
                latest[sid] = (when, scores, f"QuestionnaireResponse/{rid}")
            if (hours is not None or substance) and (last_use is None or when >= last_use[0]):
                last_use = (when, hours, substance)
        elif rtype == "Observation":
            codes = codes_of(res.get("code"), CODE_SYSTEM)
            loinc = set(codes_of(res.get("code"), LOINC))
            if _str(res.get("status")) not in _OBS_DONE:
                return
            when = _when(res.get("effectiveDateTime")) or _when(res.get("issued")) or epoch
            if later(when):
                skipped.append(f"Observation/{rid}: recorded after the time read as of")
                return
            sid = next((s for s in SCALES if f"{s}-total" in codes or LOINC_CODES.get(s) in loinc), None)
            if sid is not None:
                scores = _read_scored_observation(res, sid, kb)
                if len(scores) != len(kb.scales[sid].items):
                    skipped.append(f"Observation/{rid}: {sid.upper()} without every item score, not used")
                elif sid not in latest or when >= latest[sid][0]:
                    latest[sid] = (when, scores, f"Observation/{rid}")
            elif HOURS_CODE in codes:
                q = res.get("valueQuantity")
                value = q.get("value") if isinstance(q, Mapping) else None
                unit = (_str(q.get("code")) or _str(q.get("unit")) or "h") if isinstance(q, Mapping) else "h"
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or unit not in {"h", "hour", "hours"}
                    or not 0 <= value <= 24 * 365
                ):
                    raise InputError(
                        f"Observation/{rid}.valueQuantity", "needs a value in hours (unit h), 0 to 8760", value=value
                    )
                substance = None
                for comp in _list(res.get("component")):
                    if isinstance(comp, Mapping) and SUBSTANCE_CODE in codes_of(comp.get("code"), CODE_SYSTEM):
                        found = codes_of(comp.get("valueCodeableConcept"), SUBSTANCE_SYSTEM)
                        substance = found[0] if found else None
                        if substance not in _SUBSTANCES:
                            raise InputError(
                                f"Observation/{rid}.component",
                                "unknown substance",
                                value=substance,
                                allowed=_SUBSTANCES,
                            )
                if last_use is None or when >= last_use[0]:
                    last_use = (when, float(value), substance)

    for res in resources:
        if strict:
            take(res)
            continue
        try:
            take(res)
        except InputError as exc:  # NOTE: not strict (a CDS call): one bad record is named, not fatal
            skipped.append(f"{res.get('resourceType')}/{_str(res.get('id')) or '?'}: {exc}")
    hours = substance = None
    if last_use is not None:
        when, hours, substance = last_use
        if hours is not None and now is not None and when != epoch and now > when:
            hours = round(hours + (now - when).total_seconds() / 3600.0, 1)
    return BedsideReading(
        cows=latest["cows"][1] if "cows" in latest else None,
        sows=latest["sows"][1] if "sows" in latest else None,
        substance=substance,
        hours_since_last_use=hours,
        sources={sid: v[2] for sid, v in latest.items()},
        skipped=tuple(skipped),
    )


def bedside_fields(reading: BedsideReading, base_opioid: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Input fields (format version 1) from a bedside reading, for ``to_patient(extra=...)``."""
    extra: dict[str, Any] = {}
    if reading.cows is not None:
        extra["cows"] = reading.cows
    if reading.sows is not None:
        extra["sows"] = reading.sows
    if reading.substance or reading.hours_since_last_use is not None:
        opioid = dict(base_opioid or {})
        opioid["substance"] = reading.substance or opioid.get("substance") or "other"
        if reading.hours_since_last_use is not None:
            opioid["hours_since_last_use"] = reading.hours_since_last_use
        extra["opioid"] = opioid
    return extra


@dataclass(frozen=True)
class BedsideRecord(FhirPatient):
    """A record read at the bedside, with the reading its COWS, SOWS and last use came from (the
    write-back's ``derivedFrom`` cites the same resources the assessment used)."""

    reading: BedsideReading = field(default_factory=BedsideReading)
    patient_id: str | None = None
    """The id of the Patient the record was read for (given, or the Bundle's one Patient)."""


def to_patient_at_bedside(
    raw: object,
    kb: KnowledgeBase,
    *,
    as_of: date,
    now: datetime | None = None,
    patient_id: str | None = None,
    strict: bool = True,
) -> BedsideRecord:
    """:func:`withdrawal.fhir.to_patient` plus COWS, SOWS and the last opioid use read from FHIR.

    The scores are read for the patient the record is mapped for: ``patient_id``, or a Bundle's one
    Patient, so another patient's response is never scored as theirs (``to_patient`` names it as
    left out).
    """
    resources = resources_of(raw)
    if patient_id is None:
        ids = [reference_id(r.get("id")) for r in resources if r.get("resourceType") == "Patient"]
        patient_id = ids[0] if len(ids) == 1 else None
    reading = read_bedside(resources, kb, now=now, patient_id=patient_id, strict=strict)
    # the record as given (not its resources): to_patient names a Bundle's page not read
    mapped = to_patient(raw, kb, as_of=as_of, patient_id=patient_id, extra=bedside_fields(reading))
    return BedsideRecord(mapped.patient, (*mapped.skipped, *reading.skipped), mapped.medications, reading, patient_id)
