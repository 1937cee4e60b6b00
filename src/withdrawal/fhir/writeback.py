"""Results written back as FHIR R4: scores as Observations, tramadol findings as DetectedIssues,
the plan (and the buprenorphine start pathway) as a CarePlan, in one transaction Bundle.

Every resource is validated before it leaves, with the R4B models of ``fhir.resources``
(pinned in pyproject.toml). R4B differs from R4 in none of the elements written here
(Observation, DetectedIssue, CarePlan, Bundle), so a resource these models accept is valid R4.
Codes are the project's own systems (:mod:`withdrawal.fhir.questionnaire`): no LOINC code for
COWS or SOWS was verified. Domain code reads no clock: ``now`` is passed in.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from withdrawal.errors import WithdrawalError
from withdrawal.fhir.questionnaire import CODE_SYSTEM, QUESTIONNAIRE_URL
from withdrawal.scales.scoring import ScaleScore

if TYPE_CHECKING:
    from withdrawal.assess import Assessment
    from withdrawal.pathway import Pathway

FINDING_SYSTEM = "urn:withdrawal:fhir:CodeSystem:finding"
OPTION_SYSTEM = "urn:withdrawal:fhir:CodeSystem:option"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
SEVERITY = {"contraindicated": "high", "avoid": "moderate", "caution": "low", "acceptable": "low"}
"""Finding level -> DetectedIssue.severity (high | moderate | low); the level itself is in the code."""


class InvalidFhir(WithdrawalError, ValueError):
    """A resource this module built failed FHIR validation (a bug, never the user's input)."""


_STATUS = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
)
_REQUIRED_CODES: Mapping[str, Mapping[str, frozenset[str]]] = {
    # Required bindings of R4 (https://hl7.org/fhir/R4/<resource>.html): fhir.resources checks a
    # code's form, not its value set, so the values written here are checked against these.
    "Observation": {"status": _STATUS},
    "DetectedIssue": {"status": _STATUS, "severity": frozenset({"high", "moderate", "low"})},
    "CarePlan": {
        "status": frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}),
        "intent": frozenset({"proposal", "plan", "order", "option"}),
    },
    "Questionnaire": {"status": frozenset({"draft", "active", "retired", "unknown"})},
    "QuestionnaireResponse": {
        "status": frozenset({"in-progress", "completed", "amended", "entered-in-error", "stopped"}),
    },
    "Bundle": {
        "type": frozenset(
            {
                "document",
                "message",
                "transaction",
                "transaction-response",
                "batch",
                "batch-response",
                "history",
                "searchset",
                "collection",
            }
        )
    },
}
_ACTIVITY_STATUS = frozenset(
    {
        "not-started",
        "scheduled",
        "in-progress",
        "on-hold",
        "completed",
        "cancelled",
        "stopped",
        "unknown",
        "entered-in-error",
    }
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})
_ITEM_TYPES = frozenset(
    {
        "group",
        "display",
        "boolean",
        "decimal",
        "integer",
        "date",
        "dateTime",
        "time",
        "string",
        "text",
        "url",
        "choice",
        "open-choice",
        "attachment",
        "reference",
        "quantity",
    }
)


def _check_codes(resource: Mapping[str, Any]) -> None:
    rtype = str(resource.get("resourceType"))
    checks: list[tuple[str, object, frozenset[str]]] = [
        (f"{rtype}.{name}", resource.get(name), allowed) for name, allowed in _REQUIRED_CODES.get(rtype, {}).items()
    ]
    for n, act in enumerate(resource.get("activity") or () if rtype == "CarePlan" else ()):
        checks.append((f"CarePlan.activity[{n}].detail.status", act.get("detail", {}).get("status"), _ACTIVITY_STATUS))
    for n, entry in enumerate(resource.get("entry") or () if rtype == "Bundle" else ()):
        if "request" in entry:
            checks.append((f"Bundle.entry[{n}].request.method", entry["request"].get("method"), _METHODS))
    stack = list(resource.get("item") or ()) if rtype == "Questionnaire" else []
    while stack:
        item = stack.pop()
        checks.append((f"Questionnaire.item({item.get('linkId')}).type", item.get("type"), _ITEM_TYPES))
        stack.extend(item.get("item") or ())
    for where, value, allowed in checks:
        if value is not None and value not in allowed:
            raise InvalidFhir(f"{where}: {value!r} is not in the required value set ({', '.join(sorted(allowed))})")


