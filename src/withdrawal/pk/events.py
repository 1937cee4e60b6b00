"""NONMEM-style event records: the dosing language of pharmacometrics (NONMEM, mrgsolve).

Columns: ``ID, TIME, EVID, AMT, CMT, SS, II, ADDL, RATE`` plus per-compartment ``ALAGn``,
``Fn``, ``Rn``, ``Dn`` whose values on a dose record apply to that dose. Other columns (DV,
covariates) are carried through and ignored. Bad input raises ``InputError`` naming the
column and row before any simulation is done.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from withdrawal.errors import InputError

CORE = ("ID", "TIME", "EVID", "AMT", "CMT", "SS", "II", "ADDL", "RATE")
REQUIRED = ("ID", "TIME")
PER_CMT = re.compile(r"^(ALAG|F|R|D)(\d+)$")
EVIDS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class EventRecord:
    """One data row. ``row`` is its 0-based index in the input (header excluded)."""

    row: int
    id: str
    time: float
    evid: int = 0
    amt: float = 0.0
    cmt: int = 0
    ss: int = 0
    ii: float = 0.0
    addl: int = 0
    rate: float = 0.0
    per_cmt: Mapping[str, float] = field(default_factory=dict)

    def cmt_value(self, prefix: str, cmt: int, default: float) -> float:
        """Value of ``ALAGn``/``Fn``/``Rn``/``Dn`` for compartment ``cmt`` on this record."""
        return self.per_cmt.get(f"{prefix}{cmt}", default)

    @property
    def is_dose(self) -> bool:
        return self.evid in (1, 4)


def _number(raw: str, column: str, row: int) -> float:
    text = raw.strip()
    if text in ("", "."):
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise InputError(column, f"row {row + 1}: not a number", value=raw) from None
    if not math.isfinite(value):
        raise InputError(column, f"row {row + 1}: not a finite number", value=raw)
    return value


def _integer(raw: str, column: str, row: int, allowed: Iterable[int] | None = None) -> int:
    value = _number(raw, column, row)
    if value != int(value) or value < 0:
        raise InputError(column, f"row {row + 1}: must be a non-negative integer", value=raw)
    if allowed is not None and int(value) not in tuple(allowed):
        raise InputError(column, f"row {row + 1}: unsupported value", value=raw, allowed=allowed)
    return int(value)


def parse_rows(rows: Iterable[Mapping[str, str]], header: Iterable[str]) -> list[EventRecord]:
    """Turn CSV rows into checked event records."""
    cols = [c.strip() for c in header]
    for req in REQUIRED:
        if req not in cols:
            raise InputError(req, "required column is missing", allowed=CORE)
    per_cmt_cols = [c for c in cols if PER_CMT.match(c)]
    records: list[EventRecord] = []
    for i, raw in enumerate(rows):
        get = {k.strip(): (v or "") for k, v in raw.items() if k is not None}
        time = _number(get["TIME"], "TIME", i)
        ident = get["ID"].strip()
        if not ident:
            raise InputError("ID", f"row {i + 1}: empty", value=ident)
        evid = _integer(get.get("EVID", "0"), "EVID", i, EVIDS)
        rec = EventRecord(
            row=i,
            id=ident,
            time=time,
            evid=evid,
            amt=_number(get.get("AMT", "0"), "AMT", i),
            cmt=_integer(get.get("CMT", "0"), "CMT", i),
            ss=_integer(get.get("SS", "0"), "SS", i, (0, 1, 2)),
            ii=_number(get.get("II", "0"), "II", i),
            addl=_integer(get.get("ADDL", "0"), "ADDL", i),
            rate=_number(get.get("RATE", "0"), "RATE", i),
            per_cmt={c: _number(get[c], c, i) for c in per_cmt_cols},
        )
        _check_record(rec)
        records.append(rec)
    _check_order(records)
    return records


def _check_record(rec: EventRecord) -> None:
    r = rec.row + 1
    if rec.time < 0:
        raise InputError("TIME", f"row {r}: must be >= 0", value=rec.time)
    if rec.ii < 0:
        raise InputError("II", f"row {r}: must be >= 0", value=rec.ii)
    if not rec.is_dose:
        return
    if rec.amt < 0:
        raise InputError("AMT", f"row {r}: must be >= 0", value=rec.amt)
    if rec.rate < 0 and rec.rate not in (-1.0, -2.0):
        raise InputError("RATE", f"row {r}: must be >= 0, -1 or -2", value=rec.rate)
    if rec.addl > 0 and rec.ii <= 0:
        raise InputError("II", f"row {r}: ADDL needs II > 0", value=rec.ii)
    if rec.ss and rec.ii <= 0 and not (rec.rate > 0 and rec.amt == 0):
        raise InputError("II", f"row {r}: SS needs II > 0 (or AMT 0 with RATE > 0)", value=rec.ii)
    for prefix in ("ALAG", "F", "R", "D"):
        v = rec.cmt_value(prefix, rec.cmt, 0.0)
        if v < 0:
            raise InputError(f"{prefix}{rec.cmt}", f"row {r}: must be >= 0", value=v)


def _check_order(records: list[EventRecord]) -> None:
    last: dict[str, float] = {}
    for rec in records:
        prev = last.get(rec.id)
        if prev is not None and rec.time < prev and rec.evid not in (3, 4):
            raise InputError("TIME", f"row {rec.row + 1}: time goes backwards within ID {rec.id}",
                             value=rec.time)
        last[rec.id] = rec.time


def read_event_text(text: str) -> list[EventRecord]:
    """Parse NONMEM-style CSV text."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise InputError("DATA", "empty file: a header row is needed", allowed=CORE)
    return parse_rows(reader, reader.fieldnames)


def read_event_csv(path: Path) -> list[EventRecord]:
    """Read a NONMEM-style CSV file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError("DATA", f"cannot read {path}: {exc.strerror}", value=str(path)) from None
    return read_event_text(text)
