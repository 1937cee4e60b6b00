"""Start-up: each command imports what it uses (checked in a fresh interpreter, where imports are real)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("numpy", "scipy", "matplotlib", "duckdb", "pyarrow", "pyspark", "pydantic", "fhir", "sqlalchemy",
         "fastapi", "withdrawal.knowledge", "withdrawal.service", "withdrawal.population")


def _loaded_after(code: str) -> list[str]:
    """The HEAVY modules loaded once ``code`` has run in a fresh interpreter."""
    probe = (f"import sys, json\n{code}\n"
             f"print(json.dumps(sorted({{m for m in {HEAVY!r} if m in sys.modules}})))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def test_the_cli_imports_no_domain_or_heavy_library() -> None:
    assert _loaded_after("import withdrawal.cli") == []


def test_population_screen_imports_only_its_engine_and_the_chart_only_for_a_chart(
        export_small: Path, tmp_path: Path) -> None:
    run = ("from withdrawal.cli import app\n"
           f"app(['population', 'screen', {str(export_small)!r}, '--out', {str(tmp_path / 'a')!r}{{}}], "
           "standalone_mode=False)")
    without_chart = _loaded_after(run.format(", '--no-chart'"))
    assert "duckdb" in without_chart
    assert not {"matplotlib", "pyspark", "pyarrow", "numpy"} & set(without_chart)
    assert not (tmp_path / "a" / "population_rates.png").exists()
    assert (tmp_path / "a" / "summary.json").is_file()
    with_chart = _loaded_after(run.format(""))
    assert "matplotlib" in with_chart and "pyspark" not in with_chart
    assert (tmp_path / "a" / "population_rates.png").stat().st_size > 10_000
