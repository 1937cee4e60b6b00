"""Interaction checker: a medication list against tramadol and against each other."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import Interaction, PairInteraction
from withdrawal.patient import resolve_drug_name


@dataclass(frozen=True)
class TramadolInteraction:
    drug: str
    interaction: Interaction


@dataclass(frozen=True)
class PairHit:
    first: str
    second: str
    interaction: PairInteraction


@dataclass(frozen=True)
class InteractionReport:
    drugs: tuple[str, ...]
    with_tramadol: tuple[TramadolInteraction, ...]
    between: tuple[PairHit, ...]
    unrecognised: tuple[str, ...]


def _refs(drug_id: str, kb: KnowledgeBase) -> set[str]:
    return {drug_id, *kb.drugs[drug_id].classes}


def tramadol_interactions(drug_id: str, kb: KnowledgeBase) -> list[Interaction]:
    """Knowledge-base interactions of one drug with tramadol (indexed at load: this runs per adjunct and drug)."""
    return list(kb.tramadol_interactions_of[drug_id])


def _pair_hits(a: str, b: str, kb: KnowledgeBase) -> Iterable[PairHit]:
    ra, rb = _refs(a, kb), _refs(b, kb)
    for pair in kb.tramadol.pair_interactions:
        first, second = set(pair.first), set(pair.second)
        if (ra & first and rb & second) or (rb & first and ra & second):
            yield PairHit(a, b, pair)


def check_interactions(names: Sequence[str], kb: KnowledgeBase) -> InteractionReport:
    """Resolve names (generic or brand) and report every known interaction."""
    drugs: list[str] = []
    unrecognised: list[str] = []
    for name in names:
        ids = resolve_drug_name(name, kb)
        if not ids:
            unrecognised.append(name)
        drugs.extend(i for i in ids if i not in drugs)
    with_tramadol = [
        TramadolInteraction(d, ia) for d in drugs if d != "tramadol" for ia in tramadol_interactions(d, kb)
    ]
    between = [hit for a, b in combinations([d for d in drugs if d != "tramadol"], 2) for hit in _pair_hits(a, b, kb)]
    return InteractionReport(
        drugs=tuple(drugs),
        with_tramadol=tuple(with_tramadol),
        between=tuple(between),
        unrecognised=tuple(unrecognised),
    )
