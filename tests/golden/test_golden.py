"""The CLI's answers on the vignettes, reference cases and reports, identical to the recorded ones.

The recording (``tests/golden/expected``, by ``scripts/record-golden``) was made before the structural
redesign of issue 19 at commit 105b922; the redesign moves code, not answers. Record again only
for a change of behaviour made on purpose, and say which in the commit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from golden.cases import OUT, cases, population, run

NAMES = sorted(p.name for p in OUT.iterdir())


def test_the_recording_covers_every_case(tmp_path: Path) -> None:
    expected = set(cases(tmp_path)) | {n for n in NAMES if n.startswith("population-")}
    assert set(NAMES) == expected
    assert len(NAMES) > 80


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("population-")])
def test_cli_output_is_unchanged(name: str, tmp_path: Path) -> None:
    argv = cases(tmp_path)[name]
    assert run(argv, tmp_path) == (OUT / name).read_text(encoding="utf-8")


def test_population_screen_output_is_unchanged(tmp_path: Path) -> None:
    outputs = population(tmp_path)
    assert sorted(outputs) == sorted(n for n in NAMES if n.startswith("population-"))
    for name, text in outputs.items():
        assert text == (OUT / name).read_text(encoding="utf-8"), name
