"""The MME and the patch-rate conversion, defined once in the knowledge base (``mme.yaml``: the factors
and their ``dose_units``), give the same numbers on every path: the per-patient Python MME against the
bulk SQL on DuckDB, the FHIR mapper's reading of a patch rate and the synthetic truth's against the
table's conversion."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests_support import kb_with
from withdrawal.errors import KnowledgeBaseError
from withdrawal.fhir import daily_dose_mg
from withdrawal.fhir.reading import values
from withdrawal.knowledge.base import data_dir
from withdrawal.knowledge.loader import KnowledgeBase, default_kb, load_kb
from withdrawal.population.mme import mg_per_day_to_mme, mme_sql
from withdrawal.population.sql import Dialect
from withdrawal.population.synth import _Latent, _Med, latent_patient_in

KB = default_kb()
DRUGS = sorted(KB.mme.by_drug())
RATE_UNITS = values("Dosage", "doseQuantity unit", "rate")
doses = st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False)
rates = st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from([*DRUGS, "buprenorphine", "sertraline"]), doses),
                     min_size=1, max_size=40))
def test_python_mme_equals_the_sql_mme_on_duckdb(rows: list[tuple[str, float]]) -> None:
    """The SQL the bulk facts use (``mme_sql``) and ``mg_per_day_to_mme``: the same float, per drug."""
    table = pa.table({"drug": [d for d, _ in rows], "mg_day": pa.array([m for _, m in rows], pa.float64())})
    con = duckdb.connect()
    con.register("t", table)
    got = [r[0] for r in con.execute(f"SELECT {mme_sql(Dialect(), KB.mme, 'drug', 'mg_day')} FROM t").fetchall()]
    assert got == [mg_per_day_to_mme(d, m, KB.mme) for d, m in rows]


@settings(max_examples=200, deadline=None)
@given(rate=rates, unit=st.sampled_from(RATE_UNITS))
def test_a_patch_rate_reads_by_the_tables_conversion(rate: float, unit: str) -> None:
    """The mapper's patch rate (ug/h) and the synthetic truth's are the table's mcg_per_h conversion; the
    MME of the converted dose is the rate times the factor (the factor applies to mcg/h)."""
    conv = KB.mme.dose_unit(KB.mme.by_drug()["fentanyl"].dose_unit)
    mg_day = conv.to_mg_per_day(rate)
    read = daily_dose_mg([{"doseAndRate": [{"doseQuantity": {"value": rate, "code": unit}}]}], None, KB)
    assert read == (round(mg_day, 3) if mg_day > 0 else None)
    latent = _Latent("p1", "female", date(1970, 1, 1), 55,
                     meds=[_Med("fentanyl", "4337", "fentanyl patch", "active", 0, rate, 1, rate=True)])
    assert latent_patient_in(latent, KB.mme).medications[0].dose_mg_per_day == mg_day
    assert conv.from_mg_per_day(mg_day) == pytest.approx(rate, rel=1e-12)
    assert mg_per_day_to_mme("fentanyl", mg_day, KB.mme) == pytest.approx(rate * 2.4, rel=1e-12)


def test_the_conversions_of_the_table(kb: KnowledgeBase) -> None:
    patch = kb.mme.dose_unit("mcg_per_h")
    assert (patch.periods_per_day, patch.units_per_mg) == (24, 1000)  # 24 h a day, 1000 mcg a mg
    assert patch.to_mg_per_day(25) == 25 * 24 / 1000
    assert math.isclose(mg_per_day_to_mme("fentanyl", 0.6, kb.mme), 60)
    assert patch.sql_from_mg_per_day("x") == "x * 1000.0 / 24.0"
    daily = kb.mme.dose_unit("mg_per_day")
    assert daily.is_mg_per_day and daily.sql_from_mg_per_day("x") == "x"


def test_every_factor_unit_has_one_conversion(tmp_path: Path) -> None:
    line = next(ln for ln in (data_dir() / "mme.yaml").read_text().splitlines() if "unit: mcg_per_h" in ln)
    with pytest.raises(KnowledgeBaseError, match="fentanyl's dose unit mcg_per_h has no conversion"):
        load_kb(kb_with(tmp_path / "a", "mme.yaml", (line + "\n", "")))
    with pytest.raises(KnowledgeBaseError, match="mg_per_day must convert to itself"):
        load_kb(kb_with(tmp_path / "b", "mme.yaml", ("unit: mg_per_day, label: \"mg/day\", periods_per_day: 1",
                                                     "unit: mg_per_day, label: \"mg/day\", periods_per_day: 2")))
    with pytest.raises(KnowledgeBaseError, match="defined twice"):
        load_kb(kb_with(tmp_path / "c", "mme.yaml", (line + "\n", line + "\n" + line + "\n")))

