"""CDS Hooks cards built from the assessment's findings, by one set of functions.

Indicator: a contraindication is ``critical``, an ``avoid`` finding ``warning``, a
``caution`` ``info``. Every card's ``source`` carries a URL from the assessment's
cited sources. Suggestions (with ``selectionBehavior``) remove the tramadol order
or replace it with buprenorphine/naloxone when buprenorphine is not excluded.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, get_args

from withdrawal.assess import Assessment
from withdrawal.fhir.codes import RXNORM
from withdrawal.knowledge.base import Trust
from withdrawal.knowledge.loader import INCOMPLETE_SCREEN
from withdrawal.pathway import Pathway
from withdrawal.safety.screen import Finding, dose_limit

INDICATOR = {"contraindicated": "critical", "avoid": "warning", "caution": "info", "acceptable": "info"}
OVERRIDE_SYSTEM = "urn:withdrawal:cds:override-reason"
# The answers a clinician can pick when overriding a card, returned in CDS Hooks feedback: this
# service's own code system (wire format), not clinical advice, so kept here rather than in the
# knowledge base; what a card advises is the knowledge base's, with its sources.
OVERRIDE_REASONS = [
    {"system": OVERRIDE_SYSTEM, "code": code, "display": display}
    for code, display in (
        ("benefit-outweighs-risk", "Benefit outweighs the risk for this patient"),
        ("monitoring-in-place", "Risk accepted with close monitoring in place"),
        ("data-incorrect", "The patient data behind this card is wrong"),
        ("not-applicable", "Not applicable to this patient"),
    )
]
TOPIC_SYSTEM = "urn:withdrawal:cds:finding"
DOSE_NOT_READ = "tramadol_dose_not_read"
"""The care statement a card gives when a draft tramadol order's daily dose could not be read."""
LABEL = "withdrawal decision support"


@dataclass(frozen=True)
class DraftOrder:
    """A draft MedicationRequest: its id, ingredient ids and daily dose if readable."""

    resource_id: str | None
    drugs: tuple[str, ...]
    dose_mg_per_day: float | None
    name: str
    has_dosage: bool = False
    release: str = "immediate"
    identified: bool = True
    """False: no code and no name; ``name`` is then the mapper's naming of the record (it says so)."""


def _clip(text: str, n: int = 140) -> str:
    return text if len(text) < n else text[: n - 2].rstrip() + "…"


class _Cited:
    """The sources the assessment cites, read from the knowledge base on demand.

    The cards need a few titles and links, not the whole JSON answer, so the
    assessment is not serialised (``Assessment.to_dict`` costs more than the screen).
    A card cites the sources of its finding, dose limit or option, which the
    assessment cites too, and every cited id is a registered source (checked at
    load); so ``has`` asks the registry, and the full list (which needs the whole
    plan) is built only when a card has no source of its own.
    """

    def __init__(self, a: Assessment) -> None:
        self.a = a

    @cached_property
    def ids(self) -> list[str]:
        return self.a.cited_ids()

    def has(self, sid: str) -> bool:
        return sid in self.a.kb.sources

    def title(self, sid: str) -> str:
        return self.a.kb.sources[sid].title

    def link(self, sid: str) -> str:
        return self.a.kb.sources[sid].link

    def trust(self, sid: str) -> str:
        return self.a.kb.sources[sid].trust

    @property
    def off_label(self) -> str:
        return self.a.screen.off_label.text

    @property
    def disclaimer(self) -> str:
        return self.a.plan.notes[0].text


_RANK = {level: i for i, level in enumerate(get_args(Trust))}


def _by_trust(cited: _Cited, ids: Sequence[str]) -> list[str]:
    """The registered ids among ``ids``, most trusted first (the data's order within a level)."""
    return sorted((s for s in ids if cited.has(s)), key=lambda s: _RANK[cited.trust(s)])


def _source(cited: _Cited, ids: Sequence[str], topic: str | None = None) -> dict[str, Any]:
    """The card's source: the most trusted of ``ids`` (the first of them at that level)."""
    known = _by_trust(cited, ids)
    sid = known[0] if known else next(iter(cited.ids), None)
    if sid is None:
        return {"label": LABEL, "url": "https://cds-hooks.hl7.org/2.0/"}
    src = cited.a.kb.sources[sid]
    out: dict[str, Any] = {"label": _clip(f"{src.title} ({src.organisation})", 200)}
    if src.link.startswith("https://"):
        out["url"] = src.link
    if topic:
        out["topic"] = {"system": TOPIC_SYSTEM, "code": topic, "display": topic.replace("_", " ")}
    return out


