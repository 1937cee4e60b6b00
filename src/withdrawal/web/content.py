"""Plain-language patient and family content (``knowledge/data/patient_info.yaml``), validated and cited."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from withdrawal.knowledge.base import (
    Cited,
    Frozen,
    Source,
    check_citations,
    data_dir,
    default_sources,
    read_yaml,
    validate,
)

FILE = "patient_info.yaml"

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
FILES = {"en": FILE, "es": "patient_info.es.yaml"}
"""The Spanish content (issue 17): the same pages, paragraphs, sources and verification marks as the English."""


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
    kb_version: str
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


def load_patient_info(path: Path | None = None, sources: Mapping[str, Source] | None = None) -> PatientInfo:
    """Load and check the file: schema, unique ids and that every cited source exists."""
    path = path or data_dir() / FILE
    info = validate(PatientInfo, read_yaml(path), path.name)
    sources = sources if sources is not None else default_sources()
    check_citations(info.paragraphs(), sources, path.name)
    for kind, ids in (("section", [s.id for s in info.sections]), ("faq", [f.id for f in info.faqs])):
        if len(set(ids)) != len(ids):
            from withdrawal.errors import KnowledgeBaseError

            raise KnowledgeBaseError(f"{path.name}: duplicate {kind} id")
    return info


def check_translation(english: PatientInfo, other: PatientInfo) -> None:
    """A translation has the English pages and paragraphs in the same order, each with the same sources and
    verification mark (a clinical statement keeps its sources; nothing is added or left out)."""
    from withdrawal.errors import KnowledgeBaseError

    def shape(info: PatientInfo) -> list[tuple[str, tuple[str, ...], str]]:
        return [(where, tuple(p.sources), p.verification) for where, p in info.paragraphs()]

    if shape(english) != shape(other) or english.kb_version != other.kb_version:
        mine, theirs = shape(english), shape(other)
        diff = next((f"{a} != {b}" for a, b in zip(mine, theirs, strict=False) if a != b),
                    f"{len(mine)} paragraphs != {len(theirs)}")
        raise KnowledgeBaseError(f"{FILES[other.lang]}: not the English content's paragraphs and sources: {diff}")


@cache
def patient_info(lang: str = "en") -> PatientInfo:
    """The packaged content in ``lang`` (en, es), loaded once; a translation is checked against the English."""
    if lang == "en":
        return load_patient_info()
    info = load_patient_info(data_dir() / FILES[lang])
    check_translation(patient_info("en"), info)
    return info
