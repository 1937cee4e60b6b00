"""The benchmark times exactly what ``withdrawal pk simulate`` computes for its regimen."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from typer.testing import CliRunner

from withdrawal.cli import app

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "pk_simulate.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pk_simulate_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_benchmark_call_matches_the_simulate_command() -> None:
    from withdrawal.pk.population import percentile_table

    bench = _bench()
    res = CliRunner().invoke(app, ["pk", "simulate", *bench.CLI_ARGS, "--patients", "2500",
                                   "--seed", "3", "--format", "json"])
    assert res.exit_code == 0, res.output
    cli = json.loads(res.output)
    ours = json.loads(json.dumps(percentile_table(
        bench.simulate_like_cli(bench.regimen(), patients=2500, seed=3))))
    assert cli.pop("course_sources") and cli.pop("course_note")
    assert cli == ours
    assert cli["grid_points"] == 14 * 96  # 14-day regimen on the 15-minute grid