_TRUST_NOTE = {"primary": "", "secondary": " (secondary source)", "low": " (low-trust source)"}


def _links_md(cited: _Cited, ids: Sequence[str]) -> str:
    """The sources as a markdown list, primary ones first, the others marked as such."""
    return "\n".join(
        f"- [{cited.title(s)}]({cited.link(s)}){_TRUST_NOTE[cited.trust(s)]}" if cited.link(s).startswith("https://")
        else f"- {cited.title(s)}{_TRUST_NOTE[cited.trust(s)]}"
        for s in _by_trust(cited, ids)
    )


def _delete(order: DraftOrder) -> dict[str, Any]:
    action: dict[str, Any] = {"type": "delete", "description": f"Remove the draft order: {order.name}"}
    if order.resource_id:
        # CDS Hooks 2.0: resourceId is a string, the relative reference of the resource to delete
        action["resourceId"] = f"MedicationRequest/{order.resource_id}"
    return action


def bup_nx_order(a: Assessment, patient_ref: str) -> dict[str, Any]:
    """A draft buprenorphine/naloxone MedicationRequest an EHR can apply: status, intent, subject, an
    RxNorm-coded medication (the ingredient code of the vocabulary; the EHR picks the product and
    strength), the product named by the option's ``order_product`` and the dosage and route as
    text from the cited option."""
    bup = a.kb.drugs["buprenorphine"]
    treatment = a.kb.treatment("buprenorphine")
    coding = [{"system": RXNORM, "code": bup.rxcui, "display": "buprenorphine"}] if bup.rxcui else []
    route = f" {treatment.route}" if treatment.route else ""
    product = treatment.order_product or bup.name
    dosage: dict[str, Any] = {"text": treatment.dosing}
    if treatment.route:
        dosage["route"] = {"text": treatment.route}
    return {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": patient_ref},
        "medicationCodeableConcept": {"coding": coding,
                                      "text": f"{product}{route} (product per local formulary)"},
        "dosageInstruction": [dosage],
    }


def _suggestions(a: Assessment, orders: Sequence[DraftOrder], patient_ref: str | None, replace: bool) -> list[Any]:
    deletes = [_delete(o) for o in orders]
    out: list[dict[str, Any]] = []
    bup_excluded = any(e.treatment == "buprenorphine" for e in a.excluded)
    product = a.kb.treatment("buprenorphine").order_product
    if replace and not bup_excluded and patient_ref and product and a.kb.drugs["buprenorphine"].rxcui:
        # the verbs are the card's UI; what it proposes is the option's order product (care.yaml)
        out.append(
            {
                "label": f"Replace with {product}",
                "uuid": str(uuid.uuid4()),
                "isRecommended": True,
                "actions": [*deletes, {"type": "create", "description": f"Order {product} instead",
                                       "resource": bup_nx_order(a, patient_ref)}],
            }
        )
    out.append({"label": "Remove the order", "uuid": str(uuid.uuid4()), "actions": deletes})
    return out


def _card(
    summary: str, indicator: str, detail: str, source: dict[str, Any], suggestions: list[Any] | None = None
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": _clip(summary),
        "indicator": indicator,
        "detail": detail,
        "source": source,
    }
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    if indicator in ("critical", "warning"):
        card["overrideReasons"] = OVERRIDE_REASONS
    return card


def _finding_detail(f: Finding, cited: _Cited) -> str:
    triggers = ", ".join(f.triggers)
    return (
        f"**{f.message}**\n\n{f.action}\n\nBecause of: {triggers}\n\nSources:\n{_links_md(cited, f.sources)}\n\n"
        f"_{cited.off_label}_"
    )


