"""Schema of the plain-language patient and family content (``data/patient_info.yaml`` and its Spanish
translation ``data/patient_info.es.yaml``), and the checks that keep a translation the English's twin.

Part of the one knowledge base (:func:`withdrawal.knowledge.loader.load_kb`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import Field, model_validator

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import Cited, Frozen, Source, check_citations

QUESTIONS = ("does_it_help", "interactions", "how_quickly", "long_term", "who_should_not", "dependence")
"""The questions page, in order: does tramadol help with heroin withdrawal, then the five questions
people ask about it (interactions, how quickly it works, long-term treatment, special populations,
dependence)."""

LEAD = "Guideline answer:"
NEVER_ALONE = ("never start or stop tramadol on your own", "talk to a clinician")
"""Every answer opens with the guideline answer and these words, before any nuance."""
LEADS = {"en": LEAD, "es": "Respuesta de las guías:"}
NEVER_ALONE_BY_LANG = {"en": NEVER_ALONE,
                       "es": ("nunca empiece ni deje el tramadol por su cuenta", "hable con un profesional de salud")}
LANGUAGES = ("en", "es")
"""English, and the Spanish content (issue 17): the same pages, paragraphs, sources and verification marks."""


class Paragraph(Cited):
    text: str = Field(min_length=1)


class Section(Frozen):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    intro: str
    points: tuple[Paragraph, ...] = Field(min_length=1)


class Faq(Frozen):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    question: str
    answer: tuple[Paragraph, ...] = Field(min_length=1)

    @property
    def lead(self) -> tuple[str, str]:
        """The first paragraph split into its label (``LEAD`` or its translation) and the guideline answer after it."""
        text = self.answer[0].text
        label = next((x for x in LEADS.values() if text.startswith(x)), LEAD)
        return label, text.removeprefix(label)


class PatientInfo(Frozen):
    lang: Literal["en", "es"] = "en"
    sections: tuple[Section, ...] = Field(min_length=1)
    faq_intro: Paragraph
    faqs: tuple[Faq, ...] = Field(min_length=len(QUESTIONS), max_length=len(QUESTIONS))

    @model_validator(mode="after")
    def _questions_answered_guideline_first(self) -> PatientInfo:
        ids = tuple(f.id for f in self.faqs)
        if ids != QUESTIONS:
            raise ValueError(f"faqs must be {QUESTIONS}, in that order, not {ids}")
        lead_label, never = LEADS[self.lang], NEVER_ALONE_BY_LANG[self.lang]
        for f in self.faqs:
            lead = f.answer[0].text
            if not lead.startswith(lead_label) or not all(w in lead.lower() for w in never):
                raise ValueError(f"faq {f.id!r}: the first paragraph must start {lead_label!r} and say {never}")
        return self

    def section(self, section_id: str) -> Section | None:
        return next((s for s in self.sections if s.id == section_id), None)

    def paragraphs(self) -> Iterator[tuple[str, Paragraph]]:
        yield "faq_intro", self.faq_intro
        for s in self.sections:
            for i, p in enumerate(s.points):
                yield f"{s.id}[{i}]", p
        for f in self.faqs:
            for i, p in enumerate(f.answer):
                yield f"faq.{f.id}[{i}]", p


def check_patient_info(info: PatientInfo, sources: Mapping[str, Source], where: str) -> None:
    """Unique section and question ids, registered sources."""
    check_citations(info.paragraphs(), sources, where)
    for kind, ids in (("section", [s.id for s in info.sections]), ("faq", [f.id for f in info.faqs])):
        if len(set(ids)) != len(ids):
            raise KnowledgeBaseError(f"{where}: duplicate {kind} id")


def check_translation(english: PatientInfo, other: PatientInfo, where: str) -> None:
    """A translation has the English pages and paragraphs in the same order, each with the same sources and
    verification mark (a clinical statement keeps its sources; nothing is added or left out)."""

    def shape(info: PatientInfo) -> list[tuple[str, tuple[str, ...], str]]:
        return [(at, tuple(p.sources), p.verification) for at, p in info.paragraphs()]

    mine, theirs = shape(english), shape(other)
    if mine != theirs:
        diff = next((f"{a} != {b}" for a, b in zip(mine, theirs, strict=False) if a != b),
                    f"{len(mine)} paragraphs != {len(theirs)}")
        raise KnowledgeBaseError(f"{where}: not the English content's paragraphs and sources: {diff}")
