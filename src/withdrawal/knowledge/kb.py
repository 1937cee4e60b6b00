"""The knowledge base as the code uses it: every validated part, the lookup indexes, and the
resolution of a medication, allergy or condition text to knowledge-base ids.

Built only by :func:`withdrawal.knowledge.loader.load_kb`. Resolution lives here, once: the patient
model, the FHIR reading, the population screen, the CDS service and the pages all ask the knowledge
base, and none builds a patient to resolve one item.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from withdrawal.knowledge.base import Source
from withdrawal.knowledge.evidence import SummaryData, TrialBase
from withdrawal.knowledge.models import (
    BuprenorphinePathway,
    Care,
    Condition,
    Drug,
    DrugClass,
    Rule,
    Scale,
    ScreenScope,
    Statement,
    Timeline,
    TramadolRules,
    Treatment,
    Vocabulary,
)
from withdrawal.knowledge.monitoring import MonitoringRules
from withdrawal.knowledge.patient_info import PatientInfo
from withdrawal.knowledge.pk import TramadolData
from withdrawal.knowledge.population import Flag, MmeTable

ICD10_MAX_LEN = 7
_WORD = re.compile(r"[a-z0-9']+")
# An ICD-10-PCS code has 7 characters with at least one digit: a 7-letter word ("anxiety", "seizurs")
# is free text, not a code, and free text the vocabulary does not know always raises.
_CODE = re.compile(r"^(?:[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?|[0-9]{6,18}|(?=[A-Z]*[0-9])[0-9A-Z]{7})$")
MEMO_MAX = 4096
MEMO_KEY_MAX = 256
T = TypeVar("T")


def normalise_name(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").split())


@dataclass(frozen=True)
class Resolved:
    """A medication or allergy text resolved: its ingredient ids and the words that were not screened."""

    drugs: tuple[str, ...]
    """Ingredient ids; () when nothing in the text is known."""
    unscreened: tuple[str, ...] = ()
    """Words of the name beside its known ingredients that are not a product word ("Zoloft blorp")."""

    @property
    def complete(self) -> bool:
        """Every part of the text was taken into account."""
        return bool(self.drugs) and not self.unscreened


@dataclass(frozen=True)
class ResolvedCondition:
    """A condition text or code resolved: its knowledge-base key, or whether the screen needed it."""

    key: str | None
    in_scope: bool
    """Not resolved, and a screen should have looked at it (free text, or a code in a scope entry)."""


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
    washout_days: int
    """The longest ``stopped_within_days`` any rule uses: a medication stopped that recently still counts."""
    pathway: BuprenorphinePathway = field(repr=False)
    """The buprenorphine start pathway (pathway.yaml)."""
    pk: TramadolData = field(repr=False)
    """Tramadol and M1 pharmacokinetic parameters (pk/tramadol.yaml), for the simulator."""
    mme: MmeTable = field(repr=False)
    """Morphine milligram equivalent factors (mme.yaml), for the population screen."""
    population_flags: tuple[Flag, ...] = field(repr=False)
    """The population screen's flags (population_flags.yaml)."""
    monitoring: MonitoringRules = field(repr=False)
    """Alert definitions over a withdrawal course (monitoring.yaml)."""
    trials: TrialBase = field(repr=False)
    """The tramadol trial base (evidence/trials.yaml)."""
    evidence_summary: SummaryData = field(repr=False)
    """Analyses, what is not pooled, verdicts (evidence/summary.yaml)."""
    patient_info: Mapping[str, PatientInfo] = field(repr=False)
    """Plain-language patient content by language (patient_info.yaml, patient_info.es.yaml)."""
    condition_groups: Mapping[str, frozenset[str]] = field(repr=False)
    """Group id -> its condition keys (vocabulary ``condition_groups``)."""
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
        return self.drug_names.get(normalise_name(text), ())

    def lookup_condition(self, text: str) -> str | None:
        """Condition key for a key, an ICD-10-CM code (child codes too) or a SNOMED CT id."""
        return self.memoized("condition", text, self._lookup_condition)

    def _lookup_condition(self, text: str) -> str | None:
        raw = text.strip()
        if raw.lower() in self.conditions:
            return raw.lower()
        by_word = self.condition_codes.get("TXT:" + normalise_name(raw))
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
        """The scope entry an unresolved condition code falls in, or None (out of the screen's scope).

        Cached (:meth:`memoized`): a record repeats its codes (115 Procedures of one SNOMED code in a
        Synthea record), and each look walks the scope's prefixes with a regular expression."""
        return self.memoized("condition_scope", text, self._condition_scope)

    def _condition_scope(self, text: str) -> ScreenScope | None:
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

    def condition_group(self, group_id: str) -> frozenset[str]:
        """The condition keys of the vocabulary's group ``group_id``."""
        return self.condition_groups[group_id]

    def statement(self, statement_id: str) -> Statement:
        """The care statement ``statement_id`` (care.yaml ``statements``, ``monitoring`` or
        ``evidence_summary``): a sentence with its sources."""
        for group in (self.care.statements, self.care.monitoring, self.care.evidence_summary):
            for s in group:
                if s.id == statement_id:
                    return s
        raise KeyError(statement_id)

    def rule(self, rule_id: str) -> Rule:
        """The tramadol rule ``rule_id`` (its message, action and sources, as the screen says them)."""
        for r in self.tramadol.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def treatment(self, treatment_id: str) -> Treatment:
        for t in self.care.treatments:
            if t.id == treatment_id:
                return t
        raise KeyError(treatment_id)

    # --- resolution of patient data: one reading for every interface --------------------------

    def resolve_drug_name(self, text: str) -> tuple[str, ...]:
        """Ingredient ids for a medication name: exact name first, then known names inside it."""
        return self.memoized("drug_name", text, lambda t: self.lookup_drug(t) or self._scanned(t)[0])

    def unscreened_words(self, text: str) -> tuple[str, ...]:
        """Words of a medication name beside its known ingredients that were not screened."""
        if self.lookup_drug(text):
            return ()
        return self._scanned(text)[1]

    def resolve_medication(self, rxnorm: str | None, name: str | None) -> Resolved:
        """A medication by its ingredient RxCUI, else by its name (with the words not screened)."""
        by_code = self.drug_rxcui.get(rxnorm) if rxnorm else None
        if by_code:
            return Resolved((by_code,))
        if not name:
            return Resolved(())
        drugs = self.resolve_drug_name(name)
        return Resolved(drugs, self.unscreened_words(name) if drugs else ())

    def resolve_allergy(self, name: str) -> Resolved:
        """An allergy's drug name, as a medication name is read."""
        return self.resolve_medication(None, name)

    def resolve_condition(self, text: str) -> ResolvedCondition:
        """A condition key, code or text; unresolved ones say whether they were in the screen's scope."""
        key = self.lookup_condition(text)
        return ResolvedCondition(key, key is None and self.condition_in_scope(text))

    def condition_named(self, text: str) -> str | None:
        """The first screened condition (one the screen's rules read) whose label or a synonym appears in
        ``text`` as whole words ("Tonic-clonic epilepsy" names seizure_disorder by "epilepsy"), or None.

        A name, not a mapping: the FHIR reading names a code the knowledge base does not know as unresolved
        when its text names one (vocabulary ``snomed_screened_concepts``), and never reads it as the condition."""
        named = self.conditions_named(text)
        return named[0] if named else None

    def conditions_named(self, text: str) -> tuple[str, ...]:
        """Every screened condition ``text`` names (as :meth:`condition_named`), longest phrase first:
        "Tonsillectomy for obstructive sleep apnea" names sleep_apnea and tonsillectomy_recent."""
        return self.memoized("conditions_named", text, self._conditions_named)

    def _conditions_named(self, text: str) -> tuple[str, ...]:
        phrases = self.memoized("screened_condition_phrases", "", lambda _: self._screened_phrases())
        words = _WORD.findall(normalise_name(text))
        found: list[str] = []
        for size in sorted({len(p) for p in phrases}, reverse=True):
            for i in range(len(words) - size + 1):
                if (key := phrases.get(tuple(words[i : i + size]))) and key not in found:
                    found.append(key)
        return tuple(found)

    def _screened_phrases(self) -> dict[tuple[str, ...], str]:
        """The words of each screened condition's label and synonyms -> its key (vocabulary order)."""
        matches = [m for items in (self.tramadol.rules, self.tramadol.dose_limits, self.care.option_notes,
                                   self.care.option_rules, self.care.adjunct_rules) for x in items for m in x.when]
        screened = {k for m in matches for k in m.conditions_any}
        out: dict[tuple[str, ...], str] = {}
        for c in self.vocabulary.conditions:
            if c.key in screened:
                for name in (c.label, *c.synonyms):
                    out.setdefault(tuple(_WORD.findall(normalise_name(name))), c.key)
        out.pop((), None)
        return out

    def condition_in_scope(self, text: str) -> bool:
        """An unrecognised condition the screen should have looked at (free text, or a code in scope)."""
        return self.condition_scope(text) is not None or not _CODE.match(text.strip().upper())

    def _scanned(self, text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """:meth:`_scan`, once per text (names and leftover words come from the same scan)."""
        return self.memoized("drug_scan", text, self._scan)

    def _scan(self, text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Known names inside free text, and the words left over that are neither a known name nor a
        product word (dose form, salt, unit, number): those were not screened."""
        words = _WORD.findall(text.lower().replace("-", " "))
        found: list[str] = []
        covered: set[int] = set()
        for size in (4, 3, 2, 1):
            for i in range(len(words) - size + 1):
                ids = self.lookup_drug(" ".join(words[i : i + size]))
                if ids:
                    covered.update(range(i, i + size))
                for drug_id in ids:
                    if drug_id not in found:
                        found.append(drug_id)
        left = tuple(w for i, w in enumerate(words) if i not in covered and not self.product_word(w))
        return tuple(found), left

    def product_word(self, word: str) -> bool:
        """A word of a product's name that names no ingredient: one of the vocabulary's
        ``product_words`` (dose form, route, salt, unit, frequency; any case) or a word with a digit
        (a dose or strength). The patient model and the interaction checker both skip these."""
        product = self.memoized("product_words", "", lambda _: frozenset(self.vocabulary.product_words))
        return word.lower() in product or any(c.isdigit() for c in word)
