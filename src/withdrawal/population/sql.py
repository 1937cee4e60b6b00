"""SQL building blocks shared by the staging (``staging.py``), the facts (``facts.py``) and the rule
compiler (``compiler.py``).

The two dialects (:class:`Dialect` for DuckDB, :class:`SparkDialect` for Spark SQL) and the bit
mask layout of the KB's sets (:class:`BitLayout`) live here, below their users, so that none
imports another for them and both engines read the same definitions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.loader import KnowledgeBase

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


def window_column(days: int | None) -> str:
    """Facts set (drug bit mask words) of the drugs active, or stopped no more than ``days`` ago."""
    return "drugs_active" if days is None else f"drugs_within_{days}"


class Dialect:
    """The SQL spellings that differ between DuckDB and Spark SQL (this class: DuckDB's)."""

    name = "duckdb"
    _quote: ClassVar[str] = '"'
    _escapes: ClassVar[dict[int, str]] = str.maketrans({"'": "''"})
    """How a string literal spells the characters it cannot hold as themselves: DuckDB doubles a quote
    (a backslash is an ordinary character)."""

    def literal(self, text: str) -> str:
        """``text`` as a string literal that reads back as exactly ``text``: the one way SQL text is built
        from a value (a KB word, a status, a file path). Every character is kept, escaped as the dialect
        requires (quotes, backslashes; NUL, control characters and any Unicode as themselves); a string
        that cannot be SQL text at all (a lone surrogate: it has no UTF-8) is refused with ValueError."""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"cannot be an SQL string literal: {text!r}") from e
        return "'" + text.translate(self._escapes) + "'"

    def literals(self, values: Iterable[str]) -> str:
        """A parenthesised list of :meth:`literal` (for ``IN``)."""
        return "(" + ", ".join(self.literal(v) for v in values) + ")"

    def select(self, pairs: Sequence[tuple[str, str]]) -> str:
        """The list of the literals whose (non-null) boolean holds, in order, from (boolean, literal) pairs."""
        return (f"list_where([{', '.join(self.literal(v) for _, v in pairs)}], "
                f"[{', '.join(c for c, _ in pairs)}])")

    def days_between(self, start: str, end: str) -> str:
        return f"date_diff('day', {start}, {end})"

    def min_pair(self, key: str, value: str, cond: str) -> str:
        """Aggregate: ``value`` of the row with the least (``key``, ``value``) among the rows where ``cond``."""
        return f"min(CASE WHEN {cond} THEN struct_pack(k := {key}, v := {value}) END).v"

    # --- the array and text functions the staging (``staging.py``) reads JSON with ---

    def path(self, dotted: str) -> str:
        """A quoted column path (``a.b`` -> ``"a"."b"``; Spark quotes with backticks)."""
        return ".".join(f"{self._quote}{p}{self._quote}" for p in dotted.split("."))

    def first(self, arr: str) -> str:
        return f"({arr})[1]"

    def filter(self, arr: str, body: str) -> str:
        return f"list_filter({arr}, lambda x: {body})"

    def first_where(self, arr: str, cond: Callable[[str], str]) -> str:
        """The first element of ``arr`` for which ``cond(element)`` holds. Most arrays' first element does, so
        that is tried before the lambda (a lambda per row is the read's most expensive step)."""
        head = self.first(arr)
        return f"CASE WHEN {cond(head)} THEN {head} ELSE {self.first(self.filter(arr, cond('x')))} END"

    def after_last_slash(self, text: str) -> str:
        """What follows the last ``/`` of a string (a split, not a regular expression: the read's hot path)."""
        return f"string_split({text}, '/')[-1]"

    def json_text(self, col: str) -> str:
        """A JSON-typed staging column (``staging.J``) as a string."""
        return f"CAST({col} AS VARCHAR)"


class SparkDialect(Dialect):
    name = "spark"
    _quote: ClassVar[str] = "`"
    # Spark SQL reads a backslash in a string literal as an escape (spark.sql.parser.escapedStringLiterals
    # is false by default): a backslash and a quote are each escaped with one
    _escapes: ClassVar[dict[int, str]] = str.maketrans({"\\": "\\\\", "'": "\\'"})

    def select(self, pairs: Sequence[tuple[str, str]]) -> str:
        items = ", ".join(f"CASE WHEN {c} THEN {self.literal(v)} END" for c, v in pairs)
        return f"filter(array({items}), x -> x IS NOT NULL)"

    def days_between(self, start: str, end: str) -> str:
        return f"datediff({end}, {start})"

    def min_pair(self, key: str, value: str, cond: str) -> str:
        return f"min(CASE WHEN {cond} THEN named_struct('k', {key}, 'v', {value}) END).v"

    def first(self, arr: str) -> str:
        return f"try_element_at({arr}, 1)"

    def filter(self, arr: str, body: str) -> str:
        return f"filter({arr}, x -> {body})"

    def after_last_slash(self, text: str) -> str:
        return f"substring_index({text}, '/', -1)"

    def json_text(self, col: str) -> str:
        return col  # Spark reads a JSON-typed column as a string already


def identifier(text: str) -> str:
    """A KB id as part of a column name; refused unless lower-case word characters."""
    if not re.fullmatch(r"[a-z0-9_]+", text):
        raise ValueError(f"unsafe SQL identifier {text!r}")
    return text
