"""CLI: pk run and simulate through typer's CliRunner on the shared app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from withdrawal.cli import app

runner = CliRunner()


def test_pk_run_depot1_scenario_csv(data_dir: Path) -> None:
    data = data_dir / "reference" / "pk-nonmem" / "scenario01.csv"
    res = runner.invoke(app, ["pk", "run", str(data), "--model", "depot1", "--param", "CL=1.1",
                              "--param", "V=20", "--param", "KA=1.5"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0] == "ID,TIME,EVID,CP"
    assert len(lines) == 1 + 132  # header + one row per input row
    assert abs(float(lines[3].split(",")[3]) - 3754.4) < 1  # NONMEM row 2, TIME 1


def test_pk_run_tramadol_json(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("ID,TIME,EVID,AMT,CMT\n1,0,1,100,1\n1,2.4,0,0,2\n")
    res = runner.invoke(app, ["pk", "run", str(f), "--model", "tramadol", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)["rows"]
    assert abs(rows[1]["CM1"] - 88.7) < 0.5  # Rouini 2009 M1 peak (calibration)


def test_pk_run_bad_column_value_exits_2_naming_column(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("ID,TIME,EVID,AMT,CMT\n1,0,1,abc,1\n")
    res = runner.invoke(app, ["pk", "run", str(f), "--param", "CL=1", "--param", "V=1",
                              "--param", "KA=1"])
    assert res.exit_code == 2
    assert "AMT" in res.output and "Traceback" not in res.output


def test_pk_run_missing_time_column_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("ID,AMT\n1,100\n")
    res = runner.invoke(app, ["pk", "run", str(f), "--model", "tramadol"])
    assert res.exit_code == 2 and "TIME" in res.output


def test_pk_run_unknown_model_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("ID,TIME\n1,0\n")
    res = runner.invoke(app, ["pk", "run", str(f), "--model", "nope"])
    assert res.exit_code == 2 and "model" in res.output


def test_simulate_json_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "bands.png"
    res = runner.invoke(app, ["pk", "simulate", "--dose-mg", "50", "--interval-h", "6", "--days", "3",
                              "--patients", "500", "--seed", "1", "--taper", "25:2",
                              "--format", "json", "--plot", str(png)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["n_patients"] == 500 and out["threshold_ng_ml"] == 84.0
    assert set(out["groups"]) <= {"poor", "intermediate", "normal", "ultrarapid"}
    assert png.stat().st_size > 10_000


def test_simulate_text_table() -> None:
    res = runner.invoke(app, ["pk", "simulate", "--dose-mg", "100", "--interval-h", "6", "--days", "2",
                              "--patients", "200", "--phenotype", "normal"])
    assert res.exit_code == 0, res.output
    assert "normal" in res.output and "exploratory" in res.output


def test_simulate_bad_grid_exits_2() -> None:
    res = runner.invoke(app, ["pk", "simulate", "--dose-mg", "50", "--interval-h", "6", "--days", "1",
                              "--grid-min", "7"])
    assert res.exit_code == 2 and "grid_min" in res.output


def test_simulate_bad_taper_exits_2() -> None:
    res = runner.invoke(app, ["pk", "simulate", "--dose-mg", "50", "--interval-h", "6", "--days", "1",
                              "--taper", "fifty"])
    assert res.exit_code == 2 and "taper" in res.output
