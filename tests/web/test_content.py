"""The plain-language content: loads, five FAQs, every paragraph cited, public resources only."""

from __future__ import annotations

import re

from withdrawal.knowledge.base import default_sources
from withdrawal.knowledge.loader import default_kb
from withdrawal.web.content import patient_info

PHONE = re.compile(r"\b\d{3}[-. )]\d{3}[-. ]\d{4}\b")


def test_patient_info_loads_with_five_cited_faqs() -> None:
    info = patient_info()
    assert [f.id for f in info.faqs] == ["does_it_help", "how_it_works", "addictive", "side_effects",
                                          "treatment_options"]
    sources = default_sources()
    for _, p in info.paragraphs():
        assert p.sources and all(s in sources for s in p.sources)
    assert {s.id for s in info.sections} >= {"withdrawal", "self_care", "tramadol", "risks", "help_now"}


def test_web_sources_are_prefixed_and_in_the_kb() -> None:
    kb = default_kb()
    web = [s for s in kb.sources if s.startswith("web_")]
    assert len(web) >= 4
    for sid in web:
        assert kb.sources[sid].link.startswith("https://")


def test_only_public_phone_numbers() -> None:
    info = patient_info()
    text = " ".join(p.text for _, p in info.paragraphs())
    assert set(PHONE.findall(text)) <= {"800-662-4357"}
    assert "1-800-662-HELP" in text and "FindTreatment.gov" in text


def test_risks_cover_what_the_issue_asks() -> None:
    info = patient_info()
    risks = " ".join(p.text for p in info.section("risks").points).lower()  # type: ignore[union-attr]
    for word in ("seizure", "serotonin syndrome", "addict", "alcohol", "benzodiazepines"):
        assert word in risks
