"""Recording tramadol is checked as an EHR order is (issue 14): refused when contraindicated, an
override reason (kept in the audit log, not in the application logs) when it is to be avoided or
above the patient's limit; every error at once, in plain words, next to its field."""

from __future__ import annotations

from typing import Any

from tests_support import follow


def _dose(page: Any, drug: str, mg: str, hours: str = "0", reason: str | None = None) -> None:
    page.get_by_label("Medicine").fill(drug)
    page.get_by_label("Dose (mg)").fill(mg)
    page.get_by_label("Given how many hours ago (0 = now)").fill(hours)
    if reason is not None:
        page.get_by_label("Override reason").fill(reason)
    follow(page, page.get_by_role("button", name="Record dose"))


def test_avoid_needs_an_override_reason_kept_in_the_audit_log(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["clinician"])
    pid = server.patient_id("demo-a")  # sertraline: tramadol to be avoided
    page.goto(f"/app/patients/{pid}/course")
    assert page.get_by_label("Medicine").input_value() == ""  # no pre-filled tramadol
    before = server.query("select count(*) from medication_administrations where patient_id = ?", pid)[0][0]
    _dose(page, "tramadol", "50")
    error = page.locator("#override_reason-error")
    assert "avoided" in error.inner_text() and "sertraline" in error.inner_text()
    assert page.get_by_label("Override reason").get_attribute("aria-invalid") == "true"
    assert server.query("select count(*) from medication_administrations where patient_id = ?", pid)[0][0] == before
    reason = "Declined buprenorphine and methadone; daily review arranged"
    _dose(page, "tramadol", "50", reason=reason)
    assert "against a warning" in page.get_by_role("status").inner_text()
    rows = server.query(
        "select outcome, reason from audit_log where patient_id = ? and resource = 'administration' "
        "and action = 'create' order by id desc limit 1",
        pid,
    )
    assert rows == [("override", reason)]
    log = (server.db.parent / "server.log").read_text(errors="replace")
    assert reason not in log  # never in the application log


def test_above_the_limit_and_every_error_at_once(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["clinician"])
    pid = server.patient_id("demo-web-e")  # tramadol: caution, limit 400 mg a day
    page.goto(f"/app/patients/{pid}/course")
    _dose(page, "tramadol", "500", hours="100")
    assert page.locator("#hours_ago-error").is_visible()
    limit = page.locator("#override_reason-error").inner_text()
    assert "500 mg" in limit and "limit of 400 mg" in limit
    summary = page.get_by_role("alert").inner_text()
    assert "hours_ago" in summary and "override_reason" in summary  # both at once
    _dose(page, "tramadol", "500", hours="0", reason="Inpatient, monitored; prescriber agreed dose")
    assert "against a warning" in page.get_by_role("status").inner_text()
    _dose(page, "ondansetron", "4")  # another medicine: no order check
    assert page.get_by_role("status").inner_text() == "Dose recorded."


def test_contraindicated_is_refused_with_the_reason(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["clinician"])
    pid = server.patient_id("demo-web-d")  # phenelzine stopped 5 days ago
    page.goto(f"/app/patients/{pid}/course")
    _dose(page, "Ultram", "50")
    error = page.locator("#drug-error").inner_text()
    assert "contraindicated" in error and "phenelzine" in error
    assert page.get_by_label("Override reason").count() == 0  # no override for a contraindication
    resp = page.request.post(
        f"/app/patients/{pid}/doses",
        form={
            "csrf": page.locator("input[name=csrf]").first.input_value(),
            "drug": "tramadol",
            "dose_mg": "50",
            "hours_ago": "0",
            "kind": "administration",
            "override_reason": "I accept the risk fully, really",
        },
    )
    assert resp.status == 422 and "contraindicated" in resp.text()
    assert not server.query("select id from medication_administrations where patient_id = ? and drug = 'tramadol'", pid)


def test_the_same_override_unlocks_the_schedule_on_the_page(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["clinician"])
    pid = server.patient_id("demo-a")  # avoid: no ready schedule
    page.goto(f"/app/patients/{pid}")
    assert "override" in page.locator("#regimen-withheld").inner_text()
    follow(page, page.get_by_role("button", name="Show the schedule with this reason"))
    assert "at least 10 characters" in page.locator("#override_reason-error").inner_text()
    reason = "Buprenorphine and methadone declined after discussion"
    page.get_by_label("Override reason").fill(reason)
    follow(page, page.get_by_role("button", name="Show the schedule with this reason"))
    assert reason in page.locator("#answer").inner_text()  # named on the first screen
    assert page.get_by_role("table", name="Tramadol taper by day").is_visible()
    assert server.query("select reason from audit_log where patient_id = ? and action = 'assess_override'", pid) == [
        (reason,)
    ]
    # never for a contraindication: no form, and a forged request gets no schedule
    d = server.patient_id("demo-web-d")
    page.goto(f"/app/patients/{d}")
    assert page.locator("form[action$='/override#h-taper']").count() == 0
    resp = page.request.post(
        f"/app/patients/{d}/override",
        form={"csrf": page.locator("input[name=csrf]").first.input_value(), "override_reason": reason},
    )
    assert resp.status == 200 and "Tramadol taper by day" not in resp.text()
