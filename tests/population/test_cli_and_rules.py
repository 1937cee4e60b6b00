"""CLI commands, rule compilation and the MME table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from population_support import rows_by_id, truth_by_id
from typer.testing import CliRunner

from tests_support import kb_with
from withdrawal.cli import app
from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.loader import KnowledgeBase, load_kb
from withdrawal.knowledge.models import Match
from withdrawal.population.compiler import bulk_gaps, compile_match, compile_screen, windows
from withdrawal.population.mme import mg_per_day_to_mme
from withdrawal.population.sql import Dialect, SparkDialect

runner = CliRunner()
D = Dialect()


def test_cli_synth_then_screen(tmp_path: Path) -> None:
    export, out = tmp_path / "bulk", tmp_path / "out"
    res = runner.invoke(app, ["population", "synth", "250", "--out", str(export), "--seed", "2", "--gzip"])
    assert res.exit_code == 0, res.output
    assert (export / "manifest.json").is_file() and (export / "Patient.ndjson.gz").is_file()
    res = runner.invoke(app, ["population", "screen", str(export), "--out", str(out), "--as-of", "2026-01-01"])
    assert res.exit_code == 0, res.output
    assert "screened 250 patients with duckdb as of 2026-01-01" in res.output
    assert "tramadol 0.2" in res.output
    got, truth = rows_by_id(out / "patients"), truth_by_id(export)
    assert {k: v["codes"] for k, v in got.items()} == {k: v["codes"] for k, v in truth.items()}
    assert json.loads((out / "summary.json").read_text())["engine"] == "duckdb"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "oracle"], "allowed: duckdb, spark"),
        (["--as-of", "yesterday"], "as_of"),
        (["--spark-master", "spark://h:7077"], "only with --engine spark"),
    ],
)
def test_cli_screen_errors_exit_2(args: list[str], message: str, export_small: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["population", "screen", str(export_small), "--out", str(tmp_path), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_cli_screen_missing_export(tmp_path: Path) -> None:
    res = runner.invoke(app, ["population", "screen", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not a directory" in res.output


def test_cli_synth_bad_n(tmp_path: Path) -> None:
    res = runner.invoke(app, ["population", "synth", "0", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "at least 1" in res.output


def test_every_rule_is_compiled_for_both_dialects(kb: KnowledgeBase) -> None:
    for d in (Dialect(), SparkDialect()):
        compiled = compile_screen(kb, d)
        for rule in kb.tramadol.rules:
            if rule.id in bulk_gaps(kb):
                assert f"AS r_{rule.id}" not in compiled.rules_sql  # left out, never read as FALSE
            else:
                assert f"AS r_{rule.id}" in compiled.rules_sql
        for flag in kb.population_flags:
            assert f"AS flag_{flag.id}" in compiled.output_sql
    assert windows(kb) == (4, 14, 30, 365)
    assert bulk_gaps(kb) == ()  # every rule, the incomplete screen included, runs in bulk
    assert "AS r_incomplete_screen" in compiled.rules_sql


def test_facts_absent_from_the_export_never_match(kb: KnowledgeBase) -> None:
    assert compile_match(Match(child_pugh_in=("C",)), kb, D) == "(FALSE)"
    # the CYP2D6 phenotype and the unresolved items are read from the export (fhir.reading)
    assert compile_match(Match(cyp2d6_phenotype_in=("poor",)), kb, D) == "((cyp2d6 IS NOT NULL AND cyp2d6 IN ('poor')))"
    assert compile_match(Match(unresolved=True), kb, D) == "(unresolved)"
    assert compile_match(Match(setting_in=("inpatient",)), kb, D) == "(FALSE)"
    # breastfeeding status is read from Observations (LOINC 63895-7)
    assert compile_match(Match(breastfeeding=True), kb, D) == "(breastfeeding_obs)"
    assert compile_match(Match(breastfeeding=False), kb, D) == "(NOT breastfeeding_obs)"
    assert "drugs_within_14_" in compile_match(Match(drug_classes_any=("maoi",), stopped_within_days=14), kb, D)


def test_mme_table_is_cdc_2022_and_cited(kb: KnowledgeBase, tmp_path: Path) -> None:
    table = kb.mme
    factors = {f.drug: f.factor for f in table.factors}
    assert factors["tramadol"] == 0.2 and factors["methadone"] == 4.7 and factors["hydromorphone"] == 5
    assert "buprenorphine" not in factors
    assert table.threshold == 50
    assert all(s.startswith("pop_") for s in table.sources)
    assert {"pop_cdc_2022", "pop_opioid_mme_ig"} <= set(kb.sources)
    assert mg_per_day_to_mme("fentanyl", 25 * 24 / 1000, table) == pytest.approx(60.0)
    with pytest.raises(KnowledgeBaseError, match="unknown drug"):
        load_kb(kb_with(tmp_path, "mme.yaml", ("drug: codeine", "drug: unobtainium")))


def test_bit_layout_of_the_kb(kb: KnowledgeBase) -> None:
    from withdrawal.population.sql import WORD_BITS, BitLayout, bits_any

    bits = BitLayout.of(kb)
    assert bits.words("drugs") == -(-len(kb.drugs) // WORD_BITS) and bits.words("conditions") == 1
    every = bits.masks("drugs", kb.drugs)
    assert sum(bin(w).count("1") for w in every) == len(kb.drugs)
    assert all(0 <= w < 2**63 for w in every)  # the sign bit is never used
    last = bits.drugs[-1]
    assert bits.masks("drugs", (last,))[-1] == 1 << ((len(bits.drugs) - 1) % WORD_BITS)
    assert bits_any("allergies", bits.masks("drugs", ())) == "FALSE"
    assert "((conditions_0 & " in bits_any("conditions", bits.masks("conditions", ("pregnancy",)))
    with pytest.raises(KnowledgeBaseError, match="unknown drug"):
        bits.masks("drugs", ("unobtainium",))


def test_population_flags_are_cited_data(kb: KnowledgeBase, tmp_path: Path) -> None:
    assert len(kb.population_flags) >= 7 and all(f.sources for f in kb.population_flags)
    with pytest.raises(KnowledgeBaseError, match="sources"):
        load_kb(kb_with(tmp_path, "population_flags.yaml", lambda raw: raw["flags"][0].update(sources=[])))
