"""The clinician's answer where the eye lands (issue 14): at 1280x800 and 390x844 the first screen
holds the tramadol verdict with its one-line reason, what was not screened and the recommended
alternative with its timing; the details are folded away and open on demand; one severity scale."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests_support import fill_new_patient, follow

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def on_first_screen(page: Any, selector: str) -> None:
    loc = page.locator(selector)
    assert loc.count() == 1, selector
    box = loc.bounding_box()
    height = page.viewport_size["height"]
    assert box is not None and box["height"] > 0, selector
    assert box["y"] >= 0 and box["y"] + box["height"] <= height, (
        f"{selector} ends at {box['y'] + box['height']} > {height}"
    )


@pytest.mark.parametrize("size", sorted(SIZES))
def test_contraindicated_answer_on_first_screen(
    make_page: Any, server: Any, creds: Any, signin: Any, size: str
) -> None:
    w, h = SIZES[size]
    page = make_page(width=w, height=h)
    signin(page, creds["clinician"])
    page.goto(f"/app/patients/{server.patient_id('demo-web-d')}")
    for sel in ("#verdict", "#verdict-reason", "#alternative", "#alternative-timing"):
        on_first_screen(page, sel)
    assert "Contraindicated" in page.locator("#verdict").inner_text()
    reason = page.locator("#verdict-reason").inner_text()
    assert "monoamine oxidase inhibitor" in reason and "phenelzine" in reason  # the reason, not a dose
    assert "mg" not in page.locator("#verdict").inner_text() + reason
    assert "Buprenorphine" in page.locator("#alternative").inner_text()
    assert re.search(r"COWS|since last use|start", page.locator("#alternative-timing").inner_text())
    # the verdict's badge and the finding behind it share one step of the severity scale
    assert page.locator("#verdict .badge").get_attribute("class") == "badge sev-stop"
    # the details are folded away and a link opens them
    findings = page.locator("#findings-details")
    assert findings.get_attribute("open") is None
    assert page.locator("#verdict-reason a").inner_text().startswith("Sources")  # one tap away
    page.locator("#verdict-reason a").click()
    assert findings.get_attribute("open") is not None
    assert page.locator("#findings .finding.sev-stop").first.is_visible()
    assert page.locator("#findings .finding.sev-stop .cite a").count() >= 1  # sources one tap away


@pytest.mark.parametrize("size", sorted(SIZES))
def test_unscreened_entries_on_first_screen(make_page: Any, server: Any, creds: Any, signin: Any, size: str) -> None:
    w, h = SIZES[size]
    page = make_page(width=w, height=h)
    signin(page, creds["clinician"])
    fill_new_patient(page, f"First screen {size}", age="30", substance="heroin", hours="20",
                     current="sertraline\nzorblaxamine")
    follow(page, page.get_by_role("button", name="Create and assess"))
    follow(page, page.get_by_role("button", name="Save anyway"))
    for sel in ("#not-screened", "#verdict", "#verdict-reason", "#alternative", "#alternative-timing"):
        on_first_screen(page, sel)
    assert "zorblaxamine" in page.locator("#not-screened").inner_text()
    assert "Avoid" in page.locator("#verdict").inner_text()
    assert "sertraline" in page.locator("#verdict-reason").inner_text()


def test_one_severity_scale(page: Any, server: Any, creds: Any, signin: Any) -> None:
    """Info, caution and a moderate COWS no longer share a colour: each level maps to one step."""
    from withdrawal.web.answer import severity

    assert len({severity("info"), severity("caution"), severity("avoid"), severity("contraindicated")}) == 4
    assert severity("moderate") == severity("caution") and severity("severe") == severity("contraindicated")
    signin(page, creds["clinician"])
    page.goto(f"/app/patients/{server.patient_id('demo-a')}")
    colours = page.evaluate("""() => Object.fromEntries(['stop','high','caution','note','ok'].map(k => {
        const s = document.createElement('span'); s.className = 'badge sev-' + k; document.body.appendChild(s);
        const c = getComputedStyle(s).backgroundColor; s.remove(); return [k, c]; }))""")
    assert len(set(colours.values())) == 5, colours
    # an alert that fires for nearly every patient (COWS high enough for buprenorphine) is not an open alert
    alerts = page.locator("#alerts")
    assert alerts.count() == 0 or "buprenorphine_threshold_reached" not in alerts.inner_html()
