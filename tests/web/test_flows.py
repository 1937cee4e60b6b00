"""End-to-end in headless Chromium against a real server: the flows issue 6 asks for."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests_support import follow
from withdrawal.scales.scoring import band_for


def test_sign_in_record_cows_and_see_band(page: Any, server: Any, creds: Any, signin: Any, kb: Any) -> None:
    signin(page, creds["clinician"])
    assert page.url.endswith("/app/patients")
    assert page.get_by_role("heading", name="Patients", level=1).is_visible()
    row = page.locator("tr", has_text="Demo patient E")
    assert row.locator(".badge").count() >= 1  # the tramadol verdict is shown per patient
    follow(page, row.get_by_role("link", name=re.compile("New COWS")))
    assert page.get_by_role("heading", level=1).inner_text().startswith("New COWS")
    items = page.locator("fieldset.item")
    assert items.count() == 11
    # pick the second answer of each item: the total and band update live (JavaScript)
    expected = 0
    for i in range(11):
        radio = items.nth(i).locator("input[type=radio]").nth(1)
        radio.check()
        expected += int(radio.get_attribute("value") or "0")
        if i == 4:
            assert page.locator("#answered").inner_text().startswith("5 of 11")
    assert page.locator("#total").inner_text() == str(expected)
    band = band_for(expected, kb.scales["cows"])
    assert band is not None and band.key == "moderate"
    assert page.locator("#band").inner_text() == band.label
    follow(page, page.get_by_role("button", name="Save COWS"))
    status = page.get_by_role("status")
    assert f"total {expected}" in status.inner_text() and band.label in status.inner_text()
    assert band.label in page.locator("#cows-result").inner_text()


def test_cows_form_works_without_javascript(make_page: Any, creds: Any, signin: Any, server: Any) -> None:
    page = make_page(java_script_enabled=False)
    signin(page, creds["clinician"])
    pid = server.patient_id("demo-web-e")
    page.goto(f"/app/patients/{pid}/cows")
    # submit with only some items: the server answers with an error summary linking to the missing items
    items = page.locator("fieldset.item")
    for i in range(3):
        items.nth(i).locator("input[type=radio]").last.check()
    resp = page.request.post(f"/app/patients/{pid}/cows", form={
        "csrf": page.locator("input[name=csrf]").first.input_value(), "resting_pulse_rate": "4"})
    assert resp.status == 422 and "to give or correct" in resp.text()
    for i in range(11):
        items.nth(i).locator("input[type=radio]").last.check()
    follow(page, page.get_by_role("button", name="Save COWS"))
    status = page.get_by_role("status").inner_text()
    assert "total 48" in status and "Severe" in status  # every item at its top score


def test_contraindicated_patient_shows_blocking_finding(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["clinician"])
    row = page.locator("tr", has_text="Demo patient D")
    assert "contraindicated" in row.inner_text()
    follow(page, row.get_by_role("link", name=re.compile("^Demo patient D")))
    verdict = page.locator("#verdict")
    assert "Contraindicated" in verdict.inner_text()
    page.locator("#findings-details > summary").click()  # the details are folded away
    blocking = page.locator("#findings .finding.sev-stop")
    assert blocking.count() >= 1
    text = blocking.first.inner_text()
    assert "monoamine oxidase inhibitor" in text and "phenelzine" in text
    links = blocking.first.locator(".cite a")
    assert links.count() >= 1
    assert all((links.nth(i).get_attribute("href") or "").startswith("https://") for i in range(links.count()))
    # the ranked options put buprenorphine first and list tramadol as not suitable
    page.locator("#options-details > summary").click()
    assert "Buprenorphine" in page.locator(".options-list > li").first.inner_text()
    assert "Tramadol" in page.get_by_role("heading", name="Not suitable for this patient").locator(
        "xpath=following-sibling::ul[1]").inner_text()


def test_patient_records_sows_and_sees_chart(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["patient"])
    assert page.get_by_role("heading", name="My withdrawal diary").is_visible()
    before = page.locator("#chart svg circle").count()
    follow(page, page.get_by_role("link", name="Record how I feel today"))
    items = page.locator("fieldset.item")
    assert items.count() == 16
    for i in range(16):
        items.nth(i).get_by_label(re.compile("a little")).check()
    assert page.locator("#total").inner_text() == "16"
    follow(page, page.get_by_role("button", name="Save today's answers"))
    assert "saved" in page.get_by_role("status").inner_text()
    chart = page.locator("#chart svg[role=img]")
    assert chart.is_visible()
    assert page.locator("#chart svg circle").count() == before + 1
    assert "SOWS" in chart.inner_html()
    assert "COWS total" not in chart.inner_html()  # the patient's chart is their own self-rating


def test_patient_cannot_open_another_patients_page(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["patient"])
    own = int(page.url.rstrip("/").split("/")[-1].split("?")[0].split("#")[0])
    other = server.patient_id("demo-b")
    assert own != other
    for path in (f"/app/patients/{other}", f"/app/patients/{other}/course", f"/app/patients/{other}/sows"):
        resp = page.goto(path)
        assert resp.status == 404, path
        assert page.get_by_role("heading", name="Page not found").is_visible()
        assert "Demo patient B" not in page.content()
    assert page.goto("/app/patients").url.endswith(f"/app/patients/{own}")  # no patient list for patients
    assert page.goto(f"/app/patients/{own}/cows").status == 403  # the COWS is scored by a clinician
    assert page.goto("/app/interactions").status == 403
    denied = server.query("SELECT COUNT(*) FROM audit_log WHERE patient_id = ? AND outcome = 'denied'", other)
    assert denied[0][0] >= 3
    # and the second patient account sees its own record, not the first one's
    page.context.clear_cookies()
    signin(page, creds["patient2"])
    assert page.url.split("?")[0].endswith(f"/app/patients/{other}")
    assert page.goto(f"/app/patients/{own}").status == 404


def test_pages_need_sign_in_and_forms_need_csrf(page: Any, creds: Any, signin: Any, server: Any) -> None:
    page.goto("/app/patients")
    assert "/login?next=/app/patients" in page.url
    signin(page, creds["clinician"])  # via the login form with next: lands on the page asked for
    pid = server.patient_id("demo-web-e")
    resp = page.request.post(f"/app/patients/{pid}/cows", form={"resting_pulse_rate": "0"})
    assert resp.status == 403
    resp = page.request.post(f"/app/patients/{pid}/cows", form={"csrf": "forged"})
    assert resp.status == 403
    token = page.goto(f"/app/patients/{pid}/cows") and page.locator("input[name=csrf]").first.input_value()
    resp = page.request.post(f"/app/patients/{pid}/cows", form={"csrf": token},
                             headers={"Origin": "https://evil.example"})
    assert resp.status == 403
    # a plain HTTP client with no session is sent to sign in; the REST API still answers JSON
    r = httpx.get(server.base_url + f"/app/patients/{pid}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = httpx.get(server.base_url + f"/patients/{pid}")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/json")


def test_wrong_password_is_refused(page: Any, creds: Any) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(creds["clinician"][0])
    page.get_by_label("Password").fill("not-the-password")
    follow(page, page.get_by_role("button", name="Sign in"))
    assert "Wrong username or password" in page.get_by_role("alert").inner_text()
    assert page.context.cookies() == [] or all(c["name"] != "wd_session" for c in page.context.cookies())


def test_course_simulator_interactions_and_evidence(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["clinician"])
    first = server.patient_id("demo-a")
    page.goto(f"/app/patients/{first}/course")
    svg = page.locator("#chart svg[role=img]")
    assert "COWS total" in svg.inner_html() and "SOWS total" in svg.inner_html()
    assert svg.locator("path[fill]").count() >= 1 and "Doses given" in svg.inner_html()
    e = server.patient_id("demo-web-e")
    page.goto(f"/app/patients/{e}/simulator")
    assert page.locator("svg[role=img]").count() == 1
    assert page.locator("#phenotype").input_value() == "intermediate"  # the recorded phenotype
    page.locator("#phenotype").select_option("poor")
    follow(page, page.get_by_role("button", name="Show"))
    assert "poor metabolizer" in (page.locator("svg title").first.text_content() or "")
    page.goto("/app/interactions")
    page.get_by_label(re.compile("Medicines")).fill("sertraline, alprazolam, notadrug")
    follow(page, page.get_by_role("button", name="Check"))
    results = page.locator("#interaction-results").inner_text()
    assert "sertraline" in results.lower() and "notadrug" in results and "serotonin" in results.lower()
    page.goto("/app/evidence")
    img = page.get_by_role("img", name=re.compile("Forest plot"))
    assert img.evaluate("i => i.complete && i.naturalWidth > 0")


def test_clinician_creates_a_patient_and_records_a_dose(page: Any, creds: Any, signin: Any, server: Any) -> None:
    """New patient from the list page: a recently stopped MAOI blocks tramadol (label: contraindicated within
    14 days of an MAOI); a bad entry comes back named; a recorded tramadol dose shows on the course."""
    signin(page, creds["clinician"])
    follow(page, page.get_by_role("link", name="New patient").first)
    page.wait_for_url("**/app/patients/new")  # is_visible does not wait for the navigation
    assert page.get_by_role("heading", name="New patient", level=1).is_visible()
    page.get_by_label("Name or initials").fill("Flow patient F")
    page.get_by_label("Age in years").fill("200")
    page.get_by_label("Opioid the patient is withdrawing from").select_option("heroin")
    page.get_by_label("Hours since last use").fill("14")
    page.get_by_label("Medications stopped recently").fill("phenelzine, 5")
    follow(page, page.get_by_role("button", name="Create and assess"))
    summary = page.get_by_role("alert")
    assert "age_years" in summary.inner_text() and "120" in summary.inner_text()  # the model's bound, named
    assert page.get_by_label("Name or initials").input_value() == "Flow patient F"  # the form keeps the entries
    page.get_by_label("Age in years").fill("41")
    follow(page, page.get_by_role("button", name="Create and assess"))
    assert "Patient created" in page.get_by_role("status").inner_text()
    assert "Contraindicated" in page.locator("#verdict").inner_text()
    assert "phenelzine" in page.locator("#verdict-reason").inner_text()
    pid = int(re.search(r"/app/patients/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    assert server.query("select action from audit_log where resource = 'patient' and patient_id = ? "
                        "and action = 'create'", pid)
    page.goto(f"/app/patients/{pid}/course")
    page.get_by_label("Dose (mg)").fill("0")
    follow(page, page.get_by_role("button", name="Record dose"))
    assert "dose_mg" in page.get_by_role("alert").inner_text()
    page.get_by_label("Medicine").fill("tramadol")
    page.get_by_label("Dose (mg)").fill("50")
    page.get_by_label("Given how many hours ago (0 = now)").fill("2")
    follow(page, page.get_by_role("button", name="Record dose"))
    assert "contraindicated" in page.locator("#drug-error").inner_text()  # refused, with the reason
    page.get_by_label("Medicine").fill("ondansetron")
    page.get_by_label("Dose (mg)").fill("4")
    follow(page, page.get_by_role("button", name="Record dose"))
    assert page.get_by_role("status").inner_text() == "Dose recorded."
    assert server.query("select drug, dose_mg from medication_administrations where patient_id = ?", pid) == [
        ("ondansetron", 4.0)]
    # edit the data: the form comes back filled in; the new age is saved and assessed
    follow(page, page.get_by_role("link", name="Edit data"))
    assert page.get_by_label("Medications stopped recently").input_value() == "phenelzine, 5"
    page.get_by_label("Age in years").fill("80")
    follow(page, page.get_by_role("button", name="Save and assess"))
    assert "Patient data saved" in page.get_by_role("status").inner_text()
    page.locator("#findings-details > summary").click()
    assert "age 80" in page.locator("#findings").inner_text()  # the over-75 finding, triggered by the new age
    (data,) = server.query("select data from patients where id = ?", pid)[0]
    assert '"age_years": 80' in data and "phenelzine" in data
