"""The golden cases: CLI reports recorded before the structural redesign of issue 19.

Each case is a command line of the real CLI; ``scripts/record-golden`` runs them all and writes
the outputs under ``tests/golden/expected/``; ``test_golden.py`` runs them again and compares. A
difference is either a regression or a change made on purpose, recorded again with its reason
in the commit.

Normalised before comparing (they change by design, not by clinical content): the software
version, and the knowledge-base version strings (one version since issue 19; before it some
files carried ``-pk1``, ``-pop1``, ``-svc1`` suffixes).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
OUT = Path(__file__).resolve().parent / "expected"
AS_OF = "2026-06-01"


def cases(tmp: Path) -> dict[str, list[str]]:
    """Case name -> argv of ``withdrawal``; inputs that need a file are written under ``tmp``."""
    out: dict[str, list[str]] = {}
    for path in sorted((DATA / "vignettes").glob("*.json")):
        patient = tmp / f"{path.stem}.json"
        patient.write_text(json.dumps(json.loads(path.read_text())["patient"]))
        out[f"vignette-{path.stem}.json"] = ["assess", str(patient), "--format", "json"]
        out[f"vignette-{path.stem}.txt"] = ["assess", str(patient), "--no-simulate"]
        out[f"vignette-{path.stem}-pathway.json"] = ["assess", str(patient), "--format", "json", "--no-simulate",
                                                     "--pathway", "buprenorphine"]  # fmt: skip
    for path in sorted((REPO / "examples").glob("*.json")):
        out[f"example-{path.stem}.txt"] = ["assess", str(path)]
        out[f"example-{path.stem}-pathway.txt"] = ["assess", str(path), "--pathway", "buprenorphine"]
    meta = DATA / "reference" / "meta"
    meta2 = DATA / "reference" / "meta2"
    out["meta-bcg.json"] = ["meta", str(meta / "bcg.csv"), "--format", "json"]
    out["meta-bcg-dl.txt"] = ["meta", str(meta / "bcg.csv"), "--method", "DL", "--test", "knha"]
    out["meta-bcg-mh.json"] = ["meta", str(meta / "bcg.csv"), "--method", "MH", "--measure", "OR", "--format", "json"]
    out["meta-normand.json"] = ["meta", str(meta / "normand1999.csv"), "--measure", "MD", "--format", "json"]
    out["meta2-bcg-mods.json"] = ["meta", str(meta2 / "bcg.csv"), "--mods", "ablat", "--mods", "alloc",
                                  "--format", "json"]  # fmt: skip
    out["meta2-bcg-subgroup-bias.txt"] = ["meta", str(meta2 / "bcg.csv"), "--subgroup", "alloc", "--bias",
                                          "--influence"]  # fmt: skip
    out["meta2-gibson.json"] = ["meta", str(meta2 / "gibson2002.csv"), "--measure", "SMD", "--bias", "--format",
                                "json"]  # fmt: skip
    for path in sorted((DATA / "reference" / "pk-nonmem").glob("scenario*.csv")):
        params = json.loads(path.with_suffix(".json").read_text())["parameters"]
        argv = ["pk", "run", str(path), "--format", "json"]
        for name, value in params.items():
            argv += ["--param", f"{name}={value}"]
        out[f"pk-{path.stem}.json"] = argv
    out["pk-tramadol-pm.csv"] = ["pk", "run", str(DATA / "reference" / "pk-nonmem" / "scenario01.csv"),
                                 "--model", "tramadol", "--phenotype", "poor"]  # fmt: skip
    out["simulate.json"] = ["pk", "simulate", "--dose-mg", "50", "--interval-h", "6", "--days", "3", "--patients", "200",
                            "--format", "json"]  # fmt: skip
    out["simulate-taper.txt"] = ["pk", "simulate", "--dose-mg", "100", "--interval-h", "6", "--days", "2", "--patients",
                                 "100", "--taper", "50:2,25:2", "--inhibitor"]  # fmt: skip
    out["evidence.json"] = ["evidence", "--format", "json"]
    out["evidence.txt"] = ["evidence"]
    out["interactions.txt"] = ["interactions", "sertraline", "ondansetron", "bupropion", "quetiapine"]
    out["interactions.json"] = ["interactions", "Zoloft", "linezolid", "clonidine", "codeine", "--format", "json"]
    items = {"resting_pulse_rate": 2, "sweating": 1, "restlessness": 3, "pupil_size": 1, "bone_or_joint_aches": 2,
             "runny_nose_or_tearing": 1, "gi_upset": 3, "tremor": 1, "yawning": 1, "anxiety_or_irritability": 2,
             "gooseflesh_skin": 3}  # fmt: skip
    argv = ["cows", "--format", "json"]
    for item, score in items.items():
        argv += ["--item", f"{item}={score}"]
    out["cows.json"] = argv
    return out


_VERSION = re.compile(r"(20\d\d\.\d\d\.\d\d)(-(pk|pop|svc)\d+)?")
_ELAPSED = re.compile(r'( in [0-9.]+ s\b|"seconds": [0-9.]+)')


def normalise(text: str) -> str:
    """Mask what changes by design (software and knowledge-base version strings)."""
    from withdrawal import __version__

    text = text.replace(__version__, "<software-version>")
    return _ELAPSED.sub("<elapsed>", _VERSION.sub("<kb-version>", text))


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


WIDTH = 110


def _fixed_width() -> None:
    """Every CLI console prints WIDTH columns: Rich reads ``COLUMNS`` when a console is made, so a console
    made earlier in the same process (another test) would otherwise wrap differently."""
    import importlib
    import pkgutil

    from rich.console import Console

    import withdrawal.cli

    for info in pkgutil.iter_modules(withdrawal.cli.__path__):
        module = importlib.import_module(f"withdrawal.cli.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Console):
                value.width = WIDTH


def run(argv: list[str], tmp: Path) -> str:
    """One CLI run in process, its standard output (and the exit code when it is not 0)."""
    from typer.testing import CliRunner

    from withdrawal.cli import app

    _fixed_width()

    result = CliRunner().invoke(app, argv, env={"COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"})
    text = result.stdout
    if result.exit_code:
        text += f"\n[exit {result.exit_code}]\n{result.output}"
    return normalise(text.replace(str(tmp), "<tmp>"))


def population(tmp: Path) -> dict[str, str]:
    """A varied synthetic Bulk Data export screened by DuckDB: the report, summary and patient table."""
    export, screened = tmp / "export", tmp / "screened"
    run(["population", "synth", "400", "--out", str(export), "--seed", "5", "--varied"], tmp)
    report = run(["population", "screen", str(export), "--out", str(screened), "--min-cell", "1", "--csv",
                  "--as-of", AS_OF], tmp)  # fmt: skip
    out = {"population-screen.txt": report}
    for path in sorted(screened.iterdir()):
        if path.suffix in (".json", ".csv"):
            out[f"population-{path.name}"] = normalise(path.read_text().replace(str(tmp), "<tmp>"))
    return out


def record_all(tmp: Path) -> dict[str, str]:
    """Every golden output, by file name."""
    out = {name: run(argv, tmp) for name, argv in cases(tmp).items()}
    out.update(population(tmp))
    return out
