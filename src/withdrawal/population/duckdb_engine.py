"""Population screen on embedded DuckDB.

Each resource type is read once with ``read_json`` (explicit column types, ``ignore_errors``),
projected to the flat staging columns of ``facts.py``; rows that do not parse as an object with
the file's resourceType and an id are counted per file and only those files are re-scanned line
by line to report the bad lines (:func:`~withdrawal.population.export.locate_bad_lines`). The
facts, compiled rules and output are one pipelined query written to Parquet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.population.export import BadLine, Export, ExportFile, locate_bad_lines
from withdrawal.population.facts import (
    RXNORM_SYSTEM,
    STATUS_ANSWERS,
    MapTable,
    facts_sql,
    map_tables,
    sql_list,
    summary_sql,
)
from withdrawal.population.facts import date_sql as _date
from withdrawal.population.facts import patient_ref_sql as _ref
from withdrawal.population.mme import MmeTable
from withdrawal.population.rules import FLAG_COLUMNS, BitLayout, Dialect, compile_screen, windows

Progress = Callable[[str, int, int], None]

_CODING = "STRUCT(system VARCHAR, code VARCHAR, display VARCHAR)[]"
_CONCEPT = f"STRUCT(coding {_CODING}, text VARCHAR)"
_REF = "STRUCT(reference VARCHAR)"
_DOSAGE = ('STRUCT(timing STRUCT("repeat" STRUCT(frequency DOUBLE, period DOUBLE, periodUnit VARCHAR)), '
           "doseAndRate STRUCT(doseQuantity STRUCT(value DOUBLE, unit VARCHAR, code VARCHAR))[])[]")

COLUMNS: dict[str, dict[str, str]] = {
    "Patient": {"gender": "VARCHAR", "birthDate": "VARCHAR"},
    "Condition": {"subject": _REF, "clinicalStatus": _CONCEPT, "verificationStatus": _CONCEPT, "code": _CONCEPT,
                  "onsetDateTime": "VARCHAR", "abatementDateTime": "VARCHAR"},
    "MedicationRequest": {"status": "VARCHAR", "subject": _REF, "authoredOn": "VARCHAR",
                          "medicationCodeableConcept": _CONCEPT, "dosageInstruction": _DOSAGE,
                          "dispenseRequest": 'STRUCT(validityPeriod STRUCT(start VARCHAR, "end" VARCHAR))'},
    "MedicationStatement": {"status": "VARCHAR", "subject": _REF, "medicationCodeableConcept": _CONCEPT,
                            "effectivePeriod": 'STRUCT(start VARCHAR, "end" VARCHAR)',
                            "effectiveDateTime": "VARCHAR", "dosage": _DOSAGE},
    "AllergyIntolerance": {"patient": _REF, "clinicalStatus": _CONCEPT, "verificationStatus": _CONCEPT,
                           "code": _CONCEPT},
    "Observation": {"status": "VARCHAR", "subject": _REF, "code": _CONCEPT, "effectiveDateTime": "VARCHAR",
                    "valueQuantity": "STRUCT(value DOUBLE, unit VARCHAR)", "valueCodeableConcept": _CONCEPT},
}


def _rx(concept: str) -> str:
    return f"list_filter({concept}.coding, lambda x: x.system = '{RXNORM_SYSTEM}')[1].code"


def _text(concept: str) -> str:
    return f"coalesce({concept}.text, {concept}.coding[1].display)"


def _dose(col: str) -> str:
    q = f"{col}[1].doseAndRate[1].doseQuantity"
    r = f'{col}[1].timing."repeat"'
    return (f"{q}.value AS dose_value, coalesce({q}.code, {q}.unit) AS dose_unit, {r}.frequency AS frequency, "
            f"{r}.period AS period, {r}.periodUnit AS period_unit")


STAGE: dict[str, str] = {
    "Patient": "id AS patient_id, {date_birth} AS birth_date, gender AS sex".format(date_birth=_date("birthDate")),
    "Condition": (f"{_ref('subject')} AS patient_id, list_transform(code.coding, lambda x: x.code) AS codes, "
                  "clinicalStatus.coding[1].code AS clinical, verificationStatus.coding[1].code AS verification, "
                  f"{_date('onsetDateTime')} AS onset, {_date('abatementDateTime')} AS abatement"),
    "MedicationRequest": (f"{_ref('subject')} AS patient_id, status, {_date('authoredOn')} AS start_date, "
                          f"{_date('dispenseRequest.validityPeriod.end')} AS end_date, "
                          f"{_rx('medicationCodeableConcept')} AS rx_code, "
                          f"{_text('medicationCodeableConcept')} AS text, {_dose('dosageInstruction')}"),
    "MedicationStatement": (f"{_ref('subject')} AS patient_id, status, "
                            f"coalesce({_date('effectivePeriod.start')}, {_date('effectiveDateTime')}) AS start_date, "
                            f"{_date('effectivePeriod.end')} AS end_date, "
                            f"{_rx('medicationCodeableConcept')} AS rx_code, "
                            f"{_text('medicationCodeableConcept')} AS text, {_dose('dosage')}"),
    "AllergyIntolerance": (f"{_ref('patient')} AS patient_id, clinicalStatus.coding[1].code AS clinical, "
                           "verificationStatus.coding[1].code AS verification, "
                           f"{_rx('code')} AS rx_code, {_text('code')} AS text"),
    "Observation": (f"{_ref('subject')} AS patient_id, status, "
                    "list_filter(code.coding, lambda x: x.system = 'http://loinc.org')[1].code AS loinc, "
                    f"{_date('effectiveDateTime')} AS effective, valueQuantity.value AS value, "
                    "list_filter(valueCodeableConcept.coding, lambda x: x.code IN "
                    f"{sql_list(STATUS_ANSWERS)})[1].code AS value_code"),
}
_EMPTY: dict[str, str] = {
    "Patient": "NULL::VARCHAR AS patient_id, NULL::DATE AS birth_date, NULL::VARCHAR AS sex",
    "Condition": ("NULL::VARCHAR AS patient_id, NULL::VARCHAR[] AS codes, NULL::VARCHAR AS clinical, "
                  "NULL::VARCHAR AS verification, NULL::DATE AS onset, NULL::DATE AS abatement"),
    "MedicationRequest": ("NULL::VARCHAR AS patient_id, NULL::VARCHAR AS status, NULL::DATE AS start_date, "
                          "NULL::DATE AS end_date, NULL::VARCHAR AS rx_code, NULL::VARCHAR AS text, "
                          "NULL::DOUBLE AS dose_value, NULL::VARCHAR AS dose_unit, NULL::DOUBLE AS frequency, "
                          "NULL::DOUBLE AS period, NULL::VARCHAR AS period_unit"),
    "AllergyIntolerance": ("NULL::VARCHAR AS patient_id, NULL::VARCHAR AS clinical, NULL::VARCHAR AS verification, "
                           "NULL::VARCHAR AS rx_code, NULL::VARCHAR AS text"),
    "Observation": ("NULL::VARCHAR AS patient_id, NULL::VARCHAR AS status, NULL::VARCHAR AS loinc, "
                    "NULL::DATE AS effective, NULL::DOUBLE AS value, NULL::VARCHAR AS value_code"),
}
_EMPTY["MedicationStatement"] = _EMPTY["MedicationRequest"]


@dataclass(frozen=True)
class EngineResult:
    patients_path: Path
    by_group: pa.Table
    bad_lines: tuple[BadLine, ...]
    patients: int
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage, in order


def _sql_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _read(con: duckdb.DuckDBPyConnection, rtype: str, files: Sequence[ExportFile]) -> list[BadLine]:
    """Stage one resource type into table ``raw_<type>``; return the bad lines of its files."""
    table = f"raw_{rtype.lower()}"
    if not files:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {_EMPTY[rtype]}, TRUE AS ok "
                    "LIMIT 0")
        return []
    cols = {"resourceType": "VARCHAR", "id": "VARCHAR", **COLUMNS[rtype]}
    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in cols.items()) + "}"
    # the file name column only when there are several files (one file: a constant in the query below)
    several = len(files) > 1
    filename = "filename" if several else "'" + str(files[0].path).replace("'", "''") + "'"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {STAGE[rtype]}, "
        f"coalesce(resourceType = '{rtype}' AND id IS NOT NULL AND id <> '', FALSE) AS ok"
        + (", filename " if several else " ") +
        f"FROM read_json({_sql_list([f.path for f in files])}, format = 'newline_delimited', "
        f"ignore_errors = true, filename = {str(several).lower()}, columns = {spec}, maximum_object_size = 67108864)"
    )
    dirty = con.execute(f"SELECT {filename} AS f, count(*) FROM {table} WHERE NOT ok GROUP BY f").fetchall()
    bad: list[BadLine] = []
    by_path = {str(f.path): f for f in files}
    for filename, count in sorted(dirty):
        f = by_path.get(str(filename))
        found = locate_bad_lines(f) if f is not None else []
        if len(found) < int(count):
            found.append(BadLine(Path(str(filename)).name, 0,
                                 f"{int(count) - len(found)} row(s) rejected without a located line"))
        bad.extend(found)
    return bad


class StageClock:
    """Seconds spent in each stage, in order, with the progress callback told after each."""

    def __init__(self, steps: int, progress: Progress | None) -> None:
        self.steps = steps
        self.progress = progress
        self.done = 0
        self.stages: dict[str, float] = {}
        self._last = time.perf_counter()

    def tick(self, stage: str) -> None:
        self.done += 1
        now = time.perf_counter()
        self.stages[stage] = round(now - self._last, 3)
        self._last = now
        if self.progress is not None:
            self.progress(stage, self.done, self.steps)


def screen(
    export: Export,
    out: Path,
    as_of: date,
    kb: KnowledgeBase,
    table: MmeTable,
    *,
    progress: Progress | None = None,
    threads: int | None = None,
) -> EngineResult:
    """Screen every patient of the export; write ``out/patients/part-0.parquet``."""
    clock = StageClock(len(COLUMNS) + 3, progress)
    tick, stages = clock.tick, clock.stages

    con = duckdb.connect(":memory:")
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute("SET preserve_insertion_order = false")
        bad: list[BadLine] = []
        for rtype in COLUMNS:
            bad.extend(_read(con, rtype, export.of_type(rtype)))
            tick(f"read {rtype}")
        con.execute("CREATE TEMP VIEW pat AS SELECT patient_id, birth_date, sex FROM raw_patient WHERE ok")
        con.execute("CREATE TEMP VIEW cond AS SELECT patient_id, unnest(codes) AS code, clinical, verification, "
                    "onset, abatement FROM raw_condition WHERE ok")
        med_cols = ("patient_id, status, start_date, end_date, rx_code, text, dose_value, dose_unit, frequency, "
                    "period, period_unit")
        con.execute(f"CREATE TEMP VIEW med AS SELECT {med_cols} FROM raw_medicationrequest WHERE ok "
                    f"UNION ALL SELECT {med_cols} FROM raw_medicationstatement WHERE ok")
        con.execute("CREATE TEMP VIEW alg AS SELECT patient_id, clinical, verification, rx_code, text "
                    "FROM raw_allergyintolerance WHERE ok")
        con.execute("CREATE TEMP VIEW obs AS SELECT patient_id, status, loinc, effective, value, value_code "
                    "FROM raw_observation WHERE ok")

        codes = [r[0] for r in con.execute("SELECT DISTINCT code FROM cond WHERE code IS NOT NULL").fetchall()]
        med_pairs = con.execute("SELECT DISTINCT rx_code, text FROM med").fetchall()
        alg_pairs = con.execute("SELECT DISTINCT rx_code, text FROM alg").fetchall()
        layout = BitLayout.of(kb)
        for m in map_tables(kb, layout, codes, med_pairs, alg_pairs):
            con.register(m.name, _arrow(m))
        tick("map codes")

        d = Dialect()
        compiled = compile_screen(kb, table, d)
        query = (f"WITH facts AS ({facts_sql(d, as_of, table, windows(kb), layout, compiled.set_words)}), "
                 f"ruled AS ({compiled.rules_sql}) {compiled.output_sql}")
        target = out / "patients"
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.parquet"):
            old.unlink()
        path = target / "part-0.parquet"
        con.execute(f"COPY ({query}) TO '{_esc(path)}' (FORMAT parquet, COMPRESSION snappy)")
        tick("screen")
        con.execute(f"CREATE TEMP VIEW screened AS SELECT * FROM read_parquet('{_esc(path)}')")
        groups = con.sql(summary_sql(FLAG_COLUMNS)).to_arrow_table()
        n = int(con.execute("SELECT count(*) FROM screened").fetchone()[0])  # type: ignore[index]
        tick("summary")
        return EngineResult(patients_path=target, by_group=groups, bad_lines=tuple(bad), patients=n,
                            stages=stages)
    finally:
        con.close()


def _esc(path: Path) -> str:
    return str(path).replace("'", "''")


def _arrow(m: MapTable) -> pa.Table:
    types = {"STRING": pa.string(), "BIGINT": pa.int64()}
    schema = pa.schema([(n, types[t]) for n, t in m.columns])
    return pa.table({n: [r[i] for r in m.rows] for i, (n, _) in enumerate(m.columns)}, schema=schema)
