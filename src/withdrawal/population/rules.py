"""One rule set, three evaluators: the per-patient screen, DuckDB SQL and Spark SQL.

The tramadol rules are the knowledge base's :class:`~withdrawal.knowledge.models.Rule` data.
:func:`compile_screen` turns each rule's ``when`` matches into a SQL boolean over a per-patient
facts row (``facts.py``), so the population query is generated from the same data the
per-patient :func:`~withdrawal.safety.screen_tramadol` interprets. Population flags are data too
(``population_flags.yaml``): conjunctions of KB matches, KB finding codes and the MME threshold;
per patient they are evaluated by running ``screen_tramadol`` on a knowledge base whose rules are the flags' tests
(:func:`evaluate_patient`), and in the engines by the same compiler.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import Cited, Frozen, data_dir, read_yaml, validate
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.knowledge.models import LEVELS, Level, Match, Rule
from withdrawal.patient import PatientIn, resolve
from withdrawal.population.mme import MmeTable, mg_per_day_to_mme
from withdrawal.safety import screen_tramadol

# --- population flags -------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """Holds when any of the matches holds (the semantics of ``Rule.when``)."""

    matches: tuple[Match, ...]


@dataclass(frozen=True)
class Finding:
    """Holds when the tramadol screen reports this finding code."""

    code: str


@dataclass(frozen=True)
class HighMme:
    """Holds when the active opioid dose reaches the high-dose MME threshold of ``mme.yaml``."""


Test = Facts | Finding | HighMme


@dataclass(frozen=True)
class Flag:
    id: str
    label: str
    basis: str
    sources: tuple[str, ...]
    all_of: tuple[Test, ...] = ()
    any_of: tuple[Test, ...] = ()
    none_of: tuple[Test, ...] = ()


class _TestIn(Frozen):
    """One flag test in ``population_flags.yaml``: matches, a finding code, or the MME threshold."""

    matches: tuple[Match, ...] = ()
    finding: str | None = None
    high_mme: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> _TestIn:
        if sum((bool(self.matches), self.finding is not None, self.high_mme)) != 1:
            raise ValueError("a flag test is exactly one of: matches, finding, high_mme")
        return self

    def to_test(self) -> Test:
        if self.matches:
            return Facts(self.matches)
        return Finding(self.finding) if self.finding is not None else HighMme()


class _FlagIn(Cited):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    basis: str
    note: str | None = None
    all_of: tuple[_TestIn, ...] = ()
    any_of: tuple[_TestIn, ...] = ()
    none_of: tuple[_TestIn, ...] = ()


class _FlagFile(Frozen):
    kb_version: str
    flags: tuple[_FlagIn, ...] = Field(min_length=1)


def load_flags(path: Path | None = None) -> tuple[Flag, ...]:
    """The population flags, as cited data (``knowledge/data/population_flags.yaml``)."""
    path = path or data_dir() / "population_flags.yaml"
    data = validate(_FlagFile, read_yaml(path), path.name)
    return tuple(
        Flag(
            f.id,
            f.label,
            f.basis,
            f.sources,
            all_of=tuple(t.to_test() for t in f.all_of),
            any_of=tuple(t.to_test() for t in f.any_of),
            none_of=tuple(t.to_test() for t in f.none_of),
        )
        for f in data.flags
    )


FLAGS: tuple[Flag, ...] = load_flags()

FLAG_IDS: tuple[str, ...] = tuple(f.id for f in FLAGS)


def _flag_tests(flags: Sequence[Flag]) -> list[tuple[str, Facts]]:
    """Every Facts test of the flags with a stable synthetic rule code."""
    out: list[tuple[str, Facts]] = []
    for flag in flags:
        for part, tests in (("all", flag.all_of), ("any", flag.any_of), ("none", flag.none_of)):
            for i, t in enumerate(tests):
                if isinstance(t, Facts):
                    out.append((f"pop_{flag.id}_{part}{i}", t))
    return out


def check_flags(kb: KnowledgeBase, flags: Sequence[Flag] = FLAGS) -> None:
    """Flags may only name sources, drugs, classes, conditions and codes the KB defines."""
    codes = {r.code for r in kb.tramadol.rules}
    for flag in flags:
        for sid in flag.sources:
            if sid not in kb.sources:
                raise KnowledgeBaseError(f"population flag {flag.id}: unknown source {sid!r}")
        for t in (*flag.all_of, *flag.any_of, *flag.none_of):
            if isinstance(t, Finding) and t.code not in codes:
                raise KnowledgeBaseError(f"population flag {flag.id}: unknown finding code {t.code!r}")
            if isinstance(t, Facts):
                for m in t.matches:
                    for d in (*m.drugs_any, *m.allergy_drugs_any):
                        if d not in kb.drugs:
                            raise KnowledgeBaseError(f"population flag {flag.id}: unknown drug {d!r}")
                    for c in m.drug_classes_any:
                        if c not in kb.classes:
                            raise KnowledgeBaseError(f"population flag {flag.id}: unknown class {c!r}")
                    for k in m.conditions_any:
                        if k not in kb.conditions:
                            raise KnowledgeBaseError(f"population flag {flag.id}: unknown condition {k!r}")


def _test_kb(kb: KnowledgeBase, flags: Sequence[Flag]) -> KnowledgeBase:
    """A knowledge base whose rules are the flags' fact tests, for the per-patient screen."""
    rules = tuple(
        Rule(id=code, code=code, level="caution", category="population", when=t.matches,
             message="population flag test", action="none", sources=("pop_cdc_2022",),
             verification="verified_secondary")
        for code, t in _flag_tests(flags)
    )
    return dataclasses.replace(kb, tramadol=kb.tramadol.model_copy(update={"rules": rules}))


