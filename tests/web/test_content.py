"""The plain-language content: loads, the questions answered guideline first, every paragraph cited,
public sources and public resources only (no private treatment centre, no private phone number)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests_support import kb_with
from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.loader import default_kb, load_kb
from withdrawal.knowledge.patient_info import LEAD, NEVER_ALONE, QUESTIONS

PHONE = re.compile(r"\b\d{3}[-. )]\d{3}[-. ]\d{4}\b")
# Private treatment providers this project once cited (a recovery centre's withdrawal page and the
# article whose questions the pages answer); neither may come back, as a source or as a link.
PRIVATE_DOMAINS = ("bocarecoverycenter", "mccaod")
# Host words that mark a private treatment provider's site.
PRIVATE_HOST = re.compile(r"recovery|rehab|detox|addiction|treatmentcent(er|re)")
PUBLIC_PAGES = ["/", "/info", "/info/withdrawal", "/info/self-care", "/info/tramadol", "/info/risks", "/info/help",
                "/info/questions"]


def answer_text(faq_id: str) -> str:
    faq = next(f for f in default_kb().patient_info["en"].faqs if f.id == faq_id)
    return " ".join(p.text for p in faq.answer)


def test_patient_info_loads_with_the_questions_in_order() -> None:
    info = default_kb().patient_info["en"]
    assert tuple(f.id for f in info.faqs) == QUESTIONS
    assert {s.id for s in info.sections} >= {"withdrawal", "self_care", "tramadol", "risks", "help_now"}


def test_every_paragraph_and_every_answer_cites_registered_sources() -> None:
    sources = default_kb().sources
    for where, p in default_kb().patient_info["en"].paragraphs():
        assert p.sources, where
        assert all(s in sources for s in p.sources), where
    for f in default_kb().patient_info["en"].faqs:
        cited = {s for p in f.answer for s in p.sources}
        assert cited and cited <= set(sources), f.id


def test_each_answer_leads_with_the_guideline_and_a_clinician() -> None:
    for f in default_kb().patient_info["en"].faqs:
        lead = f.answer[0].text
        assert lead.startswith(LEAD), f.id
        assert all(words in lead.lower() for words in NEVER_ALONE), f.id
        assert len(f.answer) >= 2, f"{f.id}: the nuance follows the guideline answer"
    intro = default_kb().patient_info["en"].faq_intro.text.lower()
    assert "buprenorphine and methadone" in intro and all(w in intro for w in NEVER_ALONE)


def test_does_it_help_puts_buprenorphine_before_the_tramadol_nuance() -> None:
    faq = next(f for f in default_kb().patient_info["en"].faqs if f.id == "does_it_help")
    lead = faq.answer[0].text.lower()
    assert "buprenorphine and methadone" in lead and "not approved" in lead
    trial = faq.answer[1].text
    assert trial.index("buprenorphine") < trial.index("tramadol", trial.index("buprenorphine"))
    assert "not clearly worse" not in answer_text("does_it_help")


def test_tramadol_page_puts_the_guideline_first() -> None:
    section = default_kb().patient_info["en"].section("tramadol")
    assert section is not None
    assert all(words in section.intro.lower() for words in NEVER_ALONE)
    first = section.points[0].text
    assert first.startswith(LEAD) and "buprenorphine or methadone" in first
    assert not any("tramadol" in p.text.lower() and "finished" in p.text for p in section.points[:2])


def test_interactions_answer() -> None:
    text = answer_text("interactions").lower()
    for words in ("maoi", "14 days", "linezolid", "serotonin syndrome", "medicines for depression", "benzodiazepines",
                  "alcohol", "can kill", "seizures"):
        assert words in text, words


def test_how_quickly_answer_uses_label_numbers_only() -> None:
    faq = next(f for f in default_kb().patient_info["en"].faqs if f.id == "how_quickly")
    text = answer_text("how_quickly").lower()
    for words in ("within about an hour", "about 2 hours", "about 3 hours", "cyp2d6"):
        assert words in text, words
    timing = next(p for p in faq.answer if "within about an hour" in p.text)
    assert set(timing.sources) <= {s for s in default_kb().sources if s.startswith("pk_")}


def test_long_term_answer() -> None:
    text = answer_text("long_term").lower()
    assert "not a maintenance treatment" in text
    for drug in ("buprenorphine", "methadone", "naltrexone"):
        assert drug in text
    assert "1-800-662-help" in text and "findtreatment.gov" in text


def test_who_should_not_answer() -> None:
    text = answer_text("who_should_not").lower()
    for words in ("pregnan", "breastfeeding", "under 12", "under 18", "tonsils", "over 75", "kidney", "liver",
                  "seizure", "988"):
        assert words in text, words


def test_dependence_answer() -> None:
    text = answer_text("dependence").lower()
    for words in ("dependence", "addiction", "withdrawal", "schedule iv"):
        assert words in text, words


def test_a_lead_without_the_clinician_is_refused(tmp_path: Path) -> None:
    def change(raw: Any) -> None:
        raw["faqs"][1]["answer"][0]["text"] = "Guideline answer: tramadol mixes badly with many medicines."

    with pytest.raises(KnowledgeBaseError, match="interactions"):
        load_kb(kb_with(tmp_path, "patient_info.yaml", change))


def test_web_sources_are_public_and_in_the_kb() -> None:
    kb = default_kb()
    web = [s for s in kb.sources if s.startswith("web_")]
    assert len(web) >= 4
    for sid in web:
        host = urlsplit(kb.sources[sid].link).hostname or ""
        assert kb.sources[sid].link.startswith("https://") and host.endswith(".gov"), sid


def test_no_private_treatment_centre_among_the_sources() -> None:
    for sid, source in default_kb().sources.items():
        host = urlsplit(source.link).hostname or ""
        assert not any(d in source.link for d in PRIVATE_DOMAINS), sid
        assert not PRIVATE_HOST.search(host), (sid, host)
        assert "treatment provider" not in source.organisation.lower(), sid


def test_only_public_phone_numbers() -> None:
    info = default_kb().patient_info["en"]
    text = " ".join(p.text for _, p in info.paragraphs())
    assert set(PHONE.findall(text)) <= {"800-662-4357"}
    assert "1-800-662-HELP" in text and "FindTreatment.gov" in text


def test_risks_cover_what_the_issue_asks() -> None:
    info = default_kb().patient_info["en"]
    risks = " ".join(p.text for p in info.section("risks").points).lower()  # type: ignore[union-attr]
    for word in ("seizure", "serotonin syndrome", "addict", "alcohol", "benzodiazepines"):
        assert word in risks


# --- the rendered pages (in-process app, no browser) ----------------------------------------


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from fastapi.testclient import TestClient

    from withdrawal.app import create_app
    from withdrawal.service import Settings

    app = create_app(Settings(environment="test", data_dir=tmp_path_factory.mktemp("web-content")))
    with TestClient(app) as client:
        got: dict[str, str] = {}
        for url in PUBLIC_PAGES:
            r = client.get(url)
            assert r.status_code == 200, url
            got[url] = r.text
        yield got


def links(html: str) -> set[str]:
    return set(re.findall(r'href="(https?://[^"]+)"', html))


def test_rendered_patient_pages_have_no_private_domain_or_number(pages: dict[str, Any]) -> None:
    allowed = {s.link for s in default_kb().sources.values()} | {r.url for r in default_kb().care.resources if r.url}
    for url, html in pages.items():
        low = html.lower()
        assert not any(d in low for d in PRIVATE_DOMAINS), url
        assert not re.search(r"866\D?303\D?3480", html), url
        for link in links(html):
            assert link.replace("&amp;", "&") in allowed, (url, link)
            assert not PRIVATE_HOST.search(urlsplit(link).hostname or ""), (url, link)
        assert "1-800-662" in html and "988" in html and "911" in html, url


def test_rendered_questions_page_answers_every_question(pages: dict[str, Any]) -> None:
    html = pages["/info/questions"]
    for f in default_kb().patient_info["en"].faqs:
        assert f'id="faq-{f.id}"' in html, f.id
        assert f.question in html.replace("&#39;", "'"), f.id
    assert html.count(f"<strong>{LEAD}</strong>") == len(QUESTIONS)
    assert "Does Tramadol Help With Heroin Withdrawal" not in html  # no trace of the private article