def validate_r4(resource: Mapping[str, Any]) -> None:
    """Validate one resource (a Bundle's entries too) with ``fhir.resources``' R4B models."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        raise InvalidFhir("resourceType: missing")
    try:
        get_fhir_model_class(rtype).model_validate(dict(resource))
    except (ValidationError, KeyError, ValueError) as exc:
        raise InvalidFhir(f"{rtype}: {exc}") from exc
    _check_codes(resource)
    if rtype == "Bundle":
        for n, entry in enumerate(resource.get("entry") or ()):
            inner = entry.get("resource") if isinstance(entry, Mapping) else None
            if isinstance(inner, Mapping):
                try:
                    validate_r4(inner)
                except InvalidFhir as exc:
                    raise InvalidFhir(f"Bundle.entry[{n}]: {exc}") from exc


def _instant(now: datetime) -> str:
    return now.isoformat(timespec="seconds")


def score_observation(
    sc: ScaleScore, *, name: str, patient_ref: str | None, now: datetime, derived_from: str | None = None
) -> dict[str, Any]:
    """A COWS or SOWS score as a survey Observation: the total, with one component per item."""
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [{"system": CODE_SYSTEM, "code": f"{sc.scale}-total", "display": name}], "text": name},
        "effectiveDateTime": _instant(now),
        "issued": _instant(now),
        "valueInteger": sc.total,
        "component": [
            {
                "code": {
                    "coding": [{"system": CODE_SYSTEM, "code": f"{sc.scale}.{item}"}],
                    "text": item.replace("_", " "),
                },
                "valueInteger": value,
            }
            for item, value in sc.items.items()
        ],
    }
    if sc.band_label:
        obs["interpretation"] = [{"text": sc.band_label}]
    if patient_ref:
        obs["subject"] = {"reference": patient_ref}
    if derived_from:
        obs["derivedFrom"] = [{"reference": derived_from}]
    if derived_from is None:
        obs["note"] = [{"text": f"Scored by withdrawal decision support ({QUESTIONNAIRE_URL.format(scale=sc.scale)})"}]
    return obs


def detected_issues(a: Assessment, *, patient_ref: str | None, now: datetime) -> list[dict[str, Any]]:
    """Each tramadol finding as a DetectedIssue: level in the code, message, action, first source."""
    out: list[dict[str, Any]] = []
    for f in a.screen.findings:
        issue: dict[str, Any] = {
            "resourceType": "DetectedIssue",
            "status": "final",
            "code": {
                "coding": [{"system": FINDING_SYSTEM, "code": f.code, "display": f.code.replace("_", " ")}],
                "text": f"Tramadol: {f.code.replace('_', ' ')} ({f.level})",
            },
            "severity": SEVERITY[f.level],
            "identifiedDateTime": _instant(now),
            "detail": f"[{f.level}] {f.message}",
            "mitigation": [{"action": {"text": f.action}}],
        }
        if f.triggers:
            issue["evidence"] = [{"detail": [{"display": ", ".join(f.triggers)}]}]
        if f.sources:
            issue["reference"] = a.kb.sources[f.sources[0]].link
        if patient_ref:
            issue["patient"] = {"reference": patient_ref}
        out.append(issue)
    return out


def care_plan(
    a: Assessment, pathway: Pathway | None, *, patient_ref: str | None, now: datetime, supporting: Sequence[str] = ()
) -> dict[str, Any]:
    """The ranked plan (and the start pathway, when given) as a proposed CarePlan."""
    activities: list[dict[str, Any]] = []
    if pathway is not None and pathway.status == "available":
        first = pathway.starts[0]
        lines = [f"{first.name}. {first.why}"] + ([first.now] if first.now else [])
        if first.schedules:
            sc = first.schedules[0]
            lines += [f"Day {d.day}: buprenorphine {d.buprenorphine}; full agonist: {d.full_agonist}" for d in sc.days]
            lines.append(f"Schedule: {sc.name}{'' if sc.verified else ' (unverified)'}")
        activities.append(_activity("buprenorphine-start", "\n".join(lines), "MedicationRequest"))
        for r in pathway.rechecks:
            activities.append(_activity("cows-recheck", f"{r.when}: {r.action}", "ServiceRequest"))
    for o in a.plan.options:
        text = f"Option {o.rank}: {o.name} ({o.status}). {o.dosing}" + (f" Timing: {o.timing}" if o.timing else "")
        activities.append(_activity(f"option-{o.treatment}", text, None))
    for e in a.plan.excluded:
        activities.append(
            _activity(
                f"excluded-{e.treatment}", f"Not offered: {e.name}. {' '.join(e.reasons)}", None, status="cancelled"
            )
        )
    plan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "status": "draft",
        "intent": "proposal",
        "title": "Opioid withdrawal plan" + (" and buprenorphine start pathway" if pathway else ""),
        "description": pathway.chart_note if pathway else a.plan.notes[0].text,
        "created": _instant(now),
        "activity": activities,
        "note": [{"text": a.plan.notes[0].text}],
    }
    if patient_ref:
        plan["subject"] = {"reference": patient_ref}
    else:
        plan["subject"] = {"display": "the assessed patient"}
    if supporting:
        plan["supportingInfo"] = [{"reference": r} for r in supporting]
    return plan


def _activity(code: str, text: str, kind: str | None, *, status: str = "not-started") -> dict[str, Any]:
    detail: dict[str, Any] = {
        "code": {"coding": [{"system": OPTION_SYSTEM, "code": code}]},
        "status": status,
        "description": text,
    }
    if kind:
        detail["kind"] = kind
    return {"detail": detail}


def writeback_bundle(
    a: Assessment,
    pathway: Pathway | None,
    *,
    patient_ref: str | None,
    now: datetime,
    derived_from: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A validated transaction Bundle: score Observations, DetectedIssues and the CarePlan (POSTs)."""
    derived_from = derived_from or {}
    resources: list[dict[str, Any]] = []
    for sc in (a.cows, a.sows):
        if sc is not None:
            name = a.kb.scales[sc.scale].name
            resources.append(
                score_observation(
                    sc, name=name, patient_ref=patient_ref, now=now, derived_from=derived_from.get(sc.scale)
                )
            )
    resources += detected_issues(a, patient_ref=patient_ref, now=now)
    urls = [f"urn:uuid:{uuid.uuid4()}" for _ in resources]
    resources.append(care_plan(a, pathway, patient_ref=patient_ref, now=now, supporting=urls))
    urls.append(f"urn:uuid:{uuid.uuid4()}")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": res, "request": {"method": "POST", "url": res["resourceType"]}}
            for url, res in zip(urls, resources, strict=True)
        ],
    }
    validate_r4(bundle)
    return bundle


def system_actions(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Bundle's resources as CDS Hooks 2.0 ``systemActions`` (``create``), for the EHR to store.

    Each action stands alone, so the CarePlan's ``supportingInfo`` (references to the Bundle's own
    ``urn:uuid`` entries, which only a transaction resolves) is left out.
    """
    out = []
    for e in bundle.get("entry", ()):
        res = {k: v for k, v in e["resource"].items() if k != "supportingInfo"}
        out.append({"type": "create", "description": f"Record {res['resourceType']}", "resource": res})
    return out
