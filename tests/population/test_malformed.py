"""Malformed NDJSON lines are reported with file and line, skipped, and change nobody else."""

from __future__ import annotations

from pathlib import Path

from population_support import AS_OF, rows_by_id

from withdrawal.population.export import check_line
from withdrawal.population.screen import ScreenRun, run_screen


def test_check_line() -> None:
    assert check_line('{"resourceType":"Patient","id":"a"}', "Patient") is None
    assert check_line("   ", "Patient") is None
    assert "invalid JSON" in (check_line('{"resourceType":', "Patient") or "")
    assert check_line("[1]", "Patient") == "not a JSON object"
    assert "expected 'Patient'" in (check_line('{"resourceType":"Condition","id":"a"}', "Patient") or "")
    assert check_line('{"resourceType":"Patient"}', "Patient") == "no id"


def test_bad_lines_reported_and_skipped(dirty_export: tuple[Path, list[tuple[str, int]]], duck_run: ScreenRun,
                                       tmp_path: Path) -> None:
    root, expected = dirty_export
    run = run_screen(root, tmp_path / "out", as_of=AS_OF)
    assert sorted((b.file, b.line) for b in run.bad_lines) == expected
    assert all(b.error for b in run.bad_lines)
    csv_text = run.malformed_path.read_text()
    assert "Condition.ndjson,2," in csv_text or "Condition.ndjson,1," in csv_text
    # every patient's result is the one of the clean export
    assert rows_by_id(run.patients_path) == rows_by_id(duck_run.patients_path)


def test_a_corrupted_resource_only_affects_its_patient(export_small: Path, duck_run: ScreenRun,
                                                        tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "bulk"
    shutil.copytree(export_small, root)
    mr = root / "MedicationRequest.ndjson"
    lines = mr.read_text().splitlines()
    victim = next(i for i, line in enumerate(lines) if '"code": "10689"' in line and '"status":"active"' in line)
    pid = lines[victim].split('"reference":"Patient/')[1].split('"')[0]
    lines[victim] = lines[victim][: len(lines[victim]) // 2]
    mr.write_text("\n".join(lines) + "\n")
    run = run_screen(root, tmp_path / "out")
    assert [(b.file, b.line) for b in run.bad_lines] == [("MedicationRequest.ndjson", victim + 1)]
    clean, dirty = rows_by_id(duck_run.patients_path), rows_by_id(run.patients_path)
    changed = {k for k in clean if clean[k] != dirty[k]}
    assert changed <= {pid}


def test_several_files_of_one_type(export_small: Path, duck_run: ScreenRun, tmp_path: Path) -> None:
    """A type split over several files (no manifest): bad lines are named by file, results unchanged."""
    import shutil

    from withdrawal.population.synth import TRUTH_FILE

    root = tmp_path / "bulk"
    shutil.copytree(export_small, root)
    (root / "manifest.json").unlink()
    (root / TRUTH_FILE).unlink()
    lines = (root / "Condition.ndjson").read_text(encoding="utf-8").splitlines()
    (root / "Condition.ndjson").unlink()
    half = len(lines) // 2
    (root / "Condition_1.ndjson").write_text("\n".join(lines[:half]) + "\n", encoding="utf-8")
    (root / "Condition_2.ndjson").write_text("\n".join([*lines[half:half + 3], "{oops", *lines[half + 3:]]) + "\n",
                                             encoding="utf-8")
    run = run_screen(root, tmp_path / "out", as_of=AS_OF)
    assert [(b.file, b.line) for b in run.bad_lines] == [("Condition_2.ndjson", 4)]
    assert rows_by_id(run.patients_path) == rows_by_id(duck_run.patients_path)
