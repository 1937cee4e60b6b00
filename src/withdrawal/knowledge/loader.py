"""Load the core knowledge base, check it whole, and index it for fast lookup.

The loader refuses to return a knowledge base in which any entry lacks a
source, cites an unregistered source, or refers to a drug, class or condition
that is not defined: a half-valid knowledge base is worse than none.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import (
    Cited,
    Source,
    check_citations,
    data_dir,
    load_sources,
    read_yaml,
    validate,
)
from withdrawal.knowledge.models import (
    BuprenorphinePathway,
    Care,
    Condition,
    Drug,
    DrugClass,
    Match,
    Rule,
    Scale,
    ScreenScope,
    Timeline,
    TramadolRules,
    Treatment,
    Vocabulary,
)

ICD10_MAX_LEN = 7
MEMO_MAX = 4096
MEMO_KEY_MAX = 256
T = TypeVar("T")


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").split())


@dataclass(frozen=True)
class KnowledgeBase:
    """The validated knowledge base with lookup indexes."""

    version: str
    sources: Mapping[str, Source]
    vocabulary: Vocabulary
    tramadol: TramadolRules
    scales: Mapping[str, Scale]
    care: Care
    drugs: Mapping[str, Drug] = field(repr=False)
    classes: Mapping[str, DrugClass] = field(repr=False)
    conditions: Mapping[str, Condition] = field(repr=False)
    drug_names: Mapping[str, tuple[str, ...]] = field(repr=False)
    drug_rxcui: Mapping[str, str] = field(repr=False)
    condition_codes: Mapping[str, str] = field(repr=False)
    drug_class_members: Mapping[str, frozenset[str]] = field(repr=False)
    tramadol_interactions_of: Mapping[str, tuple[Rule, ...]] = field(repr=False)
    """Drug id -> the tramadol rules whose drug tests name it or one of its classes: the interaction
    checker reads the screen's own rules, so the two cannot disagree."""
    washout_days: int = 0
    """The longest ``stopped_within_days`` any rule uses: a medication stopped that recently still counts."""
    pathway: BuprenorphinePathway | None = field(default=None, repr=False)
    """The buprenorphine start pathway (pathway.yaml); always set by :func:`load_kb`."""
    _memo: dict[str, dict[str, Any]] = field(init=False, default_factory=dict, repr=False, compare=False)

    def memo(self, name: str) -> dict[str, Any]:
        """The cache table ``name`` (see :meth:`memoized`); emptied when it reaches ``MEMO_MAX`` entries."""
        table = self._memo.get(name)
        if table is None or len(table) >= MEMO_MAX:
            table = self._memo[name] = {}
        return table

    def memoized(self, name: str, text: str, compute: Callable[[str], T]) -> T:
        """``compute(text)``, cached: for pure lookups of text on this knowledge base.

        The same medication and condition texts recur from patient to patient, and a
        loaded knowledge base never changes; ``dataclasses.replace`` gives a copy an
        empty cache. Bounded in entries (``MEMO_MAX``) and in key length
        (``MEMO_KEY_MAX``: longer texts are computed, not kept), so input cannot
        grow it without limit.
        """
        if len(text) > MEMO_KEY_MAX:
            return compute(text)
        table = self.memo(name)
        if text in table:
            return table[text]  # type: ignore[no-any-return]
        value = table[text] = compute(text)
        return value

    def lookup_drug(self, text: str) -> tuple[str, ...]:
        """Ingredient ids for a generic, synonym or brand name (any case); () if unknown."""
        return self.drug_names.get(_norm(text), ())

    def lookup_condition(self, text: str) -> str | None:
        """Condition key for a key, an ICD-10-CM code (child codes too) or a SNOMED CT id."""
        return self.memoized("condition", text, self._lookup_condition)

    def _lookup_condition(self, text: str) -> str | None:
        raw = text.strip()
        if raw.lower() in self.conditions:
            return raw.lower()
        by_word = self.condition_codes.get("TXT:" + _norm(raw))
        if by_word:
            return by_word
        code = raw.upper()
        if code in self.condition_codes:
            return self.condition_codes[code]
        compact = code.replace(".", "")
        if len(compact) == 7 and compact[0].isdigit():  # ICD-10-PCS: the first 4 characters name the operation
            return self.condition_codes.get("PCS:" + compact[:4])
        # ICD-10-CM is hierarchical: G40.909 belongs to G40; try ever shorter prefixes.
        # An ICD-10-CM code has at most 7 characters without the dot, so longer prefixes
        # (of a display text, say) cannot match and are not tried.
        for cut in range(min(len(compact) - 1, ICD10_MAX_LEN), 2, -1):
            key = self.condition_codes.get("ICD:" + compact[:cut])
            if key:
                return key
        return self.condition_codes.get("ICD:" + compact) or self.condition_codes.get("SCT:" + raw)

    def condition_scope(self, text: str) -> ScreenScope | None:
        """The scope entry an unresolved condition code falls in, or None (out of the screen's scope)."""
        raw = text.strip()
        code = raw.upper().replace(".", "")
        for scope in self.vocabulary.condition_scope:
            if raw in scope.snomed:
                return scope
            if not re.fullmatch(r"[A-Z][0-9][0-9A-Z]{0,5}", code):
                continue
            if any(code.startswith(x.replace(".", "")) for x in scope.icd10cm_excluded_prefixes):
                continue
            if any(code.startswith(x.replace(".", "")) for x in scope.icd10cm_prefixes):
                return scope
        return None

    def timeline(self, substance: str) -> Timeline | None:
        for t in self.care.timelines:
            if t.substance == substance:
                return t
        return None

    def treatment(self, treatment_id: str) -> Treatment:
        for t in self.care.treatments:
            if t.id == treatment_id:
                return t
        raise KeyError(treatment_id)


