"""One FHIR reading, executed two ways: the per-patient mapper and the bulk engines agree.

Records come from :class:`~withdrawal.fhir.generate.RecordGenerator`, which draws from every row of
the reading table (statuses, codes, units, date paths and forms, tie-breaks, look-backs). For each
generated patient, ``fhir.to_patient`` -> the tramadol screen and the population flags must equal the
bulk row (verdict, finding codes, MME, flags, tramadol active) on DuckDB and on Spark. Batched: one
export of many patients per Hypothesis example, so each engine runs once per example.
"""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from population_support import rows_by_id, truth_by_id

from tests_support import write_export
from withdrawal.fhir import to_patient
from withdrawal.fhir.generate import RecordGenerator, coverage
from withdrawal.fhir.reading import TABLE
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.population.flags import flag_columns
from withdrawal.population.per_patient import PatientEvaluator
from withdrawal.population.screen import run_screen

FLAG_COLUMNS = flag_columns(default_kb())

AS_OFS = (date(2026, 1, 1), date(2025, 6, 30), date(2024, 2, 29))


def _export(root: Path, records: dict[str, list[dict[str, Any]]]) -> None:
    write_export(root, records.values())


def _batch(kb: KnowledgeBase, seed: int, n: int, as_of: date) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    gen = RecordGenerator(kb, as_of, random.Random(seed))
    return {f"p{seed}x{i}": gen.record(f"p{seed}x{i}") for i in range(n)}, gen.drawn


def _check(kb: KnowledgeBase, records: dict[str, list[dict[str, Any]]], rows: dict[str, dict[str, Any]],
           as_of: date) -> None:
    evaluate = PatientEvaluator(kb)
    assert set(rows) == set(records)
    for pid, resources in records.items():
        data = to_patient(resources, kb, as_of=as_of, patient_id=pid).patient
        want = evaluate(data)
        row = rows[pid]
        context = (pid, json.dumps(resources)[:4000])
        assert row["verdict"] == want.verdict, context
        assert list(row["codes"]) == list(want.codes), context
        # both sides round the MME to 3 decimals after summing in their own order: a sum that lands
        # on a half-way value can round either way, so the two may differ by one last digit
        assert row["mme"] == pytest.approx(want.mme, abs=1.0001e-3), context
        assert row["tramadol_active"] == want.tramadol_active, context
        assert {c: row[c] for c in FLAG_COLUMNS} == {f"flag_{k}": v for k, v in want.flags.items()}, context
        assert want.options and {t: list(row[f"option_{t}"]) for t in want.options} == {
            t: list(v) for t, v in want.options.items()}, context  # option findings too


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), as_of=st.sampled_from(AS_OFS))
def test_mapper_equals_duckdb(seed: int, as_of: date, kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> None:
    records, _ = _batch(kb, seed, 40, as_of)
    root = tmp_path_factory.mktemp("diff")
    _export(root / "bulk", records)
    run = run_screen(root / "bulk", root / "out", engine="duckdb", as_of=as_of, kb=kb)
    _check(kb, records, rows_by_id(run.patients_path), as_of)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), as_of=st.sampled_from(AS_OFS))
def test_mapper_equals_spark(seed: int, as_of: date, kb: KnowledgeBase, spark: Any,
                             tmp_path_factory: pytest.TempPathFactory) -> None:
    records, _ = _batch(kb, seed, 120, as_of)
    root = tmp_path_factory.mktemp("diffspark")
    _export(root / "bulk", records)
    run = run_screen(root / "bulk", root / "out", engine="spark", as_of=as_of, kb=kb, spark=spark)
    _check(kb, records, rows_by_id(run.patients_path), as_of)


def test_the_generator_covers_the_whole_table(kb: KnowledgeBase) -> None:
    """Every row of the reading table is drawn (measured on 300 patients; docs/fhir-reading.md reports it)."""
    _, drawn = _batch(kb, 1, 300, AS_OFS[0])
    got, total, missing = coverage(drawn)
    assert total == len(TABLE) and missing == [] and got == total


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def test_assess_and_population_screen_agree_as_of_a_date(kb: KnowledgeBase, tmp_path: Path) -> None:
    """`withdrawal assess --as-of D` and `withdrawal population screen --as-of D` on the same record."""
    from typer.testing import CliRunner

    from withdrawal.cli import app

    as_of = date(2025, 6, 30)
    records, _ = _batch(kb, 7, 12, as_of)
    draft = "pdraft"  # the example: a phenelzine order in draft
    records[draft] = [
        {"resourceType": "Patient", "id": draft, "birthDate": "1980-05-05"},
        {"resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
         "subject": {"reference": f"Patient/{draft}"},
         "medicationCodeableConcept": {"text": "phenelzine 15 MG Oral Tablet"}},
    ]
    _export(tmp_path / "bulk", records)
    rows = rows_by_id(run_screen(tmp_path / "bulk", tmp_path / "out", as_of=as_of, kb=kb).patients_path)
    assert rows[draft]["verdict"] == "contraindicated" and "maoi" in rows[draft]["codes"]
    runner = CliRunner()
    for pid, resources in records.items():
        path = tmp_path / f"{pid}.json"
        path.write_text(json.dumps(_bundle(resources)), encoding="utf-8")
        out = runner.invoke(app, ["assess", str(path), "--as-of", as_of.isoformat(), "--format", "json",
                                  "--no-simulate"])
        assert out.exit_code == 0, out.output
        answer = json.loads(out.output)["tramadol"]
        assert answer["verdict"] == rows[pid]["verdict"], pid
        assert sorted(f["code"] for f in answer["findings"]) == list(rows[pid]["codes"]), pid
    bad = runner.invoke(app, ["assess", str(tmp_path / f"{draft}.json"), "--as-of", "30/06/2025"])
    assert bad.exit_code == 2 and "--as-of" in bad.output


def test_synth_varied_export_screens_as_its_per_patient_truth(tmp_path: Path) -> None:
    """`population synth --varied`: the whole table in one export; the bulk screen equals its truth."""
    from typer.testing import CliRunner

    from withdrawal.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["population", "synth", "150", "--out", str(tmp_path / "v"), "--varied", "--seed", "4"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "v" / "Medication.ndjson").is_file()  # references to Medication resources are drawn
    run = run_screen(tmp_path / "v", tmp_path / "o")  # as of the manifest's transactionTime
    rows, truth = rows_by_id(run.patients_path), truth_by_id(tmp_path / "v")
    assert set(rows) == set(truth) and len(rows) == 150
    for pid, t in truth.items():
        for col in ("verdict", "codes", "tramadol_active", *FLAG_COLUMNS, *(c for c in t if c.startswith("option_"))):
            assert rows[pid][col] == t[col], (pid, col)
        assert rows[pid]["mme"] == pytest.approx(t["mme"], abs=1.0001e-3)  # rounded to 3 decimals each side
    bad = runner.invoke(app, ["population", "synth", "5", "--out", str(tmp_path / "w"), "--varied", "--gzip"])
    assert bad.exit_code == 2 and "--varied" in bad.output
