"""What analysts get: small counts suppressed everywhere, pseudonymous ids on request, CSV beside Parquet."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from population_support import AS_OF, N, rows_by_id, truth_by_id
from typer.testing import CliRunner

from withdrawal.cli import app
from withdrawal.errors import InputError
from withdrawal.population.compiler import age_band_sql
from withdrawal.population.screen import ScreenRun, run_screen
from withdrawal.population.sql import Dialect
from withdrawal.population.summary import AGE_BANDS, UNKNOWN_AGE, suppress


def _cells(summary: dict[str, Any]) -> list[Any]:
    blocks = [summary["overall"], *summary["by_age_band"].values(), *summary["by_sex"].values()]
    return [v for b in blocks for v in (b["patients"], *b["counts"].values())]


def test_no_summary_cell_is_small(duck_run: ScreenRun) -> None:
    summary = json.loads(duck_run.summary_path.read_text())
    cells = _cells(summary)
    assert None in cells  # the small export has rare flags and small sex groups: some cells are suppressed
    assert all(v is None or v == 0 or v >= 11 for v in cells)
    assert "suppressed" in summary["suppression"]["rule"]


def test_a_lone_suppressed_cell_takes_a_second_with_it() -> None:
    def block(n: int, c: int) -> dict[str, Any]:
        return {"patients": n, "counts": {"x": c}, "rates": {"x": c / n}}

    s = {"patients": 300, "overall": block(300, 45), "by_age_band": {"a": block(100, 5), "b": block(100, 15),
                                                                      "c": block(100, 25)},
         "by_sex": {"f": block(150, 20), "m": block(150, 25)}}
    out = suppress(s, 11)
    counts = {g: b["counts"]["x"] for g, b in out["by_age_band"].items()}
    assert counts == {"a": None, "b": None, "c": 25}  # 45 - 25 no longer gives a's 5
    assert out["overall"]["counts"]["x"] == 45
    assert suppress(s, 1)["by_age_band"]["a"]["counts"]["x"] == 5
    with pytest.raises(ValueError, match="min_cell"):
        suppress(s, 0)


def test_pseudonyms_and_csv(export_small: Path, tmp_path: Path) -> None:
    key = b"site-secret-key-0123456789"
    run = run_screen(export_small, tmp_path / "o", as_of=AS_OF, pseudonym_key=key, csv_copy=True, min_cell=1)
    rows = rows_by_id(run.patients_path)
    truth = truth_by_id(export_small)
    expected = {hmac.new(key, pid.encode(), hashlib.sha256).hexdigest(): pid for pid in truth}
    assert set(rows) == set(expected) and not set(rows) & set(truth)
    for hashed, row in list(rows.items())[:50]:
        assert row["verdict"] == truth[expected[hashed]]["verdict"]
    with (tmp_path / "o" / "patients.csv").open(newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == N and {r["patient_id"] for r in table} == set(rows)
    one = next(r for r in table if rows[r["patient_id"]]["codes"])
    assert one["codes"] == ";".join(rows[one["patient_id"]]["codes"])
    opt = next(r for r in table if rows[r["patient_id"]]["option_methadone"])
    assert opt["option_methadone"] == ";".join(rows[opt["patient_id"]]["option_methadone"])
    summary = json.loads(run.summary_path.read_text())
    assert summary["patient_ids"].startswith("HMAC-SHA256") and summary["suppression"]["min_cell"] == 1
    with pytest.raises(InputError, match="pseudonym_key"):
        run_screen(export_small, tmp_path / "x", as_of=AS_OF, pseudonym_key=b"short")
    with pytest.raises(InputError, match="min_cell"):
        run_screen(export_small, tmp_path / "x", as_of=AS_OF, min_cell=0)


def test_cli_options(export_small: Path, tmp_path: Path) -> None:
    keyfile = tmp_path / "key"
    keyfile.write_bytes(b"another-site-key-of-enough-length")
    res = CliRunner().invoke(app, ["population", "screen", str(export_small), "--out", str(tmp_path / "o"),
                                   "--csv", "--pseudonym-key-file", str(keyfile), "--min-cell", "20"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "patients.csv").is_file()
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert all(v is None or v == 0 or v >= 20 for v in _cells(summary))
    missing = CliRunner().invoke(app, ["population", "screen", str(export_small), "--out", str(tmp_path / "p"),
                                       "--pseudonym-key-file", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "--pseudonym-key-file" in missing.output


def test_the_output_age_bands_are_the_summarys() -> None:
    """The compiled ``age_band`` (DuckDB) puts every age in the summary band whose range names it."""
    ages = [None, *range(0, 121)]
    con = duckdb.connect()
    got = [r[0] for r in con.execute(f"SELECT {age_band_sql(Dialect())} FROM unnest(?::INT[]) AS t(age)",
                                     [ages]).fetchall()]
    assert set(got) == set(AGE_BANDS)
    for age, band in zip(ages, got, strict=True):
        if age is None:
            assert band == UNKNOWN_AGE
        else:
            low, _, high = band.rstrip("+").partition("-")
            assert int(low) <= age and (not high or age <= int(high)), (age, band)