def _cited_entries(kb_parts: Iterable[tuple[str, Iterable[object]]]) -> list[tuple[str, Cited]]:
    out: list[tuple[str, Cited]] = []
    for where, items in kb_parts:
        for item in items:
            if isinstance(item, Cited):
                name = getattr(item, "id", None) or getattr(item, "key", None) or where
                out.append((f"{where}:{name}", item))
    return out


def _check_matches(
    matches: Iterable[Match],
    where: str,
    drugs: Mapping[str, Drug],
    classes: Mapping[str, DrugClass],
    conditions: Mapping[str, Condition],
) -> None:
    for m in matches:
        for d in (*m.drugs_any, *m.allergy_drugs_any):
            if d not in drugs:
                raise KnowledgeBaseError(f"{where}: unknown drug {d!r}")
        for c in m.drug_classes_any:
            if c not in classes:
                raise KnowledgeBaseError(f"{where}: unknown drug class {c!r}")
        for k in m.conditions_any:
            if k not in conditions:
                raise KnowledgeBaseError(f"{where}: unknown condition {k!r}")


def _index_names(drugs: Iterable[Drug]) -> dict[str, tuple[str, ...]]:
    names: dict[str, list[str]] = defaultdict(list)
    for d in drugs:
        for n in {d.id.replace("_", " "), d.name, *d.synonyms, *d.brands}:
            key = _norm(n)
            if d.id not in names[key]:
                names[key].append(d.id)
    return {k: tuple(v) for k, v in names.items()}


def _index_conditions(conditions: Iterable[Condition]) -> dict[str, str]:
    codes: dict[str, str] = {}
    for c in conditions:
        for icd in c.icd10cm:
            codes[icd.upper()] = c.key
            codes["ICD:" + icd.upper().replace(".", "")] = c.key
        for sct in c.snomed:
            codes[sct] = c.key
            codes["SCT:" + sct] = c.key
        for pcs in c.icd10pcs:
            codes["PCS:" + pcs.upper()] = c.key
        for word in (c.label, *c.synonyms):
            codes["TXT:" + _norm(word)] = c.key
    return codes


