"""axe-core in the same headless Chromium: no serious or critical violation on the main pages,
at desktop and phone widths; the skip link and keyboard focus work."""

from __future__ import annotations

from typing import Any

import pytest

PUBLIC = ["/", "/info", "/info/withdrawal", "/info/tramadol", "/info/questions", "/info/help", "/login"]
CLINICIAN = ["/app/patients", "/app/patients/new", "/app/patients/{d}/edit", "/app/patients/{d}", "/app/patients/{e}/cows", "/app/patients/{a}/course",
             "/app/patients/{e}/simulator", "/app/interactions?drugs=sertraline%2C+alprazolam", "/app/evidence"]
PATIENT = ["/app/patients/{a}", "/app/patients/{a}/sows"]
SERIOUS = {"serious", "critical"}


def _check(page: Any, paths: list[str], ids: dict[str, int], axe: Any, describe: Any) -> list[str]:
    problems = []
    for path in paths:
        url = path.format(**ids)
        resp = page.goto(url)
        assert resp.status == 200, url
        bad = [v for v in axe(page) if v["impact"] in SERIOUS]
        if bad:
            problems.append(f"{url}:\n{describe(bad)}")
    return problems


@pytest.mark.parametrize("width", [1280, 390])
def test_no_serious_axe_violations(make_page: Any, server: Any, creds: Any, signin: Any, axe: Any,
                                   describe_violations: Any, width: int) -> None:
    ids = {"a": server.patient_id("demo-a"), "d": server.patient_id("demo-web-d"),
           "e": server.patient_id("demo-web-e")}
    problems: list[str] = []
    # bypass_csp: the page's CSP (script-src 'self') would refuse the injected axe script
    anon = make_page(width=width, height=844, bypass_csp=True)
    problems += _check(anon, PUBLIC, ids, axe, describe_violations)
    clin = make_page(width=width, height=844, bypass_csp=True)
    signin(clin, creds["clinician"])
    problems += _check(clin, CLINICIAN, ids, axe, describe_violations)
    pat = make_page(width=width, height=844, bypass_csp=True)
    signin(pat, creds["patient"])
    problems += _check(pat, PATIENT, ids, axe, describe_violations)
    assert not problems, "\n\n".join(problems)


def test_skip_link_and_keyboard(page: Any, creds: Any, signin: Any, server: Any) -> None:
    page.goto("/info")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # the COWS form is usable from the keyboard: arrow keys move within a radio group
    signin(page, creds["clinician"])
    page.goto(f"/app/patients/{server.patient_id('demo-web-e')}/cows")
    first = page.locator("fieldset.item").first.locator("input[type=radio]").first
    first.focus()
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    assert page.locator("fieldset.item").first.locator("input:checked").get_attribute("value") == "1"
    assert page.locator("#total").inner_text() == "1"


def test_no_horizontal_scroll_on_a_phone(make_page: Any, creds: Any, signin: Any, server: Any) -> None:
    page = make_page(width=390, height=844)
    signin(page, creds["clinician"])
    for url in ("/app/patients", f"/app/patients/{server.patient_id('demo-web-d')}", "/info/questions"):
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, url


def test_axe_check_is_not_vacuous(make_page: Any, axe: Any) -> None:
    page = make_page(bypass_csp=True)
    page.goto("/login")
    page.evaluate("document.querySelector('label[for=password]').remove()")
    ids = {v["id"] for v in axe(page) if v["impact"] in SERIOUS}
    assert "label" in ids
