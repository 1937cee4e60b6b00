"""``withdrawal meta`` beyond pooling, against R's metafor, every case at 1e-5.

Source: tests/data/reference/meta2/ (README there): R 4.2.2, metafor 3.8-1, metadat 1.2.0;
dat.bcg (Colditz 1994, 2x2 counts, moderators ablat, year, alloc) and dat.gibson2002 (Gibson
2002, means and SDs, moderator year). Cases: standard fits with Q-profile intervals for tau^2
and I^2 (``confint``), ``rma.mh``, ``rma.peto``, meta-regression (``mods``), subgroups,
``regtest``/``ranktest``/``trimfill`` and ``leave1out``/``cumul``. Each case runs the command
line with ``--format json`` and compares the fields nested as in its output; a number agrees
when it is within 1e-5 of metafor's relative to max(1, |metafor's value|); ``null`` must be
``null`` or absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from withdrawal.cli import app

REF = Path(__file__).resolve().parents[1] / "data" / "reference" / "meta2"
REL = 1e-5
CASE_KEYS = {"kind", "measure", "method", "test", "mods", "subgroup"}
runner = CliRunner()


def _cases() -> list[Any]:
    out = []
    for name in ("bcg", "gibson2002"):
        data = json.loads((REF / f"{name}.json").read_text())
        for i, case in enumerate(data["cases"]):
            label = "-".join([name, case["kind"], case["measure"], case["method"], case["test"],
                              *case.get("mods", []), case.get("subgroup", ""), str(i)])
            out.append(pytest.param(data["csv"], case, id=label.rstrip("-")))
    return out


def _args(csv_name: str, case: dict[str, Any]) -> list[str]:
    args = ["meta", str(REF / csv_name), "--measure", case["measure"], "--method",
            case["method"], "--test", case["test"], "--format", "json"]
    for mod in case.get("mods", []):
        args += ["--mods", mod]
    if "subgroup" in case:
        args += ["--subgroup", case["subgroup"]]
    if case["kind"] == "bias":
        args.append("--bias")
    if case["kind"] == "influence":
        args.append("--influence")
    return args


def _compare(ref: Any, got: Any, where: str, bad: list[str]) -> None:
    if isinstance(ref, dict):
        for key, value in ref.items():
            _compare(value, got.get(key) if isinstance(got, dict) else None, f"{where}.{key}",
                     bad)
    elif isinstance(ref, list):
        if not isinstance(got, list) or len(got) != len(ref):
            bad.append(f"{where}: {got!r} is not a list of {len(ref)}")
            return
        for i, (r, g) in enumerate(zip(ref, got, strict=True)):
            _compare(r, g, f"{where}[{i}]", bad)
    elif ref is None:
        if got is not None:
            bad.append(f"{where}: {got!r}, metafor NA")
    elif isinstance(ref, str):
        if got != ref:
            bad.append(f"{where}: {got!r} != {ref!r}")
    elif isinstance(got, bool) or not isinstance(got, int | float):
        bad.append(f"{where}: {got!r}, metafor {ref!r}")
    elif abs(got - ref) > REL * max(1.0, abs(ref)):
        bad.append(f"{where}: {got!r}, metafor {ref!r}")


@pytest.mark.parametrize(("csv_name", "case"), _cases())
def test_matches_metafor(csv_name: str, case: dict[str, Any]) -> None:
    result = runner.invoke(app, _args(csv_name, case))
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    bad: list[str] = []
    _compare({k: v for k, v in case.items() if k not in CASE_KEYS}, out, "", bad)
    assert not bad, "\n".join(bad)


def test_every_reference_case_is_collected() -> None:
    bcg = json.loads((REF / "bcg.json").read_text())
    gibson = json.loads((REF / "gibson2002.json").read_text())
    assert (len(bcg["cases"]), len(gibson["cases"])) == (74, 40)
    assert bcg["skipped"] == [] and gibson["skipped"] == []
    assert len(_cases()) == 114


def test_the_comparison_catches_a_wrong_number() -> None:
    bad: list[str] = []
    _compare({"a": {"b": [1.0, None]}}, {"a": {"b": [1.00002, 3.0]}}, "", bad)
    assert len(bad) == 2
