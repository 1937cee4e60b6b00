"""The COWS form in compact rows (issue 14): fewer screens, a pinned total with the next step, the
time of scoring, "copy result" for the chart; the course chart shows the newest points on a phone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests_support import fill_new_patient, follow


@pytest.mark.parametrize("width,height,screens", [(1280, 800, 2.8), (390, 844, 4.6)])
def test_compact_cows_with_next_step_and_time(
    make_page: Any, creds: Any, signin: Any, server: Any, width: int, height: int, screens: float
) -> None:
    page = make_page(width=width, height=height)
    signin(page, creds["clinician"])
    pid = server.patient_id("demo-web-e")
    page.goto(f"/app/patients/{pid}/cows")
    total_height = page.evaluate("document.documentElement.scrollHeight")
    assert total_height / height < screens, total_height  # 4.4 screens at 1280 before
    items = page.locator("fieldset.item")
    for i in range(11):
        items.nth(i).locator("input[type=radio]").first.check()  # all 0: total 0
    pinned = page.locator(".live-total")
    assert "too early for buprenorphine" in page.locator("#next-step").inner_text()
    for i in range(4):
        items.nth(i).locator("input[type=radio]").nth(2).check()
    total = int(page.locator("#total").inner_text())
    assert total >= 8 and "buprenorphine can start" in page.locator("#next-step").inner_text()
    box = pinned.bounding_box()  # pinned: in view while the last item is
    items.nth(10).scroll_into_view_if_needed()
    box = pinned.bounding_box()
    assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height + 1
    page.get_by_label("Scored how many minutes ago (0 = now)").fill("30")
    follow(page, page.get_by_role("button", name="Save COWS"))
    assert f"total {total}" in page.get_by_role("status").inner_text()
    when = page.locator("#cows-copy").inner_text()
    (at,) = server.query(
        "select recorded_at from assessments where patient_id = ? and scale = 'cows' order by id desc limit 1", pid
    )[0]
    assert re.search(r"scored \d\d \w{3} \d{4} \d\d:\d\d UTC", when)
    assert str(at)[11:16] in when  # the time asked for, not the time of saving


def test_copy_result_and_bad_time(make_page: Any, creds: Any, signin: Any, server: Any) -> None:
    page = make_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    signin(page, creds["clinician"])
    pid = server.patient_id("demo-web-d")
    page.goto(f"/app/patients/{pid}")
    page.get_by_role("button", name="Copy result").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("COWS ") and "/48" in copied and "UTC" in copied
    page.goto(f"/app/patients/{pid}/cows")
    page.get_by_label("Scored how many minutes ago (0 = now)").fill("9999")
    follow(page, page.get_by_role("button", name="Save COWS"))
    summary = page.get_by_role("alert").inner_text()
    assert "minutes_ago" in summary and "720" in summary and "Resting pulse rate" in summary  # all at once


def test_course_chart_opens_at_the_newest_points_on_a_phone(
    make_page: Any, creds: Any, signin: Any, server: Any
) -> None:
    page = make_page(width=390, height=844)
    signin(page, creds["clinician"])
    page.goto(f"/app/patients/{server.patient_id('demo-a')}/course")
    scroller = page.locator("#chart .chart-scroll")
    overflow = scroller.evaluate("e => e.scrollWidth - e.clientWidth")
    assert overflow > 0  # the chart is wider than a phone
    svg_right = page.locator("#chart svg[role=img]").bounding_box()
    view = scroller.bounding_box()
    assert svg_right["x"] + svg_right["width"] <= view["x"] + view["width"] + 1  # its right end is in view


def test_simulator_menu_names_the_phenotype_simulated(page: Any, creds: Any, signin: Any) -> None:
    signin(page, creds["clinician"])
    fill_new_patient(page, "Simulator no phenotype", age="35", substance="heroin", hours="20")
    follow(page, page.get_by_role("button", name="Create and assess"))
    follow(page, page.get_by_role("link", name="Simulator"))
    assert page.locator("#phenotype").input_value() == "normal"  # not "poor" while simulating normal
    assert "assumed" in page.locator("#phenotype option:checked").inner_text()
    assert "normal metabolizer" in (page.locator("svg title").first.text_content() or "")