def load_kb(directory: Path | None = None) -> KnowledgeBase:
    """Read, validate and cross-check every core knowledge-base file."""
    directory = directory or data_dir()
    sources = load_sources(directory)
    vocab = validate(Vocabulary, read_yaml(directory / "vocabulary.yaml"), "vocabulary.yaml")
    rules = validate(TramadolRules, read_yaml(directory / "tramadol.yaml"), "tramadol.yaml")
    care = validate(Care, read_yaml(directory / "care.yaml"), "care.yaml")
    pathway = validate(BuprenorphinePathway, read_yaml(directory / "pathway.yaml"), "pathway.yaml")
    scales: dict[str, Scale] = {
        s.id: s
        for s in (validate(Scale, read_yaml(directory / f"{name}.yaml"), f"{name}.yaml") for name in ("cows", "sows"))
    }
    versions = {vocab.kb_version, rules.kb_version, care.kb_version, pathway.kb_version}
    if len(versions) != 1:
        raise KnowledgeBaseError(f"knowledge-base files disagree on kb_version: {versions}")

    drugs = {d.id: d for d in vocab.drugs}
    classes = {c.id: c for c in vocab.classes}
    conditions = {c.key: c for c in vocab.conditions}
    for d in vocab.drugs:
        for c in d.classes:
            if c not in classes:
                raise KnowledgeBaseError(f"vocabulary.yaml: drug {d.id} has unknown class {c!r}")
    for r in rules.rules:
        _check_matches(r.when, f"tramadol.yaml: rule {r.id}", drugs, classes, conditions)
    for release in ("immediate", "extended"):
        if not any(not lim.when and lim.interval_h and lim.release == release for lim in rules.dose_limits):
            raise KnowledgeBaseError(f"tramadol.yaml: no unconditional {release}-release dose limit with an interval_h")
    for lim in rules.dose_limits:
        _check_matches(lim.when, f"tramadol.yaml: dose limit {lim.id}", drugs, classes, conditions)
    for pair in rules.pair_interactions:
        for ref in (*pair.first, *pair.second):
            if ref not in classes and ref not in drugs:
                raise KnowledgeBaseError(f"tramadol.yaml: pair {pair.id} names unknown {ref!r}")
    for note in care.option_notes:
        _check_matches(note.when, f"care.yaml: option note {note.id}", drugs, classes, conditions)
    for orule in care.option_rules:
        _check_matches(orule.when, f"care.yaml: option rule {orule.id}", drugs, classes, conditions)
    for adj in care.adjuncts:
        if adj.drug not in drugs:
            raise KnowledgeBaseError(f"care.yaml: adjunct {adj.id} names unknown drug {adj.drug!r}")
    adjunct_ids = {a.id for a in care.adjuncts}
    for arule in care.adjunct_rules:
        _check_matches(arule.when, f"care.yaml: adjunct rule {arule.id}", drugs, classes, conditions)
        for a in arule.adjuncts:
            if a not in adjunct_ids:
                raise KnowledgeBaseError(f"care.yaml: adjunct rule {arule.id} names unknown adjunct {a!r}")
    for res in care.resources:
        for k in res.first_when_conditions:
            if k not in conditions:
                raise KnowledgeBaseError(f"care.yaml: resource {res.id} names unknown {k!r}")

    _check_pathway(pathway, care)
    parts: list[tuple[str, Iterable[object]]] = [
        ("vocabulary.classes", vocab.classes),
        ("vocabulary.drugs", vocab.drugs),
        ("vocabulary.conditions", vocab.conditions),
        ("tramadol.rules", rules.rules),
        ("tramadol.dose_limits", rules.dose_limits),
        ("tramadol.pair_interactions", rules.pair_interactions),
        ("tramadol.off_label", [rules.off_label_statement]),
        ("care.tramadol_taper", [care.tramadol_taper]),
        ("care.timelines", care.timelines),
        ("care.treatments", care.treatments),
        ("care.option_notes", care.option_notes),
        ("care.option_rules", care.option_rules),
        ("care.adjunct_rules", care.adjunct_rules),
        ("vocabulary.condition_scope", vocab.condition_scope),
        ("care.adjuncts", care.adjuncts),
        ("care.resources", care.resources),
        ("care.monitoring", care.monitoring),
        ("care.evidence_summary", care.evidence_summary),
        ("care.statements", care.statements),
        *_pathway_parts(pathway),
    ]
    for scale in scales.values():
        parts += [(f"{scale.id}", [scale]), (f"{scale.id}.items", scale.items)]
        parts += [(f"{scale.id}.bands", scale.bands)]
    check_citations(_cited_entries(parts), sources, "knowledge base")

    members: dict[str, set[str]] = defaultdict(set)
    for d in vocab.drugs:
        for c in d.classes:
            members[c].add(d.id)
    interactions_of = {
        d.id: tuple(
            r
            for r in rules.rules
            if any(d.id in m.drugs_any or any(c in m.drug_classes_any for c in d.classes) for m in r.when)
        )
        for d in vocab.drugs
    }
    return KnowledgeBase(
        version=vocab.kb_version,
        sources=sources,
        vocabulary=vocab,
        tramadol=rules,
        scales=scales,
        care=care,
        drugs=drugs,
        classes=classes,
        conditions=conditions,
        drug_names=_index_names(vocab.drugs),
        drug_rxcui={d.rxcui: d.id for d in vocab.drugs if d.rxcui},
        condition_codes=_index_conditions(vocab.conditions),
        drug_class_members={k: frozenset(v) for k, v in members.items()},
        tramadol_interactions_of=interactions_of,
        pathway=pathway,
        washout_days=max(
            (m.stopped_within_days or 0 for when in _rule_matches(rules, care) for m in when), default=0
        ),
    )


