"""Issue 17: the printable handout (the plan and the SOWS diary) in Chromium: the plan saved from the
clinician's page with its note, the diary's entries, the crisis resources, English and Spanish; printed
to PDF without navigation or forms; another patient's handout is not found."""

from __future__ import annotations

from typing import Any

from tests_support import follow

NOTE = "Start at the clinic on Monday. Bring this diary."


def test_the_handout_prints_the_plan_and_the_diary(make_page: Any, server: Any, creds: Any, signin: Any) -> None:
    patient = make_page(width=1280, height=900)
    signin(patient, creds["patient2"])
    own = int(patient.url.rstrip("/").rsplit("/", 1)[1])
    clinician = make_page(width=1280, height=900)
    signin(clinician, creds["clinician"])
    clinician.goto(f"/app/patients/{own}")
    clinician.locator("#plan-note").fill(NOTE)
    follow(clinician, clinician.locator("section.plan-save button[type=submit]"))
    clinician.wait_for_load_state()
    assert "Plan saved" in clinician.locator("[role=status]").first.inner_text()
    handout_link = clinician.locator(f"a[href='/app/patients/{own}/handout']")
    assert handout_link.count() == 1

    assert patient.goto(f"/app/patients/{own}/handout").status == 200
    text = patient.locator("main").inner_text()
    assert NOTE in text and "My plan and diary" in text
    sows = server.query("SELECT count(*) FROM assessments WHERE patient_id = ? AND scale = 'sows'", own)[0][0]
    assert patient.locator("table.diary:not(.blank) tbody tr").count() == sows
    assert "SAMHSA National Helpline" in text and "988" in text and "911" in text
    patient.emulate_media(media="print")
    assert not patient.locator(".site-header nav").is_visible()
    assert not patient.locator("form.lang-switch").is_visible()
    assert patient.locator("table.diary.blank").is_visible()
    pdf = patient.pdf(format="Letter")
    assert pdf[:5] == b"%PDF-" and len(pdf) > 10_000
    patient.emulate_media(media="screen")

    patient.goto("/info")
    follow(patient, patient.locator("form.lang-switch button"))
    patient.wait_for_load_state()
    try:
        patient.goto(f"/app/patients/{own}/handout")
        spanish = patient.locator("main").inner_text()
        assert "Mi plan y mi diario" in spanish and NOTE in spanish and "Línea Nacional de Ayuda de SAMHSA" in spanish
    finally:
        patient.goto("/info")
        follow(patient, patient.locator("form.lang-switch button"))
        patient.wait_for_load_state()
    assert patient.evaluate("document.documentElement.lang") == "en"

    other = server.patient_id("demo-a")
    assert other != own
    assert patient.goto(f"/app/patients/{other}/handout").status == 404
