"""One intake: the CLI and the REST API read the same input the same way and give the same answer.

A differential test (Hypothesis) over FHIR records drawn from every row of the FHIR reading table
(``withdrawal.fhir.generate``), sent whole as a Bundle to the API and written to a file for the CLI,
both read as of the same date; and every vignette in version-1 form. The answer of each includes
the PK simulation of a printed tramadol schedule (one decision, in ``withdrawal.assess``).
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
from typer.testing import CliRunner

from conftest import login
from tests_support import data_path
from withdrawal.cli import app as cli
from withdrawal.fhir.generate import RecordGenerator
from withdrawal.knowledge.loader import default_kb

AS_OF = date(2026, 6, 1)
runner = CliRunner()


def _cli(raw: Any, tmp: Path, *args: str) -> dict[str, Any]:
    path = tmp / "input.json"
    path.write_text(json.dumps(raw))
    result = runner.invoke(cli, ["assess", str(path), "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


@pytest.mark.parametrize("path", sorted((data_path() / "vignettes").glob("*.json")), ids=lambda p: p.stem)
def test_every_vignette_gets_the_same_answer_from_cli_and_api(client: Any, path: Path, tmp_path: Path) -> None:
    patient = json.loads(path.read_text())["patient"]
    api = client.post("/assess", json=patient, headers=login(client, "clinician"))
    path_in = tmp_path / "p.json"
    path_in.write_text(json.dumps(patient))
    result = runner.invoke(cli, ["assess", str(path_in), "--format", "json"])
    if api.status_code == 422:  # a vignette of invalid input: refused by both, naming the same field
        assert result.exit_code == 2
        field = api.json()["detail"][0]["field"]
        assert str(field) in result.output, (api.json(), result.output)
        return
    assert api.status_code == 200, api.text
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == api.json()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), as_list=st.booleans())
def test_a_fhir_record_gets_the_same_answer_from_cli_and_api(client: Any, tmp_path: Path, seed: int,
                                                             as_list: bool) -> None:
    gen = RecordGenerator(default_kb(), AS_OF, random.Random(seed))
    resources = gen.record(f"p{seed}")
    raw: Any = resources if as_list else _bundle(resources)
    api = client.post("/assess", params={"as_of": AS_OF.isoformat()}, json=raw, headers=login(client, "clinician"))
    assert api.status_code == 200, api.text
    assert _cli(raw, tmp_path, "--as-of", AS_OF.isoformat()) == api.json()


def test_an_as_of_with_version_1_input_is_refused_by_both(client: Any, tmp_path: Path) -> None:
    patient = {"age_years": 40, "sex": "male"}
    api = client.post("/assess", params={"as_of": "2026-06-01"}, json=patient, headers=login(client, "clinician"))
    assert api.status_code == 422 and "as_of" in api.text
    path = tmp_path / "p.json"
    path.write_text(json.dumps(patient))
    result = runner.invoke(cli, ["assess", str(path), "--as-of", "2026-06-01"])
    assert result.exit_code == 2 and "as_of" in result.output


def test_simulation_is_in_the_answer_wherever_a_schedule_is_printed(client: Any) -> None:
    patient = {"age_years": 40, "sex": "male", "opioid": {"substance": "heroin", "hours_since_last_use": 14}}
    h = login(client, "clinician")
    out = client.post("/assess", json=patient, headers=h).json()
    assert out["tramadol"]["regimen"] and out["tramadol"]["simulation"]["exploratory"] is True
    without = client.post("/assess", params={"simulate": "false"}, json=patient, headers=h).json()
    assert without["tramadol"]["simulation"] is None and without["tramadol"]["regimen"] == out["tramadol"]["regimen"]