def tramadol_order_cards(a: Assessment, orders: Sequence[DraftOrder], patient_ref: str | None) -> list[dict[str, Any]]:
    """Cards for draft tramadol orders: one per blocking or risky finding, cautions together, dose."""
    cited = _Cited(a)
    cards: list[dict[str, Any]] = []
    incomplete = incomplete_card(a, cited)
    if incomplete:
        cards.append(incomplete)
    for f in a.screen.findings:
        if f.level not in ("contraindicated", "avoid"):
            continue
        cards.append(
            _card(
                f"Tramadol: {f.code.replace('_', ' ')} ({f.level}). {f.message}",
                INDICATOR[f.level],
                _finding_detail(f, cited),
                _source(cited, f.sources, f.code),
                _suggestions(a, orders, patient_ref, replace=True),
            )
        )
    cautions = [f for f in a.screen.findings if f.level == "caution"]
    if cautions:
        detail = "\n\n".join(f"- **{f.code.replace('_', ' ')}**: {f.message} {f.action}" for f in cautions)
        ids = [s for f in cautions for s in f.sources]
        cards.append(
            _card(
                f"Tramadol: {len(cautions)} caution(s): " + ", ".join(f.code for f in cautions),
                "info",
                detail + "\n\nSources:\n" + _links_md(cited, list(dict.fromkeys(ids))),
                _source(cited, ids, "cautions"),
            )
        )
    for o in orders:
        limit = a.screen.dose_limit if o.release == "immediate" else dose_limit(a.patient, a.kb, o.release)
        if limit.max_daily_mg == 0:
            cards.append(
                _card(
                    f"Extended-release tramadol is not for this patient: {limit.reason}",
                    "warning",
                    f"{o.name}: {limit.reason}\n\nSources:\n{_links_md(cited, limit.sources)}",
                    _source(cited, limit.sources, "dose_limit_er"),
                    _suggestions(a, [o], patient_ref, replace=False),
                )
            )
            continue
        if o.dose_mg_per_day is None:
            given = "its dosage could not be read (unit, strength or timing)" if o.has_dosage else "it has no dosage"
            advice = a.kb.statement(DOSE_NOT_READ)
            ids = list(dict.fromkeys([*advice.sources, *limit.sources]))
            cards.append(
                _card(
                    f"Tramadol dose not checked: {given}",
                    "warning" if o.has_dosage else "info",
                    f"{o.name}: {advice.text} This patient's limit: {limit.max_daily_mg} mg/day, every "
                    f"{limit.interval_h} h at the most often. {limit.reason}"
                    f"\n\nSources:\n{_links_md(cited, ids)}",
                    _source(cited, limit.sources, "dose_not_checked"),
                )
            )
        elif o.dose_mg_per_day > limit.max_daily_mg:
            form = "" if o.release == "immediate" else f" ({o.release} release)"
            cards.append(
                _card(
                    f"Tramadol dose {o.dose_mg_per_day:g} mg/day exceeds this patient's limit{form} "
                    f"of {limit.max_daily_mg} mg/day",
                    "warning",
                    f"{limit.reason}\n\nSources:\n{_links_md(cited, limit.sources)}",
                    _source(cited, limit.sources, "dose_limit"),
                    _suggestions(a, orders, patient_ref, replace=False),
                )
            )
    if not any(c["indicator"] in ("critical", "warning") for c in cards):
        limit = a.screen.dose_limit
        cards.append(
            _card(
                f"Tramadol: no patient-specific contraindication found (max {limit.max_daily_mg} mg/day)",
                "info",
                f"{cited.off_label}\n\nThis is not a recommendation: see the ranked options.{_unlisted(a)}",
                _source(cited, limit.sources, "no_finding"),
            )
        )
    return cards


def _unlisted(a: Assessment) -> str:
    """Codes the knowledge base did not recognise and that lie outside the screen's scope: listed, not screened."""
    if not a.patient.out_of_scope:
        return ""
    return "\n\nNot recognised (outside what the screen looks at, listed only): " + "; ".join(a.patient.out_of_scope)


def incomplete_card(a: Assessment, cited: _Cited) -> dict[str, Any] | None:
    """What the screen could not resolve, named first: an incomplete screen is never a clean one.

    A warning (not info) card, so that an EHR that shows only warnings still shows it.
    """
    f = next((f for f in a.screen.findings if f.code == INCOMPLETE_SCREEN), None)
    if f is None:
        return None
    return _card(
        "Tramadol: incomplete screen, not screened: " + "; ".join(a.patient.unresolved),
        "warning",
        _finding_detail(f, cited),
        _source(cited, f.sources, f.code),
    )


def interacting_order_cards(a: Assessment, orders: Sequence[DraftOrder]) -> list[dict[str, Any]]:
    """Cards for draft orders of other drugs that interact with the patient's tramadol."""
    cited = _Cited(a)
    cards: list[dict[str, Any]] = []
    for o in orders:
        for f in a.screen.findings:
            if f.level == "acceptable" or not set(o.drugs) & set(f.triggers):
                continue
            cards.append(
                _card(
                    f"{o.name[:60]} with the patient's tramadol: {f.code.replace('_', ' ')} ({f.level})",
                    INDICATOR[f.level],
                    _finding_detail(f, cited),
                    _source(cited, f.sources, f.code),
                    [{"label": "Remove the order", "uuid": str(uuid.uuid4()), "actions": [_delete(o)]}],
                )
            )
    return cards