def _check_pathway(pathway: BuprenorphinePathway, care: Care) -> None:
    """The standard start's COWS threshold is the buprenorphine option's own (one number, one place)."""
    standard = next(s for s in pathway.starts if s.id == "standard")
    bup = next((t for t in care.treatments if t.id == "buprenorphine"), None)
    if bup is None or standard.cows_min != bup.start_cows_min:
        raise KnowledgeBaseError(
            f"pathway.yaml: standard start cows_min {standard.cows_min} differs from care.yaml buprenorphine "
            f"start_cows_min {bup.start_cows_min if bup else None}"
        )
    step_ids = [s.id for s in (*pathway.precipitated_withdrawal, *pathway.handoff)]
    step_ids += [s.id for st in pathway.starts for s in st.steps] + [r.id for r in pathway.rechecks]
    if len(set(step_ids)) != len(step_ids):
        raise KnowledgeBaseError("pathway.yaml: duplicate step ids")


def _pathway_parts(pathway: BuprenorphinePathway) -> list[tuple[str, Iterable[object]]]:
    return [
        ("pathway.low_dose_first", [pathway.low_dose_first]),
        ("pathway.starts", pathway.starts),
        *((f"pathway.{s.id}.steps", s.steps) for s in pathway.starts),
        *((f"pathway.{s.id}.schedules", s.schedules) for s in pathway.starts),
        ("pathway.rechecks", pathway.rechecks),
        ("pathway.precipitated_withdrawal", pathway.precipitated_withdrawal),
        ("pathway.handoff", pathway.handoff),
        ("pathway.chart_note_footer", [pathway.chart_note_footer]),
    ]


def _rule_matches(rules: TramadolRules, care: Care) -> Iterable[tuple[Match, ...]]:
    yield from (r.when for r in rules.rules)
    yield from (r.when for r in care.option_rules)


@cache
def default_kb() -> KnowledgeBase:
    """The packaged knowledge base, loaded and checked once per process."""
    return load_kb()
