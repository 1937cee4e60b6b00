"""The knowledge base's tramadol and option rules and the population flags, compiled to SQL.

The rules are the KB's :class:`~withdrawal.knowledge.models.Rule` data. :func:`compile_screen`
turns each rule's ``when`` matches into a SQL boolean over the per-patient facts row of
``facts.py``, so the population query is generated from the same data the per-patient
:func:`~withdrawal.safety.screen_tramadol` interprets (``per_patient.py`` proves it). A ``Match``
field the compiler does not know is an error, so a new rule field cannot be silently dropped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import LEVELS, Match, Rule
from withdrawal.population.flags import FindingTest, FlagTest, HighMmeTest, flag_tests
from withdrawal.population.sql import BitLayout, Dialect, bits_any, identifier, window_column
from withdrawal.population.summary import AGE_BAND_LIMITS, UNKNOWN_AGE

# Facts the NDJSON export does not carry take the per-patient defaults of PatientIn (as the FHIR
# mapper leaves them unset): Child-Pugh class, withdrawal substance, setting and last use unknown.
_ABSENT_FIELDS = ("child_pugh_in", "substance_in", "setting_in", "before_withdrawal_onset", "last_use_within_h")
# Match fields a rule may use that the bulk facts cannot evaluate yet: such rules are left out of the
# bulk screen and named by ``bulk_gaps`` (never read as FALSE). None today.
_NOT_YET_IN_BULK: tuple[str, ...] = ()
_COMPILED_FIELDS = frozenset({
    "age_below", "age_above", "age_at_least", "pregnant", "breastfeeding", "conditions_any", "drugs_any",
    "drug_classes_any", "stopped_within_days", "allergy_drugs_any", "crcl_below", "cyp2d6_phenotype_in",
    "unresolved", *_ABSENT_FIELDS,
})


def bulk_kb(kb: KnowledgeBase) -> KnowledgeBase:
    """The knowledge base the bulk screen applies: without the rules it cannot compile (none today:
    the bulk facts carry the unresolved items the incomplete-screen rule reads and the CYP2D6
    phenotype Observations; ``bulk_gaps`` is empty and tested so)."""
    rules = tuple(r for r in kb.tramadol.rules if r.id not in bulk_gaps(kb))
    return dataclasses.replace(kb, tramadol=kb.tramadol.model_copy(update={"rules": rules}))


def bulk_gaps(kb: KnowledgeBase) -> tuple[str, ...]:
    """Ids of the tramadol rules the bulk screen cannot evaluate yet."""
    return tuple(
        r.id for r in kb.tramadol.rules
        if any(getattr(m, f) not in (None, ()) for m in r.when for f in _NOT_YET_IN_BULK)
    )


def option_treatments(kb: KnowledgeBase) -> tuple[str, ...]:
    """The options that have option rules, sorted: one ``option_<id>`` output column each."""
    return tuple(sorted({t for r in kb.care.option_rules for t in r.treatments}))


def windows(kb: KnowledgeBase) -> tuple[int, ...]:
    """Every ``stopped_within_days`` the rules and flags use: one facts column each."""
    found: set[int] = set()
    matches = [m for r in kb.tramadol.rules for m in r.when]
    matches += [m for r in kb.care.option_rules for m in r.when]
    matches += [m for _, t in flag_tests(kb.population_flags) for m in t.matches]
    for m in matches:
        if m.stopped_within_days is not None:
            found.add(m.stopped_within_days)
    return tuple(sorted(found))


def compile_match(m: Match, kb: KnowledgeBase, d: Dialect, without: frozenset[str] = frozenset()) -> str:
    """SQL boolean for one match over a facts row; mirrors ``safety.matching``.

    ``without``: drugs taken out of the patient's medications for this test (an option's own drug,
    as ``plan.option_findings`` does): taking them out of the test's set is the same.
    A ``Match`` field this compiler does not know is an error, never silently ignored."""
    unknown = set(m.model_dump(exclude_defaults=True)) - _COMPILED_FIELDS
    if unknown:
        raise KnowledgeBaseError(f"population screen cannot compile match field(s) {sorted(unknown)}")
    bits = BitLayout.of(kb)
    parts: list[str] = []
    if m.age_below is not None:
        parts.append(f"age < {int(m.age_below)}")
    if m.age_above is not None:
        parts.append(f"age > {int(m.age_above)}")
    if m.age_at_least is not None:
        parts.append(f"age >= {int(m.age_at_least)}")
    if m.pregnant is not None:
        preg = f"(pregnant_obs OR {bits_any('conditions', bits.masks('conditions', ('pregnancy',)))})"
        parts.append(preg if m.pregnant else f"NOT {preg}")
    if m.breastfeeding is not None:
        parts.append("breastfeeding_obs" if m.breastfeeding else "NOT breastfeeding_obs")
    if m.conditions_any:
        parts.append(bits_any("conditions", bits.masks("conditions", m.conditions_any)))
    if m.drugs_any or m.drug_classes_any:
        ids = set(m.drugs_any)
        for cls in m.drug_classes_any:
            ids |= kb.drug_class_members.get(cls, frozenset())
        col = window_column(m.stopped_within_days)
        parts.append(bits_any(col, bits.masks("drugs", ids - without)))
    if m.allergy_drugs_any:
        parts.append(bits_any("allergies", bits.masks("drugs", m.allergy_drugs_any)))
    if any(getattr(m, f) not in (None, ()) for f in _ABSENT_FIELDS):
        parts.append("FALSE")  # not in the export: None never matches, as in the per-patient screen
    if m.crcl_below is not None:
        parts.append(f"(crcl IS NOT NULL AND crcl < {float(m.crcl_below)!r})")
    if m.cyp2d6_phenotype_in:
        parts.append(f"(cyp2d6 IS NOT NULL AND cyp2d6 IN {d.literals(m.cyp2d6_phenotype_in)})")
    if m.unresolved is not None:
        parts.append("unresolved" if m.unresolved else "NOT unresolved")
    return "(" + " AND ".join(parts) + ")"


def age_band_sql(d: Dialect) -> str:
    """The output's ``age_band`` of the facts' ``age``: the summary's bands (``summary.AGE_BAND_LIMITS``)."""
    whens = " ".join(f"WHEN age < {int(end)} THEN {d.literal(label)}" for label, end in AGE_BAND_LIMITS
                     if end is not None)
    return f"CASE WHEN age IS NULL THEN {d.literal(UNKNOWN_AGE)} {whens} ELSE {d.literal(AGE_BAND_LIMITS[-1][0])} END"