# --- per-patient evaluation (ground truth and equality tests) -----------------------------


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


@dataclass(frozen=True)
class PatientScreen:
    verdict: Level
    codes: tuple[str, ...]
    flags: Mapping[str, bool]
    mme: float
    tramadol_active: bool
    options: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Per option with option rules (``care.yaml``): the sorted codes of its findings."""


def option_treatments(kb: KnowledgeBase) -> tuple[str, ...]:
    """The options that have option rules, sorted: one ``option_<id>`` output column each."""
    return tuple(sorted({t for r in kb.care.option_rules for t in r.treatments}))


def option_columns(kb: KnowledgeBase) -> tuple[str, ...]:
    return tuple(f"option_{t}" for t in option_treatments(kb))


def patient_mme(data: PatientIn, kb: KnowledgeBase, table: MmeTable) -> float:
    """MME/day of the active medications with a daily dose, rounded to 3 decimals."""
    total = 0.0
    for med in data.medications:
        if med.status != "active" or med.dose_mg_per_day is None:
            continue
        single = resolve(PatientIn(age_years=0, medications=(med,)), kb)
        for drug in sorted(single.active_drugs):
            total += mg_per_day_to_mme(drug, med.dose_mg_per_day, table)
    return round(total, 3)


class PatientEvaluator:
    """Screen one ``PatientIn`` with the KB rules and the population flags."""

    def __init__(self, kb: KnowledgeBase, table: MmeTable, flags: Sequence[Flag] = FLAGS) -> None:
        check_flags(kb, flags)
        kb = bulk_kb(kb)
        self.kb, self.table, self.flags = kb, table, tuple(flags)
        self._tests_kb = _test_kb(kb, self.flags)
        self._codes = {id(t): code for code, t in _flag_tests(self.flags)}

    def __call__(self, data: PatientIn) -> PatientScreen:
        patient = resolve(data, self.kb)
        result = screen_tramadol(patient, self.kb)
        fired_tests = set(screen_tramadol(patient, self._tests_kb).codes)
        codes = set(result.codes)
        mme = patient_mme(data, self.kb, self.table)

        def holds(t: Test) -> bool:
            if isinstance(t, Finding):
                return t.code in codes
            if isinstance(t, HighMme):
                return mme >= self.table.threshold
            return self._codes[id(t)] in fired_tests

        flags = {}
        for f in self.flags:
            flags[f.id] = (
                all(holds(t) for t in f.all_of)
                and (not f.any_of or any(holds(t) for t in f.any_of))
                and not any(holds(t) for t in f.none_of)
            )
        from withdrawal.plan.plan import option_findings
        from withdrawal.safety.matching import facts_for

        facts = facts_for(patient, self.kb)
        options = {t: tuple(sorted({f.code for f in option_findings(t, facts, self.kb)}))
                   for t in option_treatments(self.kb)}
        return PatientScreen(
            verdict=result.verdict,
            codes=tuple(sorted(codes)),
            flags=flags,
            mme=mme,
            tramadol_active="tramadol" in patient.active_drugs,
            options=options,
        )


# --- SQL compilation --------------------------------------------------------------------

WORD_BITS = 63  # set members per BIGINT word (bit 63, the sign bit, is left unused)
SetKind = Literal["drugs", "conditions"]


@dataclass(frozen=True)
class BitLayout:
    """Sets of KB drug ids and condition keys as bit masks: one BIGINT word per 63 members.

    A drug's bit is its rank among the KB's sorted drug ids, a condition key's its rank among the
    sorted condition keys; a facts set column ``col`` is the words ``col_0``, ``col_1``, ... A rule's
    "any of these" test is then one ``&`` per word, and the per-patient sets aggregate with ``bit_or``."""

    drugs: tuple[str, ...]
    conditions: tuple[str, ...]

    @classmethod
    def of(cls, kb: KnowledgeBase) -> BitLayout:
        return cls(drugs=tuple(sorted(kb.drugs)), conditions=tuple(sorted(kb.conditions)))

    def _members(self, kind: SetKind) -> tuple[str, ...]:
        return self.drugs if kind == "drugs" else self.conditions

    def words(self, kind: SetKind) -> int:
        return max(1, -(-len(self._members(kind)) // WORD_BITS))

    def masks(self, kind: SetKind, items: Iterable[str]) -> tuple[int, ...]:
        """The words of the set ``items`` (an id the KB does not define is an error)."""
        members = self._members(kind)
        index = {m: i for i, m in enumerate(members)}
        out = [0] * self.words(kind)
        for item in items:
            if item not in index:
                raise KnowledgeBaseError(f"population screen: unknown {kind[:-1]} {item!r}")
            i = index[item]
            out[i // WORD_BITS] |= 1 << (i % WORD_BITS)
        return tuple(out)

    def columns(self, col: str, kind: SetKind) -> tuple[str, ...]:
        return tuple(f"{col}_{w}" for w in range(self.words(kind)))


def bits_any(col: str, masks: Sequence[int]) -> str:
    """SQL boolean: the set ``col`` (words ``col_0``, ...) has a member of ``masks`` (same in both dialects)."""
    terms = [f"(({col}_{w} & {int(m)}) <> 0)" for w, m in enumerate(masks) if m]
    return "(" + " OR ".join(terms) + ")" if terms else "FALSE"


class Dialect:
    """The few SQL spellings that differ between DuckDB and Spark SQL."""

    name = "duckdb"

    def select(self, pairs: Sequence[tuple[str, str]]) -> str:
        """The list of the literals whose (non-null) boolean holds, in order, from (boolean, literal) pairs."""
        return (f"list_where([{', '.join(_lit(v) for _, v in pairs)}], "
                f"[{', '.join(c for c, _ in pairs)}])")

    def days_between(self, start: str, end: str) -> str:
        return f"date_diff('day', {start}, {end})"

    def min_pair(self, key: str, value: str, cond: str) -> str:
        """Aggregate: ``value`` of the row with the least (``key``, ``value``) among the rows where ``cond``."""
        return f"min(CASE WHEN {cond} THEN struct_pack(k := {key}, v := {value}) END).v"


class SparkDialect(Dialect):
    name = "spark"

    def select(self, pairs: Sequence[tuple[str, str]]) -> str:
        items = ", ".join(f"CASE WHEN {c} THEN {_lit(v)} END" for c, v in pairs)
        return f"filter(array({items}), x -> x IS NOT NULL)"

    def days_between(self, start: str, end: str) -> str:
        return f"datediff({end}, {start})"

    def min_pair(self, key: str, value: str, cond: str) -> str:
        return f"min(CASE WHEN {cond} THEN named_struct('k', {key}, 'v', {value}) END).v"


def _lit(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_ .\-]*", text):
        raise ValueError(f"unsafe SQL literal {text!r}")
    return f"'{text}'"


def window_column(days: int | None) -> str:
    """Facts set (drug bit mask words) of the drugs active, or stopped no more than ``days`` ago."""
    return "drugs_active" if days is None else f"drugs_within_{days}"


def windows(kb: KnowledgeBase, flags: Sequence[Flag] = FLAGS) -> tuple[int, ...]:
    """Every ``stopped_within_days`` the rules and flags use: one facts column each."""
    found: set[int] = set()
    matches = [m for r in kb.tramadol.rules for m in r.when]
    matches += [m for r in kb.care.option_rules for m in r.when]
    matches += [m for _, t in _flag_tests(flags) for m in t.matches]
    for m in matches:
        if m.stopped_within_days is not None:
            found.add(m.stopped_within_days)
    return tuple(sorted(found))


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


def compile_match(m: Match, kb: KnowledgeBase, without: frozenset[str] = frozenset()) -> str:
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
        parts.append(f"(cyp2d6 IS NOT NULL AND cyp2d6 IN ({', '.join(_lit(p) for p in m.cyp2d6_phenotype_in)}))")
    if m.unresolved is not None:
        parts.append("unresolved" if m.unresolved else "NOT unresolved")
    return "(" + " AND ".join(parts) + ")"


def compile_when(matches: Iterable[Match], kb: KnowledgeBase, without: frozenset[str] = frozenset()) -> str:
    return "coalesce(" + " OR ".join(compile_match(m, kb, without) for m in matches) + ", FALSE)"


def _ident(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", text):
        raise ValueError(f"unsafe SQL identifier {text!r}")
    return text


@dataclass(frozen=True)
class CompiledScreen:
    """SELECT statements over a ``facts`` relation producing one output row per patient."""

    rules_sql: str
    output_sql: str
    codes: tuple[str, ...]
    set_words: frozenset[str]  # the facts set words (``drugs_active_0``, ...) that some test reads


def compile_screen(kb: KnowledgeBase, table: MmeTable, d: Dialect, flags: Sequence[Flag] = FLAGS) -> CompiledScreen:
    """Two SELECTs: ``rules_sql`` (FROM facts) adds r_<rule> and t_<test> booleans;
    ``output_sql`` (FROM ruled) computes findings, verdict, flags."""
    check_flags(kb, flags)
    kb = bulk_kb(kb)
    rank = {lvl: i for i, lvl in enumerate(LEVELS)}
    rule_cols = [f"{compile_when(r.when, kb)} AS r_{_ident(r.id)}" for r in kb.tramadol.rules]
    test_cols = [f"{compile_when(t.matches, kb)} AS t_{_ident(code)}" for code, t in _flag_tests(flags)]
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
    verdict = "CASE " + " ".join(f"WHEN vr = {i} THEN {_lit(lvl)}" for i, lvl in enumerate(LEVELS)) + " END"

    test_code = {id(t): code for code, t in _flag_tests(flags)}

    def test_sql(t: Test) -> str:
        if isinstance(t, Finding):
            return finding[t.code]
        if isinstance(t, HighMme):
            return f"(mme >= {table.threshold!r})"
        return f"t_{test_code[id(t)]}"

    flag_cols = []
    for f in flags:
        terms = [test_sql(t) for t in f.all_of]
        if f.any_of:
            terms.append("(" + " OR ".join(test_sql(t) for t in f.any_of) + ")")
        terms += [f"NOT {test_sql(t)}" for t in f.none_of]
        flag_cols.append(f"({' AND '.join(terms) or 'TRUE'}) AS flag_{_ident(f.id)}")

    code_list = d.select([(finding[c], c) for c in codes])
    option_cols = []
    for t in option_treatments(kb):
        own = kb.treatment(t).drug
        without = frozenset({own}) if own else frozenset()
        by_option: dict[str, list[str]] = {}
        for orule in kb.care.option_rules:
            if t in orule.treatments:
                by_option.setdefault(orule.code, []).append(compile_when(orule.when, kb, without))
        pairs = [("(" + " OR ".join(ws) + ")", c) for c, ws in sorted(by_option.items())]
        option_cols.append(f"{d.select(pairs)} AS option_{_ident(t)}")
    output_sql = (
        "SELECT patient_id, age, "
        "CASE WHEN age IS NULL THEN 'unknown' WHEN age < 18 THEN '0-17' WHEN age < 35 THEN '18-34' "
        "WHEN age < 50 THEN '35-49' WHEN age < 65 THEN '50-64' ELSE '65+' END AS age_band, "
        f"sex, {verdict} AS verdict, {code_list} AS codes, "
        f"{bits_any('drugs_active', BitLayout.of(kb).masks('drugs', ('tramadol',)))} AS tramadol_active, "
        f"(vr >= {rank['avoid']}) AS tramadol_blocked, "
        f"mme, (mme >= {table.threshold!r}) AS high_mme, "
        + ", ".join(flag_cols)
        + ", "
        + ", ".join(f"{finding[c]} AS finding_{_ident(c)}" for c in codes)
        + "".join(f", {c}" for c in option_cols)
        + f" FROM (SELECT ruled.*, {verdict_rank} AS vr FROM ruled) AS ranked"
    )
    # every set test is spelled "((<col>_<w> & <mask>) <> 0)" by bits_any
    words = frozenset(re.findall(r"\(\(([a-z0-9_]+_[0-9]+) & [0-9]+\) <> 0\)", rules_sql + output_sql))
    return CompiledScreen(rules_sql=rules_sql, output_sql=output_sql, codes=codes, set_words=words)

FLAG_COLUMNS: tuple[str, ...] = tuple(f"flag_{f}" for f in FLAG_IDS)
