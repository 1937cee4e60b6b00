"""The clinician's result page for the whole-plan screen, in Chromium against the real server:
an unknown medication and an unknown in-scope code are named at the top (incomplete screen, never
clean); naltrexone takes the agonists out of the plan; a patient tramadol is to be avoided for
gets no ready schedule, with the reason."""

from __future__ import annotations

from typing import Any

from tests_support import create_patient


def _create(page: Any, name: str, *, current: str = "", conditions: str = "") -> None:
    create_patient(page, name, age="38", substance="heroin", hours="16", current=current, conditions=conditions)


def test_unknown_entries_are_named_first(page: Any, creds: Any, signin: Any) -> None:
    signin(page, creds["clinician"])
    _create(page, "Whole plan A", current="zorblaxamine", conditions="G99.8\nI10\nepilepsy")
    alert = page.locator("#not-screened")
    assert alert.is_visible()
    text = alert.inner_text()
    assert "zorblaxamine" in text and "G99.8" in text and "I10" not in text  # I10 is out of scope, listed below
    assert "Avoid" in page.locator("#verdict").inner_text()  # "epilepsy" resolved: seizure risk
    box = alert.bounding_box()
    assert box is not None and box["y"] < page.locator("#verdict").bounding_box()["y"]


def test_naltrexone_takes_the_agonists_out(page: Any, creds: Any, signin: Any) -> None:
    signin(page, creds["clinician"])
    _create(page, "Whole plan B", current="naltrexone")
    page.locator("#options-details > summary").click()
    assert "Buprenorphine" not in page.locator(".options-list").inner_text()
    assert "Lofexidine" in page.locator(".options-list > li").first.inner_text()
    unsuitable = page.get_by_role("heading", name="Not suitable for this patient").locator(
        "xpath=following-sibling::ul[1]").inner_text()
    assert "Buprenorphine" in unsuitable and "Methadone" in unsuitable and "naltrexone" in unsuitable.lower()


def test_no_ready_schedule_when_tramadol_is_avoided(page: Any, creds: Any, signin: Any) -> None:
    signin(page, creds["clinician"])
    _create(page, "Whole plan C", current="sertraline")
    assert "Avoid" in page.locator("#verdict").inner_text()
    assert "override" in page.locator("#regimen-withheld").inner_text()
    assert page.get_by_role("heading", name="Proposed tramadol taper (only if tramadol is chosen)").count() == 0
    page.locator("#options-details > summary").click()
    findings = page.locator(".options-list > li", has_text="Methadone").locator(".option-findings")
    assert "serotonin" in findings.inner_text().lower()
