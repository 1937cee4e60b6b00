"""SMART App Launch end to end in Chromium against the loopback test EHR, and its refusals.

The EHR (http://localhost) and the app (http://127.0.0.1) are different sites and the browser
blocks third-party cookies, as browsers do for an app in an EHR's iframe.
``SMART_SCREENSHOTS=1`` also writes the screenshots in docs/img/.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
from ehr import App, Ehr

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def shot(target: Any, name: str) -> None:
    if os.environ.get("SMART_SCREENSHOTS"):
        target.screenshot(path=str(IMG / f"smart-{name}.png"), full_page=False)


def patients(app: App) -> list[tuple[Any, ...]]:
    with sqlite3.connect(app.data / "withdrawal.db") as conn:
        return conn.execute("SELECT id, external_id, display_name FROM patients ORDER BY id").fetchall()


def app_frame(page: Any) -> Any:
    frame = page.frame_locator("#app")
    frame.locator("h1").wait_for()
    return frame


def test_ehr_launch_in_an_iframe_opens_the_launched_patient_read_only(page: Any, ehr: Ehr, app: App) -> None:
    urls: list[str] = []
    headers: dict[str, dict[str, str]] = {}
    page.on("request", lambda r: urls.append(r.url))
    page.on("response", lambda r: headers.__setitem__(r.url, r.headers) if "/smart/" in r.url else None)
    before = patients(app)
    pid = ehr.patient_ids()[0]
    page.goto(f"{ehr.base}/?patient={pid}")
    frame = app_frame(page)
    assert "Jane456 Doe123" in frame.locator("#smart-patient").inner_text()
    # tramadol with sertraline in the EHR's record: serotonergic, avoid
    assert frame.locator("#verdict").get_attribute("data-verdict") == "avoid"
    assert frame.locator("#findings [data-code=serotonergic_drug]").count() == 1
    assert "Nothing is stored" in frame.locator("#smart-readonly").inner_text()
    assert ehr.seen("authorize") == ["ok"] and ehr.seen("token") == ["ok"]
    assert {"Patient", "Condition", "MedicationRequest", "AllergyIntolerance", "Observation"} <= set(ehr.seen("fhir"))
    # the real redirects: EHR page -> /smart/launch -> EHR /authorize -> /smart/callback
    path = [u.split("?")[0] for u in urls if "/smart/" in u or "/authorize" in u]
    assert path[:3] == [f"{app.base_url}/smart/launch", f"{ehr.base}/authorize", f"{app.base_url}/smart/callback"]
    # tokens never in a URL
    tokens = list(ehr.access) + list(ehr.refresh)
    assert tokens and not any(t in u for t in tokens for u in urls)
    callback = next(h for u, h in headers.items() if "/smart/callback" in u)
    assert f"frame-ancestors 'self' {ehr.base}" in callback["content-security-policy"]
    assert "x-frame-options" not in callback and callback["referrer-policy"] == "no-referrer"
    assert patients(app) == before  # nothing stored
    # the clinician named by the EHR's verified id_token, in the page and the audit log
    assert frame.locator("#smart-user").inner_text() == f"{ehr.fhir}/{ehr.practitioner}"
    with sqlite3.connect(app.data / "withdrawal.db") as conn:
        actors = {r[0] for r in conn.execute("SELECT actor FROM audit_log WHERE resource = 'smart_patient'")}
    assert f"smart:{ehr.fhir}/{ehr.practitioner}@{ehr.fhir}" in actors
    log = app.log()
    assert "/smart/callback" in log and not any(t in log for t in tokens)  # tokens never logged
    shot(page, "ehr-launch-iframe")


def test_the_iframe_is_refused_to_other_origins(app: App, ehr: Ehr) -> None:
    r = httpx.get(f"{app.base_url}/smart/launch", params={"iss": ehr.fhir}, timeout=10)
    csp = r.headers["content-security-policy"]
    ancestors = csp.split("frame-ancestors", 1)[1].split(";", 1)[0].split()
    assert ancestors == ["'self'", ehr.base]
    # the password pages still refuse every frame
    assert "frame-ancestors 'none'" in httpx.get(f"{app.base_url}/login", timeout=10).headers[
        "content-security-policy"]


def test_standalone_launch_then_save_stores_only_on_request(page: Any, ehr: Ehr, app: App) -> None:
    page.goto(f"{app.base_url}/smart/launch?iss={ehr.fhir}")
    page.locator("#smart-patient").wait_for()
    assert "Jane456 Doe123" in page.locator("#smart-patient").inner_text()
    assert ehr.seen("authorize") == ["ok"]
    before = patients(app)
    shot(page, "standalone")
    page.get_by_role("button", name="Save to withdrawal").click()
    page.locator("#smart-saved").wait_for()
    after = patients(app)
    assert len(after) == len(before) + 1
    saved = after[-1]
    assert saved[1] == f"smart:{ehr.fhir}/Patient/{ehr.patient_ids()[0]}" and saved[2] == "Jane456 Doe123"
    assert f"record {saved[0]}" in page.locator("#smart-saved").inner_text()
    # saving again updates the same record
    page.get_by_role("button", name="Save to withdrawal").click()
    page.locator("#smart-saved").wait_for()
    assert len(patients(app)) == len(after)


def test_second_patient_context_comes_from_the_token_response(page: Any, ehr: Ehr, app: App) -> None:
    pid = ehr.patient_ids()[1]
    page.goto(f"{ehr.base}/?patient={pid}")
    frame = app_frame(page)
    assert "John Roe" in frame.locator("#smart-patient").inner_text()
    assert frame.locator("#findings [data-code=seizure_risk]").count() == 1


def test_an_expired_access_token_is_refreshed(page: Any, ehr: Ehr, app: App) -> None:
    ehr.controls.expires_in = 33  # the app refreshes 30 s before expiry: due 2-3 s after the launch
    page.goto(f"{ehr.base}/?patient={ehr.patient_ids()[0]}")
    frame = app_frame(page)
    page.wait_for_timeout(3200)
    frame.get_by_role("button", name="Read the EHR record again").click()
    frame.locator("#smart-refreshed").wait_for()
    assert ehr.seen("refresh") == ["ok"]
    assert frame.locator("#verdict").get_attribute("data-verdict") == "avoid"


def test_an_expired_token_without_refresh_is_refused(page: Any, ehr: Ehr, app: App) -> None:
    ehr.controls.expires_in, ehr.controls.issue_refresh = 33, False
    page.goto(f"{ehr.base}/?patient={ehr.patient_ids()[0]}")
    frame = app_frame(page)
    assert frame.locator("#smart-patient").count() == 1
    page.wait_for_timeout(3200)
    frame.get_by_role("button", name="Read the EHR record again").click()
    frame.locator("#smart-error").wait_for()
    assert frame.locator("#smart-error").get_attribute("data-code") == "expired"
    assert "Open the app again from the EHR" in frame.locator("#smart-error").inner_text()
    assert ehr.seen("refresh") == []
    shot(page, "refused-expired")


def test_wrong_state_is_refused(page: Any, ehr: Ehr, app: App) -> None:
    ehr.controls.wrong_state = True
    page.goto(f"{ehr.base}/?patient={ehr.patient_ids()[0]}")
    frame = app_frame(page)
    assert frame.locator("#smart-error").get_attribute("data-code") == "state"
    assert ehr.seen("token") == []  # no code was exchanged
    shot(page, "refused-state")


def test_an_iss_not_configured_is_refused_before_any_request(page: Any, ehr: Ehr, app: App) -> None:
    page.goto(f"{ehr.base}/?patient={ehr.patient_ids()[0]}&iss={ehr.base}/other-fhir")
    frame = app_frame(page)
    assert frame.locator("#smart-error").get_attribute("data-code") == "iss"
    assert ehr.events == []
    shot(page, "refused-iss")


def test_a_wrong_pkce_verifier_is_refused_by_the_ehr(page: Any, ehr: Ehr, app: App) -> None:
    ehr.controls.tamper_challenge = True
    page.goto(f"{ehr.base}/?patient={ehr.patient_ids()[0]}")
    frame = app_frame(page)
    assert frame.locator("#smart-error").get_attribute("data-code") == "token"
    assert "invalid_grant" in frame.locator("#smart-error").inner_text()
    assert "PKCE verification failed" in frame.locator("#smart-error").inner_text()
    assert ehr.seen("token") == ["bad verifier"] and ehr.seen("fhir") == []
    shot(page, "refused-pkce")


def test_callback_in_another_browser_is_refused(page: Any, ehr: Ehr, app: App) -> None:
    """A code and state started in one browser cannot be finished in another (the launch binding)."""
    with httpx.Client(timeout=10) as first:
        launched = first.get(f"{app.base_url}/smart/launch", params={"iss": ehr.fhir})
        assert launched.status_code == 302 and "wd_smart_bind" in launched.headers["set-cookie"]
        assert "Partitioned" in launched.headers["set-cookie"]
        back = first.get(launched.headers["location"])
        assert back.status_code == 302
    page.goto(back.headers["location"])  # a browser without the launch's binding cookie
    assert page.locator("#smart-error").get_attribute("data-code") == "state"
    assert ehr.seen("token") == []


def test_malformed_smart_requests_never_get_a_500(app: App, ehr: Ehr) -> None:
    base = app.base_url
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/smart/launch", {"params": {"iss": "x" * 600}}),
        ("GET", "/smart/launch", {"params": {"launch": "only-a-launch"}}),
        ("GET", "/smart/launch", {"params": {"iss": "javascript:alert(1)", "launch": "\u00e9"}}),
        ("GET", "/smart/launch", {"params": {"iss": ehr.fhir, "launch": "a b"}}),
        ("GET", "/smart/callback", {}),
        ("GET", "/smart/callback", {"params": {"state": "x" * 43, "code": "c"}}),
        ("GET", "/smart/callback", {"params": {"state": "\u0000", "error": "<script>"}}),
        ("POST", "/smart/reload", {}),
        ("POST", "/smart/reload", {"data": {"smart_session": "x" * 43}}),
        ("POST", "/smart/save", {"data": {"smart_session": "y" * 5000}}),
        ("POST", "/smart/save", {"content": b"\xff\xfe", "headers": {"content-type": "multipart/form-data"}}),
        ("POST", "/smart/end", {"data": {"smart_session": ""}}),
        ("POST", "/smart/reload", {"data": {"smart_session": "x" * 43}, "headers": {"origin": "https://evil.example"}}),
    ]
    for method, path, kw in cases:
        r = httpx.request(method, base + path, timeout=10, **kw)
        assert 400 <= r.status_code < 500, (method, path, kw, r.status_code)
        assert "internal error" not in r.text and "Traceback" not in r.text
        if "text/html" in r.headers["content-type"]:
            assert 'id="smart-error"' in r.text  # a page that says what was refused


def test_the_page_session_token_ends_and_is_refused_from_another_site(page: Any, ehr: Ehr, app: App) -> None:
    page.goto(f"{app.base_url}/smart/launch?iss={ehr.fhir}")
    page.locator("#smart-patient").wait_for()
    token = page.locator("input[name=smart_session]").first.get_attribute("value")
    assert token and len(token) >= 43
    foreign = httpx.post(f"{app.base_url}/smart/reload", data={"smart_session": token},
                         headers={"origin": "https://evil.example"}, timeout=10)
    assert foreign.status_code == 403 and 'data-code="origin"' in foreign.text
    page.get_by_role("button", name="End this session").click()
    page.get_by_role("heading", name="Session ended").wait_for()
    again = httpx.post(f"{app.base_url}/smart/reload", data={"smart_session": token}, timeout=10)
    assert again.status_code == 401 and 'data-code="session"' in again.text


def test_the_smart_page_has_no_serious_axe_violation(browser: Any, ehr: Ehr, app: App) -> None:
    axe_js = Path(__file__).resolve().parents[1] / "web" / "vendor" / "axe.min.js"
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    try:
        p = context.new_page()
        p.goto(f"{app.base_url}/smart/launch?iss={ehr.fhir}")
        p.locator("#smart-patient").wait_for()
        p.add_script_tag(path=str(axe_js))
        result = p.evaluate("""async () => await axe.run(document, {runOnly: {type: 'tag', values:
            ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}, resultTypes: ['violations']})""")
        serious = [f"{v['id']}: {v['help']}" for v in result["violations"] if v["impact"] in {"serious", "critical"}]
        assert serious == []
        assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    finally:
        context.close()


def test_an_id_token_for_another_client_is_refused(page: Any, ehr: Ehr, app: App) -> None:
    ehr.controls.id_token_aud = "some-other-app"
    page.goto(f"{ehr.base}/?patient={ehr.patient_ids()[0]}")
    frame = app_frame(page)
    assert frame.locator("#smart-error").get_attribute("data-code") == "id_token"
    assert "InvalidAudienceError" in frame.locator("#smart-error").inner_text()
    assert ehr.seen("fhir") == []