def compile_when(matches: Iterable[Match], kb: KnowledgeBase, d: Dialect,
                 without: frozenset[str] = frozenset()) -> str:
    return "coalesce(" + " OR ".join(compile_match(m, kb, d, without) for m in matches) + ", FALSE)"


@dataclass(frozen=True)
class CompiledScreen:
    """SELECT statements over a ``facts`` relation producing one output row per patient."""

    rules_sql: str
    output_sql: str
    codes: tuple[str, ...]
    set_words: frozenset[str]  # the facts set words (``drugs_active_0``, ...) that some test reads


def compile_screen(kb: KnowledgeBase, d: Dialect) -> CompiledScreen:
    """Two SELECTs: ``rules_sql`` (FROM facts) adds r_<rule> and t_<test> booleans;
    ``output_sql`` (FROM ruled) computes findings, verdict, flags."""
    table, flags = kb.mme, kb.population_flags
    kb = bulk_kb(kb)
    rank = {lvl: i for i, lvl in enumerate(LEVELS)}
    rule_cols = [f"{compile_when(r.when, kb, d)} AS r_{identifier(r.id)}" for r in kb.tramadol.rules]
    test_cols = [f"{compile_when(t.matches, kb, d)} AS t_{identifier(code)}" for code, t in flag_tests(flags)]
    rules_sql = "SELECT facts.*, " + ", ".join(rule_cols + test_cols) + " FROM facts"

    by_code: dict[str, list[Rule]] = {}
    for r in kb.tramadol.rules:
        by_code.setdefault(r.code, []).append(r)
    codes = tuple(sorted(by_code))
    finding = {c: "(" + " OR ".join(f"r_{r.id}" for r in rs) + ")" for c, rs in by_code.items()}
    rank_exprs = []
    for c in codes:
        rs = sorted(by_code[c], key=lambda r: -rank[r.level])
        whens = " ".join(f"WHEN r_{r.id} THEN {rank[r.level]}" for r in rs)
        rank_exprs.append(f"CASE {whens} ELSE 0 END")
    verdict_rank = f"greatest({', '.join(rank_exprs)})" if len(rank_exprs) > 1 else rank_exprs[0]
    verdict = "CASE " + " ".join(f"WHEN vr = {i} THEN {d.literal(lvl)}" for i, lvl in enumerate(LEVELS)) + " END"

    test_code = {id(t): code for code, t in flag_tests(flags)}

    def test_sql(t: FlagTest) -> str:
        if isinstance(t, FindingTest):
            return finding[t.code]
        if isinstance(t, HighMmeTest):
            return f"(mme >= {table.threshold!r})"
        return f"t_{test_code[id(t)]}"

    flag_cols = []
    for f in flags:
        terms = [test_sql(t) for t in f.all_of]
        if f.any_of:
            terms.append("(" + " OR ".join(test_sql(t) for t in f.any_of) + ")")
        terms += [f"NOT {test_sql(t)}" for t in f.none_of]
        flag_cols.append(f"({' AND '.join(terms) or 'TRUE'}) AS flag_{identifier(f.id)}")

    code_list = d.select([(finding[c], c) for c in codes])
    option_cols = []
    for t in option_treatments(kb):
        own = kb.treatment(t).drug
        without = frozenset({own}) if own else frozenset()
        by_option: dict[str, list[str]] = {}
        for orule in kb.care.option_rules:
            if t in orule.treatments:
                by_option.setdefault(orule.code, []).append(compile_when(orule.when, kb, d, without))
        pairs = [("(" + " OR ".join(ws) + ")", c) for c, ws in sorted(by_option.items())]
        option_cols.append(f"{d.select(pairs)} AS option_{identifier(t)}")
    output_sql = (
        f"SELECT patient_id, age, {age_band_sql(d)} AS age_band, "
        f"sex, {verdict} AS verdict, {code_list} AS codes, "
        f"{bits_any('drugs_active', BitLayout.of(kb).masks('drugs', ('tramadol',)))} AS tramadol_active, "
        f"(vr >= {rank['avoid']}) AS tramadol_blocked, "
        f"mme, (mme >= {table.threshold!r}) AS high_mme, "
        + ", ".join(flag_cols)
        + ", "
        + ", ".join(f"{finding[c]} AS finding_{identifier(c)}" for c in codes)
        + "".join(f", {c}" for c in option_cols)
        + f" FROM (SELECT ruled.*, {verdict_rank} AS vr FROM ruled) AS ranked"
    )
    # every set test is spelled "((<col>_<w> & <mask>) <> 0)" by bits_any
    words = frozenset(re.findall(r"\(\(([a-z0-9_]+_[0-9]+) & [0-9]+\) <> 0\)", rules_sql + output_sql))
    return CompiledScreen(rules_sql=rules_sql, output_sql=output_sql, codes=codes, set_words=words)
