#!/usr/bin/env python3
"""Screenshots of the main web pages at desktop (1280 px) and phone (390 px) widths.

Starts the real server (SQLite in a temporary directory, demo data) on a free port, drives
Debian's Chromium with Playwright and writes ``docs/img/web-<page>-<desktop|phone>.png``.

    .venv/bin/python scripts/screenshots.py [--out docs/img] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CLINICIAN = ("clinician", "screenshot-clinician-pw")
PATIENT = ("patient", "screenshot-patient-pw")
WIDTHS = {"desktop": (1280, 860), "phone": (390, 844)}
MAX_HEIGHT = {"desktop": 2200, "phone": 3200}
log = logging.getLogger("screenshots")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "WITHDRAWAL_DATA_DIR": str(data), "WITHDRAWAL_ENVIRONMENT": "test",
           "WITHDRAWAL_DEMO_CLINICIAN_USERNAME": CLINICIAN[0], "WITHDRAWAL_DEMO_CLINICIAN_PASSWORD": CLINICIAN[1],
           "WITHDRAWAL_DEMO_PATIENT_USERNAME": PATIENT[0], "WITHDRAWAL_DEMO_PATIENT_PASSWORD": PATIENT[1]}
    env.pop("WITHDRAWAL_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "withdrawal.web.demo:demo_app",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not start")


def _sign_in(page: Any, who: tuple[str, str]) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def _shoot(page: Any, out: Path, name: str, kind: str) -> None:
    width = WIDTHS[kind][0]
    height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_HEIGHT[kind])
    path = out / f"web-{name}-{kind}.png"
    page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})
    _shrink(path)
    log.info("wrote %s", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def _shrink(path: Path) -> None:
    """Palette PNG (256 colours): a third of the size, no visible change for these pages."""
    from PIL import Image  # Pillow comes with matplotlib

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def _ids(page: Any) -> dict[str, int]:
    ids = {}
    for key, name in (("a", "Demo patient A"), ("d", "Demo patient D"), ("e", "Demo patient E")):
        page.goto("/app/patients")
        href = page.get_by_role("link", name=name, exact=False).first.get_attribute("href") or ""
        ids[key] = int(href.rsplit("/", 1)[1])
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc, base = _start(Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
                for kind, (w, h) in WIDTHS.items():
                    ctx = browser.new_context(base_url=base, viewport={"width": w, "height": h})
                    page = ctx.new_page()
                    for name, url in (("home", "/"), ("info-questions", "/info/questions"), ("login", "/login")):
                        page.goto(url)
                        _shoot(page, args.out, name, kind)
                    _sign_in(page, CLINICIAN)
                    ids = _ids(page)
                    page.goto("/app/patients")
                    _shoot(page, args.out, "patients", kind)
                    page.goto(f"/app/patients/{ids['d']}")
                    _shoot(page, args.out, "result-contraindicated", kind)
                    page.goto(f"/app/patients/{ids['a']}")
                    _shoot(page, args.out, "result-avoid", kind)
                    page.goto("/app/patients/new")
                    page.get_by_label("Name or initials").fill("J. R.")
                    page.get_by_label("Age in years").fill("29")
                    page.get_by_label("Conditions").fill("epilepsi\nhed injury")
                    page.get_by_label("Current medications").fill("sertralin, 50\nzorblaxamine")
                    page.get_by_role("button", name="Create and assess").click()
                    _shoot(page, args.out, "patient-review", kind)
                    page.goto(f"/app/patients/{ids['e']}/course")
                    page.get_by_label("Medicine").fill("tramadol")
                    page.get_by_label("Dose (mg)").fill("500")
                    page.get_by_role("button", name="Record dose").click()
                    page.locator("#dose").scroll_into_view_if_needed()
                    _shoot(page, args.out, "dose-override", kind)
                    page.goto(f"/app/patients/{ids['e']}/cows")
                    items = page.locator("fieldset.item")
                    for i in range(6):
                        items.nth(i).locator("input[type=radio]").nth(1 + i % 2).check()
                    _shoot(page, args.out, "cows-form", kind)
                    page.goto(f"/app/patients/{ids['a']}/course")
                    _shoot(page, args.out, "course", kind)
                    page.goto(f"/app/patients/{ids['e']}/simulator")
                    _shoot(page, args.out, "simulator", kind)
                    page.goto("/app/patients/new")  # fentanyl with a benzodiazepine: the low-dose start
                    page.get_by_label("Name or initials").fill("F. L.")
                    page.get_by_label("Age in years").fill("27")
                    page.get_by_label("Opioid the patient is withdrawing from").select_option("fentanyl")
                    page.get_by_label("Hours since last use").fill("6")
                    page.get_by_label("Setting").select_option("outpatient")
                    page.get_by_label("Current medications").fill("alprazolam")
                    page.get_by_role("button", name="Create and assess").click()
                    page.get_by_role("link", name="Buprenorphine start").click()
                    _shoot(page, args.out, "pathway", kind)
                    page.goto("/app/interactions?drugs=sertraline%2C+alprazolam%2C+ondansetron")
                    _shoot(page, args.out, "interactions", kind)
                    page.goto("/app/evidence")
                    page.wait_for_load_state("networkidle")
                    _shoot(page, args.out, "evidence", kind)
                    ctx.close()
                    ctx = browser.new_context(base_url=base, viewport={"width": w, "height": h})
                    page = ctx.new_page()
                    _sign_in(page, PATIENT)
                    _shoot(page, args.out, "patient-diary", kind)
                    page.goto(f"/app/patients/{ids['a']}/sows")
                    _shoot(page, args.out, "sows-form", kind)
                    if kind == "phone":  # last: a crisis-level SOWS shows 988 and 911 first
                        items = page.locator("fieldset.item")
                        for i in range(items.count()):
                            items.nth(i).locator("input[type=radio]").last.check()
                        page.get_by_role("button", name="Save today's answers").click()
                        _shoot(page, args.out, "patient-crisis", kind)
                    ctx.close()
                browser.close()
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