def unscreened_order_card(a: Assessment, order: DraftOrder) -> dict[str, Any]:
    """A draft order whose medication could not be identified: said so, never silence.

    What it says and cites is the knowledge base's incomplete-screen rule, with the order named as
    the item that was not screened."""
    cited = _Cited(a)
    rule = a.kb.rule(INCOMPLETE_SCREEN)
    summary = (f"Order not screened: {order.name[:80]} could not be identified" if order.identified
               else f"Order not screened: {_clip(order.name, 120)}")
    return _card(
        summary,
        "warning",
        f"**{rule.message}**\n\nNot screened: the draft order {order.name}\n\n{rule.action}"
        f"\n\nSources:\n{_links_md(cited, rule.sources)}\n\n_{cited.off_label}_",
        _source(cited, rule.sources, "order_not_screened"),
    )


def patient_view_card(a: Assessment, *, on_tramadol: bool | None = None) -> dict[str, Any]:
    """Withdrawal status, tramadol verdict and the next step, in one card.

    ``on_tramadol``: the patient takes tramadol (given when the screen left the patient's own tramadol out)."""
    cited = _Cited(a)
    verdict = a.screen.verdict
    on_tramadol = "tramadol" in a.patient.active_drugs if on_tramadol is None else on_tramadol
    indicator = INDICATOR[verdict] if on_tramadol else "info"
    top = a.plan.options[0] if a.plan.options else None
    cows = a.cows
    status = f"COWS {cows.total} ({cows.band_label or cows.band})" if cows else "no COWS recorded"
    next_step = top.name if top else "see the plan"
    lines = [f"- **Not screened**: {'; '.join(a.patient.unresolved)}"] if a.patient.unresolved else []
    lines += [f"- Withdrawal: {status}", f"- Tramadol verdict: **{verdict}** (max {a.screen.max_daily_dose_mg} mg/day)"]
    lines += [f"  - {f.level}: {f.message}" for f in a.screen.findings]
    if top:
        lines.append(f"- Next step: **{top.name}**: {top.summary}")
    ids = [s for f in a.screen.findings for s in f.sources] + (list(top.sources) if top else [])
    return _card(
        f"Opioid withdrawal: tramadol {verdict}; next step: {next_step}",
        indicator,
        "\n".join(lines) + _unlisted(a) + f"\n\n_{cited.disclaimer}_",
        _source(cited, ids, "patient_view"),
    )


def pathway_card(a: Assessment, p: Pathway) -> dict[str, Any] | None:
    """The buprenorphine start pathway in one card: which start, the first days, cautions, hand-off.

    Never proposes a start where the plan excludes buprenorphine (the card says why instead);
    None when the patient already takes buprenorphine (the patient-view card says to review it).
    """
    if p.status == "already_on":
        return None
    cited = _Cited(a)
    lines = [f"**{p.headline}**"]
    if p.not_screened:
        lines.insert(0, f"- **Not screened**: {'; '.join(p.not_screened)}")
    lines += [f"- {f.level}: {f.message}" for f in p.findings]
    if p.status == "available":
        first = p.starts[0]
        if first.now:
            lines.append(f"- Now: {first.now}")
        if first.schedules:
            sc = first.schedules[0]
            lines.append(f"- {sc.name}{'' if sc.verified else ' (unverified)'}:")
            lines += [f"  - Day {d.day}: {d.buprenorphine}; full agonist: {d.full_agonist}" for d in sc.days]
        lines += [f"- Alternative: {s.name}" for s in p.starts[1:]]
    elif p.alternatives:
        lines.append("- Options instead: " + ", ".join(p.alternatives))
    lines += [f"- Hand-off: {s.text}{'' if s.verified else ' (unverified)'}" for s in p.handoff]
    blocking = any(f.level in ("avoid", "contraindicated") for f in p.findings)
    indicator = "warning" if p.status == "excluded" or blocking else "info"
    summary = (
        f"Buprenorphine start: {p.starts[0].name}"
        if p.status == "available"
        else "Buprenorphine start: not for this patient now"
    )
    ids = [*(s for st in p.starts[:1] for s in st.sources), *(s for f in p.findings for s in f.sources)]
    return _card(
        summary,
        indicator,
        "\n".join(lines) + f"\n\nSources:\n{_links_md(cited, list(dict.fromkeys(p.sources)))}\n\n_{cited.disclaimer}_",
        _source(cited, ids or list(p.sources), "buprenorphine_pathway"),
    )
