"""Fixtures of the population tests: small synthetic exports, one DuckDB run, one SparkSession."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from population_support import AS_OF, N  # noqa: E402

from withdrawal.population.screen import ScreenRun, run_screen  # noqa: E402
from withdrawal.population.synth import TRUTH_FILE, synthesize  # noqa: E402


@pytest.fixture(scope="session")
def export_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "bulk"
    synthesize(out, N, seed=3, as_of=AS_OF)
    return out


@pytest.fixture(scope="session")
def duck_run(export_small: Path, tmp_path_factory: pytest.TempPathFactory) -> ScreenRun:
    return run_screen(export_small, tmp_path_factory.mktemp("duck"), engine="duckdb")


BAD_LINES = [
    '{"resourceType":"Condition","id":"broken-1","subject":{"reference":"Patient/p00000001"},"code":',
    "this is not json",
    '{"resourceType":"Observation","id":"wrong-type","status":"final"}',
    '{"resourceType":"Condition","subject":{"reference":"Patient/p00000002"}}',
    "[1, 2, 3]",
]


@pytest.fixture(scope="session")
def dirty_export(export_small: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, int]]]:
    """The small export without manifest, bad lines inserted into Condition, MedicationRequest gzipped."""
    import gzip

    root = tmp_path_factory.mktemp("dirty") / "bulk"
    shutil.copytree(export_small, root)
    (root / "manifest.json").unlink()
    (root / TRUTH_FILE).unlink()
    cond = root / "Condition.ndjson"
    lines = cond.read_text(encoding="utf-8").splitlines()
    expected: list[tuple[str, int]] = []
    out: list[str] = []
    for i, line in enumerate(lines):
        if i in (0, 10, 50, 51, 300):
            bad = BAD_LINES[len(expected)]
            out.append(bad)
            expected.append(("Condition.ndjson", len(out)))
        out.append(line)
    out.insert(20, "")  # blank lines are allowed
    expected = [(f, n + 1 if n > 20 else n) for f, n in expected]
    cond.write_text("\n".join(out) + "\n", encoding="utf-8")
    mr = root / "MedicationRequest.ndjson"
    mr_lines = mr.read_text(encoding="utf-8").splitlines()
    mr_lines.insert(5, '{"resourceType":"MedicationRequest","id":"x","status":"active",')
    expected.append(("MedicationRequest.ndjson.gz", 6))
    with gzip.open(root / "MedicationRequest.ndjson.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(mr_lines) + "\n")
    mr.unlink()
    return root, sorted(expected)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from withdrawal.population.spark_engine import session

    s = session("local[2]", shuffle_partitions=2)
    yield s
    s.stop()
