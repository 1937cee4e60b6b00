"""Plain-language patient and family content (``knowledge/data/patient_info.yaml``), validated and cited."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

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
        """The first paragraph split into its label (``LEAD``) and the guideline answer after it."""
        return LEAD, self.answer[0].text.removeprefix(LEAD)


class PatientInfo(Frozen):
    kb_version: str
    sections: tuple[Section, ...] = Field(min_length=1)
    faq_intro: Paragraph
    faqs: tuple[Faq, ...] = Field(min_length=len(QUESTIONS), max_length=len(QUESTIONS))

    @model_validator(mode="after")
    def _questions_answered_guideline_first(self) -> PatientInfo:
        ids = tuple(f.id for f in self.faqs)
        if ids != QUESTIONS:
            raise ValueError(f"faqs must be {QUESTIONS}, in that order, not {ids}")
        for f in self.faqs:
            lead = f.answer[0].text
            if not lead.startswith(LEAD) or not all(w in lead.lower() for w in NEVER_ALONE):
                raise ValueError(f"faq {f.id!r}: the first paragraph must start {LEAD!r} and say {NEVER_ALONE}")
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


@cache
def patient_info() -> PatientInfo:
    """The packaged content, loaded once."""
    return load_patient_info()
