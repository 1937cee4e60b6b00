"""What the clinician's first screen says, one severity scale for the pages, and "did you mean".

* :func:`severity` maps every level the pages show (tramadol verdicts and findings, monitoring
  alerts, COWS bands, option findings) onto one five-step scale with one word and one colour
  each. The JSON values stay as they are; this is presentation only.
* :func:`first_screen` picks what must be visible without scrolling: the verdict and its one-line
  reason (the finding the CDS card summary names), what was not screened, the recommended
  alternative with its timing, the latest COWS, and the alerts that are not noise.
* :func:`suggestions` offers close names from the knowledge base for an entry it did not
  recognise (``difflib``, no new dependency).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from withdrawal.knowledge.loader import KnowledgeBase

# One scale, most severe first: key, word shown on the badge.
SCALE: tuple[tuple[str, str], ...] = (
    ("stop", "Stop"),
    ("high", "Serious"),
    ("caution", "Caution"),
    ("note", "Note"),
    ("ok", "No concern"),
)
WORDS = dict(SCALE)
_LEVELS: dict[str, str] = {
    # tramadol verdicts and findings (also option findings)
    "contraindicated": "stop",
    "excluded": "stop",
    "avoid": "high",
    "caution": "caution",
    "acceptable": "ok",
    # monitoring alerts
    "critical": "stop",
    "warning": "high",
    "info": "note",
    # COWS bands
    "severe": "stop",
    "moderately_severe": "high",
    "moderate": "caution",
    "mild": "note",
    "none": "ok",
}


_WORDED = (
    ("contraindicated", "stop"),
    ("boxed", "high"),
    ("serious", "high"),
    ("major", "high"),
    ("warning", "caution"),
    ("moderate", "caution"),
    ("minor", "note"),
)


def severity(level: str | None) -> str:
    """The page scale step of a verdict, finding, alert level or COWS band; an interaction's worded
    severity ("Boxed warning", "Serious (serotonin syndrome)") by its first word; ``note`` if unknown."""
    key = (level or "").strip()
    if key in _LEVELS:
        return _LEVELS[key]
    low = key.lower()
    return next((step for word, step in _WORDED if low.startswith(word)), "note")


def severity_word(level: str | None) -> str:
    return WORDS[severity(level)]


# Alerts that hold for nearly every patient in withdrawal say nothing about this one: they are
# not shown as alerts but where they belong (the buprenorphine threshold is the alternative's timing).
ROUTINE_ALERTS = frozenset({"buprenorphine_threshold_reached"})


@dataclass(frozen=True)
class FirstScreen:
    verdict: str
    reason: str
    reason_code: str | None
    more_findings: int
    alternative: Mapping[str, Any] | None
    not_screened: tuple[str, ...]
    alerts: tuple[Any, ...]
    routine_alerts: tuple[Any, ...]


def _reason(findings: Sequence[Mapping[str, Any]], verdict: str) -> tuple[str, str | None]:
    """The one-line reason: the first finding at the verdict's level that is not the incomplete
    screen (named on its own line), with what triggered it."""
    at_level = [f for f in findings if f["level"] == verdict]
    named = [f for f in at_level if f["code"] != "incomplete_screen"] or at_level
    if not named:
        return "No reason against tramadol found in the recorded data.", None
    f = named[0]
    text = str(f["message"]).strip()
    triggers = [str(t) for t in f.get("triggers") or ()]
    if triggers and f["code"] != "incomplete_screen":
        text += f" (because of {', '.join(triggers[:3])})"
    return text, str(f["code"])


def first_screen(a: Mapping[str, Any], alerts: Iterable[Any]) -> FirstScreen:
    t = a["tramadol"]
    findings = list(t.get("findings") or ())
    reason, code = _reason(findings, t["verdict"])
    options = [o for o in a.get("options") or () if o.get("treatment") != "tramadol"]
    all_alerts = list(alerts)
    return FirstScreen(
        verdict=t["verdict"],
        reason=reason,
        reason_code=code,
        more_findings=max(0, len(findings) - (1 if code else 0)),
        alternative=options[0] if options else None,
        not_screened=tuple(a.get("not_screened") or ()),
        alerts=tuple(x for x in all_alerts if x.code not in ROUTINE_ALERTS),
        routine_alerts=tuple(x for x in all_alerts if x.code in ROUTINE_ALERTS),
    )


# --- tap to call -------------------------------------------------------------------------------

# The numbers of the public resources in care.yaml as links a phone can dial or text. Presentation
# only: a test checks that every number here is written in the resource's own contact text.
DIAL: dict[str, tuple[tuple[str, str], ...]] = {
    "lifeline_988": (("Call 988", "tel:988"), ("Text 988", "sms:988")),
    "emergency_911": (("Call 911", "tel:911"),),
    "samhsa_helpline": (
        ("Call 1-800-662-4357", "tel:+18006624357"),
        ("TTY 1-800-487-4889", "tel:+18004874889"),
        ("Text your ZIP code to 435748", "sms:435748"),
    ),
}


# --- did you mean ---------------------------------------------------------------------------


def _vocabulary(kb: KnowledgeBase) -> tuple[list[str], list[str]]:
    drugs = sorted(set(kb.drug_names))
    words = {k.replace("_", " ") for k in kb.conditions}
    words |= {k[4:] for k in kb.condition_codes if k.startswith("TXT:")}
    return drugs, sorted(words)


_VOCAB: dict[int, tuple[KnowledgeBase, tuple[list[str], list[str]]]] = {}


def vocabulary(kb: KnowledgeBase) -> tuple[list[str], list[str]]:
    """Drug names and brands; condition keys (spaces for underscores) and plain words."""
    hit = _VOCAB.get(id(kb))
    if hit is None or hit[0] is not kb:
        hit = (kb, _vocabulary(kb))
        _VOCAB[id(kb)] = hit
    return hit[1]


def suggestions(text: str, kind: str, kb: KnowledgeBase, n: int = 3) -> list[str]:
    """Up to ``n`` close names for an unrecognised entry: drug names for medications and
    allergies, condition words for conditions."""
    drugs, conditions = vocabulary(kb)
    pool = conditions if kind == "condition" else drugs
    query = " ".join(text.lower().replace("-", " ").split())
    if not query:
        return []
    found = difflib.get_close_matches(query, pool, n=n, cutoff=0.72)
    if len(found) < n:  # a misspelt word inside a longer entry ("hx of epilepsy")
        for word in re.findall(r"[a-z][a-z ]{3,}", query):
            for m in difflib.get_close_matches(word.strip(), pool, n=n, cutoff=0.8):
                if m not in found:
                    found.append(m)
    return found[:n]


_UNRESOLVED = re.compile(r"^(medication|allergy|condition): (.*)$", re.S)


@dataclass(frozen=True)
class Unrecognised:
    field: str  # the form field: conditions, current_medications, stopped_medications, allergies
    kind: str  # condition, medication, allergy
    entry: str  # the line as typed (without its number)
    suggestions: tuple[str, ...]


def unrecognised_entries(data: Mapping[str, Any], kb: KnowledgeBase) -> list[Unrecognised]:
    """Every entry of a patient record the knowledge base does not know, with suggestions.

    Conditions outside the screen's scope are listed too: the form invites codes and plain words,
    and a clinician who typed one should know it was not read.
    """

    out: list[Unrecognised] = []
    for text in data.get("conditions") or ():
        if kb.lookup_condition(str(text)) is None:
            out.append(
                Unrecognised("conditions", "condition", str(text), tuple(suggestions(str(text), "condition", kb)))
            )
    for med in data.get("medications") or ():
        name = med.get("name")
        if not name or med.get("rxnorm"):
            continue
        if not kb.resolve_drug_name(str(name)):
            field = "stopped_medications" if med.get("status") == "stopped" else "current_medications"
            out.append(Unrecognised(field, "medication", str(name), tuple(suggestions(str(name), "drug", kb))))
    for name in data.get("allergies") or ():
        if not kb.resolve_drug_name(str(name)):
            out.append(Unrecognised("allergies", "allergy", str(name), tuple(suggestions(str(name), "drug", kb))))
    return out


def replace_entry(form: Mapping[str, str], field: str, entry: str, new: str | None) -> dict[str, str]:
    """The form with one line of ``field`` whose name is ``entry`` replaced by ``new`` (its number
    after a comma kept), or removed when ``new`` is None."""
    lines = str(form.get(field) or "").splitlines()
    out: list[str] = []
    done = False
    for line in lines:
        name, sep, rest = line.rpartition(",")
        if field == "conditions" or not sep:
            head, sep = line.strip(), ""
        else:
            head = name.strip()
        if not done and head == entry:
            done = True
            if new is not None:
                out.append(f"{new}, {rest.strip()}" if sep else new)
            continue
        out.append(line)
    return {**form, field: "\n".join(out)}


__all__ = [
    "DIAL",
    "ROUTINE_ALERTS",
    "SCALE",
    "FirstScreen",
    "Unrecognised",
    "first_screen",
    "replace_entry",
    "severity",
    "severity_word",
    "suggestions",
    "unrecognised_entries",
]
