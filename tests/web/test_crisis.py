"""A patient's crisis signal reaches someone (issue 14): a SOWS at crisis level shows the patient
988 and 911 first, as tap-to-call links, and raises a critical alert on the clinician's side."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests_support import fill_new_patient, follow
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.web.answer import DIAL


def test_dial_numbers_are_the_resources_own(kb: KnowledgeBase) -> None:
    resources = {r.id: r for r in kb.care.resources}
    for rid, links in DIAL.items():
        digits = re.sub(r"\D", "", resources[rid].contact)
        for _, href in links:
            number = re.sub(r"\D", "", href).removeprefix("1") if href.startswith("tel:+1") else href[4:]
            assert number in digits or number in re.sub(r"\D", "", resources[rid].contact.replace("HELP", "4357")), (
                rid,
                href,
            )


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_crisis_numbers_tap_to_call_on_the_first_screen(
    make_page: Any, creds: Any, signin: Any, width: int, height: int
) -> None:
    page = make_page(width=width, height=height)
    signin(page, creds["patient"])
    for href in ("tel:988", "sms:988", "tel:911"):
        link = page.locator(f"#help-now a[href='{href}'], #crisis a[href='{href}']")
        assert link.count() == 1, href
        box = link.bounding_box()
        assert box is not None and box["y"] + box["height"] <= height and box["height"] >= 44, (href, box)
    assert page.locator("footer a[href='tel:+18006624357']").count() == 1


def test_sows_at_crisis_level_reaches_the_clinician(make_page: Any, creds: Any, signin: Any, server: Any) -> None:
    patient = make_page(width=390, height=844)
    signin(patient, creds["patient2"])
    follow(patient, patient.get_by_role("link", name="Record how I feel today"))
    items = patient.locator("fieldset.item")
    for i in range(items.count()):
        items.nth(i).get_by_label(re.compile("extremely")).check()  # 64 of 64, craving "extremely"
    follow(patient, patient.get_by_role("button", name="Save today's answers"))
    crisis = patient.locator("#crisis")
    assert crisis.is_visible() and crisis.get_attribute("role") == "alert"
    box = crisis.bounding_box()
    assert box is not None and box["y"] < 844
    assert crisis.locator("a[href='tel:988']").is_visible() and crisis.locator("a[href='tel:911']").is_visible()
    status = patient.get_by_role("status")
    assert "Thank you" not in status.inner_text()
    # crisis first: above the saved message
    assert box["y"] < status.bounding_box()["y"]
    # the clinician's list and the patient's page carry the alert
    clin = make_page()
    signin(clin, creds["clinician"])
    row = clin.locator("tr", has_text="Demo patient B")
    assert "self-report at crisis level" in row.inner_text()
    clin.goto(f"/app/patients/{server.patient_id('demo-b')}")
    alert = clin.locator("#alerts [data-code=patient_crisis_signal]")
    assert alert.is_visible() and "Stop" in alert.inner_text()
    assert "crisis" in clin.locator("#cows-status .alert-link").inner_text().lower()


@pytest.mark.parametrize("width", [1280, 390])
def test_new_states_are_axe_clean(
    make_page: Any, creds: Any, signin: Any, server: Any, axe: Any, describe_violations: Any, width: int
) -> None:
    """The review list, the dose form asking for an override and the crisis screen: no serious or
    critical axe violation at either width."""
    serious = {"serious", "critical"}
    clin = make_page(width=width, height=844, bypass_csp=True)
    signin(clin, creds["clinician"])
    problems: list[str] = []
    fill_new_patient(clin, f"Axe {width}", age="30", conditions="epilepsi")
    follow(clin, clin.get_by_role("button", name="Create and assess"))
    assert clin.locator("#review").is_visible()
    problems += [f"review: {describe_violations(v)}" for v in [[x for x in axe(clin) if x["impact"] in serious]] if v]
    clin.goto(f"/app/patients/{server.patient_id('demo-a')}/course")
    clin.get_by_label("Medicine").fill("tramadol")
    clin.get_by_label("Dose (mg)").fill("50")
    follow(clin, clin.get_by_role("button", name="Record dose"))
    assert clin.locator("#override_reason-error").is_visible()
    problems += [f"dose: {describe_violations(v)}" for v in [[x for x in axe(clin) if x["impact"] in serious]] if v]
    pat = make_page(width=width, height=844, bypass_csp=True)
    signin(pat, creds["patient2"])
    pid = server.patient_id("demo-b")
    pat.goto(f"/app/patients/{pid}/sows")
    items = dict.fromkeys(
        pat.locator("fieldset.item input[type=radio]").evaluate_all("els => [...new Set(els.map(e => e.name))]"), "4"
    )
    resp = pat.request.post(
        f"/app/patients/{pid}/sows", form={"csrf": pat.locator("input[name=csrf]").first.input_value(), **items}
    )
    assert resp.ok
    pat.goto(f"/app/patients/{pid}")
    assert pat.locator("#crisis").is_visible()
    problems += [f"diary: {describe_violations(v)}" for v in [[x for x in axe(pat) if x["impact"] in serious]] if v]
    assert not problems, "\n".join(problems)
