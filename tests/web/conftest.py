"""A real uvicorn server (SQLite in a temp dir, demo data) and headless Chromium via Playwright.

Chromium is Debian's (``/usr/bin/chromium``, or ``$CHROMIUM``); Playwright's own browser
downloads are not used. Without a Chromium the browser tests are skipped with the reason.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests_support import chromium_path, demo_server, follow

CLINICIAN = ("clinician", "clinician-demo-pass-1")
PATIENT = ("patient", "patient-demo-pass-12")
PATIENT2 = ("patient2", PATIENT[1])
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


class Server:
    def __init__(self, base_url: str, db: Path) -> None:
        self.base_url, self.db = base_url, db

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, args).fetchall()

    def patient_id(self, external_id: str) -> int:
        rows = self.query("SELECT id FROM patients WHERE external_id = ?", external_id)
        assert rows, external_id
        return int(rows[0][0])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("web-server")
    env = {**os.environ, "WITHDRAWAL_DATA_DIR": str(data), "WITHDRAWAL_ENVIRONMENT": "test",
           "WITHDRAWAL_DEMO_CLINICIAN_USERNAME": CLINICIAN[0], "WITHDRAWAL_DEMO_CLINICIAN_PASSWORD": CLINICIAN[1],
           "WITHDRAWAL_DEMO_PATIENT_USERNAME": PATIENT[0], "WITHDRAWAL_DEMO_PATIENT_PASSWORD": PATIENT[1]}
    env.pop("WITHDRAWAL_DATABASE_URL", None)
    with demo_server(data, env) as base:
        yield Server(base, data / "withdrawal.db")


@pytest.fixture(scope="session")
def browser(playwright_sync: Any) -> Iterator[Any]:
    exe = chromium_path()
    if exe is None:
        why = "no Chromium: install Debian's chromium (apt-get install chromium) or set $CHROMIUM"
        if os.environ.get("CI"):  # CI installs it: a missing browser there is a failure, not a skip
            pytest.fail(why)
        pytest.skip(why)
    b = playwright_sync.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
    yield b
    b.close()


def new_page(browser: Any, server: Server, *, width: int = 1280, height: int = 900, **kwargs: Any) -> Any:
    context = browser.new_context(base_url=server.base_url, viewport={"width": width, "height": height}, **kwargs)
    context.set_default_timeout(15_000)
    return context.new_page()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    p = new_page(browser, server)
    yield p
    p.context.close()


def sign_in(page: Any, who: tuple[str, str]) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    follow(page, page.get_by_role("button", name="Sign in"))
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()[:2000]


@pytest.fixture(scope="session")
def creds() -> dict[str, tuple[str, str]]:
    return {"clinician": CLINICIAN, "patient": PATIENT, "patient2": PATIENT2}


@pytest.fixture
def signin() -> Any:
    return sign_in


@pytest.fixture
def make_page(browser: Any, server: Server) -> Iterator[Any]:
    """Pages with other options (width, JavaScript off, CSP bypassed for axe); closed after the test."""
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        p = new_page(browser, server, **kwargs)
        made.append(p)
        return p

    yield make
    for p in made:
        p.context.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core (vendored, MPL-2.0) run in the page: WCAG 2.0/2.1 A and AA rules plus best practice."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        """async () => await axe.run(document, {
               runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
               resultTypes: ['violations']})"""
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"[{v['impact']}] {v['id']}: {v['help']} -> "
        + "; ".join(str(n["target"][0]) if n["target"] else "?" for n in v["nodes"][:3])
        for v in violations
    )


@pytest.fixture
def axe() -> Any:
    return axe_violations


@pytest.fixture
def describe_violations() -> Any:
    return describe
