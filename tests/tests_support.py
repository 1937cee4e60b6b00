"""Helpers shared by tests (importable because tests/ is on sys.path via conftest)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
DATA = REPO / "tests" / "data"


def data_path() -> Path:
    """The test data kept in the repository (vignettes, reference outputs; see data/PROVENANCE.md)."""
    assert DATA.is_dir(), f"test data folder not found at {DATA}"
    return DATA


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_path() -> str | None:
    """Debian's Chromium (or ``$CHROMIUM``); Playwright's own browser downloads are not used."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).exists() else None


@contextmanager
def demo_server(
    data: Path, env: dict[str, str], *, log_level: str = "warning", port: int | None = None
) -> Iterator[str]:
    """The demo app under uvicorn on a loopback port (free unless given), its log in ``data``; yields the base URL."""
    port = port or free_port()
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "withdrawal.app:demo_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", log_level],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError("server exited:\n" + (data / "server.log").read_text())
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + (data / "server.log").read_text())
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def kb_with(tmp_path: Path, name: str, change: object) -> Path:
    """A copy of the packaged knowledge-base folder with one file changed: ``change`` gets the parsed YAML
    (and edits it in place) or, when it is a pair of strings, is a text replacement that must apply."""
    import yaml

    from withdrawal.knowledge.base import data_dir

    target = tmp_path / "kb"
    shutil.copytree(data_dir(), target)
    path = target / name
    if isinstance(change, tuple):
        old, new = change
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{name}: {old!r} not found"
        path.write_text(text.replace(old, new), encoding="utf-8")
    else:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)  # type: ignore[operator]
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def follow(page: Any, target: Any) -> None:
    """Click a link or submit button and wait for the page it loads.

    Playwright's ``click`` does not wait for the navigation it starts, so a check made straight
    after it can read the page being left (``is_visible`` and ``count`` do not wait at all)."""
    with page.expect_navigation():
        target.click()


def fill_new_patient(page: Any, name: str, *, age: str, substance: str | None = None, hours: str | None = None,
                     setting: str = "", current: str = "", conditions: str = "") -> None:
    """Open the new-patient form and fill it in as a clinician would (left unsubmitted)."""
    page.goto("/app/patients/new")
    page.get_by_label("Name or initials").fill(name)
    page.get_by_label("Age in years").fill(age)
    if substance:
        page.get_by_label("Opioid the patient is withdrawing from").select_option(substance)
    if hours:
        page.get_by_label("Hours since last use").fill(hours)
    if setting:
        page.get_by_label("Setting").select_option(setting)
    if conditions:
        page.get_by_label("Conditions").fill(conditions)
    if current:
        page.get_by_label("Current medications").fill(current)


def create_patient(page: Any, name: str, **fields: str) -> int:
    """A patient made through the form (entries not recognised saved as typed); the new record's id."""
    fill_new_patient(page, name, **fields)
    follow(page, page.get_by_role("button", name="Create and assess"))
    if page.locator("#review").count():  # entries not recognised: saved as typed, listed as not screened
        follow(page, page.get_by_role("button", name="Save anyway"))
    assert "Patient created" in page.get_by_role("status").inner_text()
    return int(page.url.split("/app/patients/")[1].split("?")[0].split("/")[0].split("#")[0])


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: a browser test's Playwright keeps an event loop running in
    the test thread, and a pytest worker may have run one before (``asyncio.run`` then refuses)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def write_export(root: Path, records: Iterable[Iterable[dict[str, Any]]]) -> Path:
    """A FHIR Bulk Data export (one NDJSON file per resource type) of ``records``' resources, in ``root``."""
    by_type: dict[str, list[str]] = {}
    for record in records:
        for r in record:
            by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    root.mkdir(parents=True, exist_ok=True)
    for rtype, lines in by_type.items():
        (root / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def bulk_rows(tmp_path: Path, records: Iterable[Iterable[dict[str, Any]]], *, as_of: Any, kb: Any = None,
              engine: str = "duckdb", spark: Any = None) -> dict[str, dict[str, Any]]:
    """The population screen's patient rows (by patient id) for ``records``, exported and screened as of
    ``as_of``: what the bulk path says of the records a per-patient test reads."""
    import pyarrow.dataset as ds

    from withdrawal.population.screen import run_screen

    export = write_export(tmp_path / "bulk", records)
    run = run_screen(export, tmp_path / "out", engine=engine, as_of=as_of, kb=kb, spark=spark)
    return {r["patient_id"]: r for r in ds.dataset(run.patients_path, format="parquet").to_table().to_pylist()}


def without_uuids(node: Any) -> Any:
    """A CDS answer with its random ``uuid`` fields left out, to compare two answers."""
    if isinstance(node, dict):
        return {k: without_uuids(v) for k, v in node.items() if k != "uuid"}
    if isinstance(node, list):
        return [without_uuids(v) for v in node]
    return node
