"""Plain-language patient and family content (``knowledge/data/patient_info.yaml``), validated and cited."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

from pydantic import Field

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


class PatientInfo(Frozen):
    kb_version: str
    sections: tuple[Section, ...] = Field(min_length=1)
    faq_intro: Paragraph
    faqs: tuple[Faq, ...] = Field(min_length=5, max_length=5)

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
