"""Interaction checker: a medication list against tramadol and against each other.

It reads the screen's own data: what interacts with tramadol is the tramadol rules whose drug
tests name the drug or one of its classes; what interacts with a management option is the option
rules (``care.yaml``); other pairs that matter in withdrawal care are ``pair_interactions``. So
the checker and the screen cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Match, Rule


@dataclass(frozen=True)
class TramadolInteraction:
    drug: str
    code: str
    severity: str
    effect: str
    management: str
    sources: tuple[str, ...]
    verification: str


@dataclass(frozen=True)
class PairHit:
    first: str
    second: str
    severity: str
    effect: str
    management: str
    sources: tuple[str, ...]
    verification: str


@dataclass(frozen=True)
class InteractionReport:
    drugs: tuple[str, ...]
    with_tramadol: tuple[TramadolInteraction, ...]
    between: tuple[PairHit, ...]
    unrecognised: tuple[str, ...]


def _refs(drug_id: str, kb: KnowledgeBase) -> set[str]:
    return {drug_id, *kb.drugs[drug_id].classes}


def tramadol_interactions(drug_id: str, kb: KnowledgeBase) -> list[Rule]:
    """The tramadol rules whose drug tests name this drug or its classes (indexed at load)."""
    return list(kb.tramadol_interactions_of[drug_id])


def _names_drug(m: Match, refs: set[str]) -> bool:
    return bool(refs & {*m.drugs_any, *m.drug_classes_any})


def _pair_hits(a: str, b: str, kb: KnowledgeBase) -> Iterable[PairHit]:
    ra, rb = _refs(a, kb), _refs(b, kb)
    for pair in kb.tramadol.pair_interactions:
        first, second = set(pair.first), set(pair.second)
        if (ra & first and rb & second) or (rb & first and ra & second):
            yield PairHit(a, b, pair.severity, pair.effect, pair.management, pair.sources, pair.verification)
    for rule in kb.care.option_rules:
        for x, y, ry in ((a, b, rb), (b, a, ra)):
            treats = {kb.treatment(t).drug for t in rule.treatments}
            if x in treats and any(_names_drug(m, ry) for m in rule.when):
                yield PairHit(x, y, rule.level, rule.message, rule.action, rule.sources, rule.verification)


# A number keeps its separators ("10/325", "1,000", "0.5mg"); between words "/" and "," separate names
# ("tramadol/acetaminophen", "sertraline,fluoxetine"), as the patient model's name scan reads them.
_TOKEN = re.compile(r"\d[\d.,/]*[A-Za-z%]*|[\w']+")

def resolve_names(text: str, kb: KnowledgeBase) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
    """Every name in ``text`` resolved or listed: ``([(name, ingredient ids)], [unrecognised])``.

    The whole text first (a known multi-word name or brand); otherwise, word by word, the longest
    run of words that is a known name ("St John's wort" before "wort"), so names separated by spaces
    are each resolved, and a run of unknown words is listed as one entry ("Zoloft Xanax methadone
    kratom" gives sertraline, alprazolam, methadone, and kratom unless the knowledge base knows it).
    Doses and the vocabulary's product words (units, forms, routes, salts: :meth:`KnowledgeBase.product_word`,
    as the patient model reads a medication name) are skipped.
    """
    whole = kb.lookup_drug(text)
    if whole:
        return [(text.strip(), whole)], []
    words = _TOKEN.findall(text)
    found: list[tuple[str, tuple[str, ...]]] = []
    unknown: list[str] = []
    pending: list[str] = []
    i = 0
    while i < len(words):
        ids: tuple[str, ...] = ()
        j = len(words)
        while j > i:
            ids = kb.lookup_drug(" ".join(words[i:j]))
            if ids:
                break
            j -= 1
        if ids:
            if pending:
                unknown.append(" ".join(pending))
                pending = []
            found.append((" ".join(words[i:j]), ids))
            i = j
            continue
        if not kb.product_word(words[i]):
            pending.append(words[i])
        elif pending:
            unknown.append(" ".join(pending))
            pending = []
        i += 1
    if pending:
        unknown.append(" ".join(pending))
    if not found and not unknown and text.strip():
        fallback = kb.resolve_drug_name(text)
        if fallback:
            return [(text.strip(), fallback)], []
    return found, unknown


def check_interactions(names: Sequence[str], kb: KnowledgeBase) -> InteractionReport:
    """Resolve names (generic or brand) and report every known interaction; unknown names are listed.

    Each entry may hold several names separated by spaces: every one is resolved or listed
    (:func:`resolve_names`), none is dropped.
    """
    drugs: list[str] = []
    unrecognised: list[str] = []
    for name in names:
        found, unknown = resolve_names(name, kb)
        unrecognised.extend(u for u in unknown if u not in unrecognised)
        for _, ids in found:
            drugs.extend(i for i in ids if i not in drugs)
    with_tramadol = [
        TramadolInteraction(d, r.code, r.level, r.message, r.action, r.sources, r.verification)
        for d in drugs
        if d != "tramadol"
        for r in tramadol_interactions(d, kb)
    ]
    between: list[PairHit] = []
    for a, b in combinations([d for d in drugs if d != "tramadol"], 2):
        for hit in _pair_hits(a, b, kb):
            if hit not in between:
                between.append(hit)
    return InteractionReport(
        drugs=tuple(drugs),
        with_tramadol=tuple(with_tramadol),
        between=tuple(between),
        unrecognised=tuple(unrecognised),
    )
