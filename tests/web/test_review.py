"""Entries the knowledge base does not recognise are listed on saving, with "did you mean"
suggestions: pick one, remove the entry, or save anyway (then named as not screened)."""

from __future__ import annotations

from typing import Any

from tests_support import fill_new_patient, follow


def _start(page: Any, name: str, conditions: str, current: str) -> None:
    fill_new_patient(page, name, age="29", substance="heroin", hours="18", conditions=conditions, current=current)
    follow(page, page.get_by_role("button", name="Create and assess"))


def test_plain_words_resolve_and_misspellings_get_suggestions(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["clinician"])
    # plain clinical words and F32.9 resolve: no review, straight to the assessment
    _start(page, "Review A", "epilepsy\nsuicidal ideation\nF32.9", "")
    assert "Patient created" in page.get_by_role("status").inner_text()
    assert "Avoid" in page.locator("#verdict").inner_text()  # not a green "acceptable"
    # misspelt entries: the form comes back with every one listed and suggestions
    _start(page, "Review B", "epilepsi\nhed injury", "sertralin, 50\nzorblaxamine")
    review = page.locator("#review")
    assert review.is_visible()
    assert review.evaluate("e => document.activeElement === e")  # focus moves to the list
    text = review.inner_text()
    for entry in ("epilepsi", "hed injury", "sertralin", "zorblaxamine"):
        assert f"“{entry}”" in text
    assert not server.query("select id from patients where display_name = 'Review B'")  # nothing saved yet
    page.get_by_label("Did you mean epilepsy?").check()
    page.get_by_label("Did you mean sertraline?").check()
    page.locator("#fix-1-group").get_by_label("Remove it").check()  # hed injury
    follow(page, page.get_by_role("button", name="Save with these choices"))
    assert "Patient created" in page.get_by_role("status").inner_text()
    (data,) = server.query("select data from patients where display_name = 'Review B'")[0]
    assert '"epilepsy"' in data and "hed injury" not in data and 'epilepsi"' not in data
    assert '"sertraline"' in data and '"dose_mg_per_day": 50.0' in data  # the dose after the comma kept
    # the entry kept as typed is named as not screened, first
    assert "zorblaxamine" in page.locator("#not-screened").inner_text()


def test_save_anyway_keeps_entries_as_typed(page: Any, creds: Any, signin: Any, server: Any) -> None:
    signin(page, creds["clinician"])
    _start(page, "Review C", "seizurs", "zolfot")
    text = page.locator("#review").inner_text()
    assert "seizures" in text and "zoloft" in text
    follow(page, page.get_by_role("button", name="Save anyway"))
    assert "Patient created" in page.get_by_role("status").inner_text()
    assert "zolfot" in page.locator("#not-screened").inner_text()
    (data,) = server.query("select data from patients where display_name = 'Review C'")[0]
    assert '"seizurs"' in data and '"zolfot"' in data


def test_interaction_checker_lists_every_name(page: Any, creds: Any, signin: Any) -> None:
    signin(page, creds["clinician"])
    page.goto("/app/interactions")
    page.get_by_label("Medicines").fill("Zoloft Xanax methadone zorblaxamine\nsertralin")
    follow(page, page.get_by_role("button", name="Check"))
    results = page.locator("#interaction-results").inner_text()
    assert "Recognised: sertraline, alprazolam, methadone." in results
    missing = page.locator("#not-recognised").inner_text()
    assert "zorblaxamine" in missing and "sertralin" in missing and "did you mean sertraline" in missing
