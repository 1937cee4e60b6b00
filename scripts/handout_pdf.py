#!/usr/bin/env python3
"""The printed handout (issue 17): a patient's plan and SOWS diary as Chromium prints it, in English and Spanish.

Starts the real server (SQLite in a temporary directory, demo data), saves a plan with a note from the
clinician's assessment page, signs in as the demo patient, and prints ``/app/patients/{id}/handout`` to
PDF with Playwright's ``page.pdf`` (the print stylesheet applies): ``docs/img/handout-en.pdf`` and
``docs/img/handout-es.pdf``.

    .venv/bin/python scripts/handout_pdf.py [--out docs/img] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screenshots import ARGS, CLINICIAN, PATIENT, ROOT, _start  # noqa: E402

NOTE = "Start buprenorphine at the clinic on Monday at 9 am. Bring this diary."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc, base = _start(Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)

                def signed_in(who: tuple[str, str]):  # type: ignore[no-untyped-def]
                    page = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900}).new_page()
                    page.goto("/login")
                    page.get_by_label("Username").fill(who[0])
                    page.get_by_label("Password").fill(who[1])
                    page.get_by_role("button", name="Sign in").click()
                    page.wait_for_load_state()
                    return page

                patient = signed_in(PATIENT)
                own = patient.url.rstrip("/").rsplit("/", 1)[1]
                clinician = signed_in(CLINICIAN)
                clinician.goto(f"/app/patients/{own}")
                clinician.locator("#plan-note").fill(NOTE)
                clinician.locator("section.plan-save button[type=submit]").click()
                clinician.wait_for_load_state()
                args.out.mkdir(parents=True, exist_ok=True)
                for lang in ("en", "es"):
                    patient.goto("/info")
                    if patient.evaluate("document.documentElement.lang") != lang:
                        patient.locator("form.lang-switch button").click()
                        patient.wait_for_load_state()
                    patient.goto(f"/app/patients/{own}/handout")
                    path = args.out / f"handout-{lang}.pdf"
                    patient.pdf(path=str(path), format="Letter", print_background=True)
                    sys.stdout.write(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}\n")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
