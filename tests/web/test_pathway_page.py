"""The buprenorphine start pathway page in Chromium against the real server: a fentanyl patient on a
benzodiazepine gets the low-dose start with the published schedule and the boxed warning; naltrexone
gets no start; a patient account cannot open it; no serious axe violation."""

from __future__ import annotations

from typing import Any

from tests_support import create_patient, follow


def _create(page: Any, name: str, *, substance: str, hours: str, current: str = "", setting: str = "") -> int:
    return create_patient(page, name, age="29", substance=substance, hours=hours, current=current, setting=setting)


def test_fentanyl_patient_gets_the_low_dose_schedule_and_the_warning(page: Any, creds: Any, signin: Any) -> None:
    signin(page, creds["clinician"])
    pid = _create(page, "Pathway F", substance="fentanyl", hours="6", current="alprazolam", setting="outpatient")
    follow(page, page.get_by_role("link", name="Buprenorphine start"))
    assert page.url.endswith(f"/app/patients/{pid}/pathway")
    assert page.locator("#pathway-status").get_attribute("data-status") == "available"
    assert page.get_by_role("heading", name="Suggested: Low-dose start overlapping the full agonist").is_visible()
    rows = page.locator("#schedule-jabfm_outpatient_7_day tbody tr")
    assert rows.count() == 7
    assert "0.5 mg once daily" in rows.first.inner_text()
    assert "boxed warning" in page.locator("#pathway-findings").inner_text()
    note = page.get_by_role("textbox", name="Chart note (copy and paste)").input_value()
    assert "Plan: Low-dose start overlapping the full agonist." in note and "Day 1: buprenorphine 0.5 mg" in note
    assert "unverified" in page.content()


def test_naltrexone_patient_gets_no_start(page: Any, creds: Any, signin: Any) -> None:
    signin(page, creds["clinician"])
    pid = _create(page, "Pathway N", substance="heroin", hours="16", current="naltrexone")
    page.goto(f"/app/patients/{pid}/pathway")
    assert page.locator("#pathway-status").get_attribute("data-status") == "excluded"
    assert "Naltrexone" in page.locator("#pathway-status").inner_text()
    assert page.locator("section.start").count() == 0 and page.locator("table.schedule").count() == 0
    assert "Day 1" not in page.get_by_role("textbox", name="Chart note (copy and paste)").input_value()


def test_patient_account_cannot_open_it(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["patient"])
    resp = page.goto(f"/app/patients/{server.patient_id('demo-a')}/pathway")
    assert resp.status == 403


def test_no_serious_axe_violations(make_page: Any, server: Any, creds: Any, signin: Any, axe: Any,
                                   describe_violations: Any) -> None:  # fmt: skip
    for width in (1280, 390):
        page = make_page(width=width, height=844, bypass_csp=True)
        signin(page, creds["clinician"])
        resp = page.goto(f"/app/patients/{server.patient_id('demo-web-e')}/pathway")
        assert resp.status == 200
        bad = [v for v in axe(page) if v["impact"] in {"serious", "critical"}]
        assert not bad, describe_violations(bad)
