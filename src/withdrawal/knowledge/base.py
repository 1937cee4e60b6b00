"""Building blocks of the knowledge base: the source registry and cited entries.

Every clinical entry in the knowledge base inherits :class:`Cited`: it names at
least one source from the registry and says how well it was verified, using
the marks of the research notes it was taken from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from withdrawal.errors import KnowledgeBaseError

DATA_PACKAGE = "withdrawal.knowledge"

M = TypeVar("M", bound=BaseModel)

Verification = Literal["verified", "verified_secondary", "from_memory"]
"""How well a fact was checked.

``verified``: read in the primary source (label, guideline, official form, code system).
``verified_secondary``: read in a source that quotes or reproduces the primary one.
``from_memory``: believed correct but the source was not read; shown as uncertain.
"""


Trust = Literal["primary", "secondary", "low"]
"""How far a source is trusted, most first."""


class Frozen(BaseModel):
    """Immutable model that rejects unknown keys, so typos in data files fail loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(Frozen):
    """One citable document: a label, guideline, paper, code system or web page."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    organisation: str
    year: int | None = None
    url: str | None = None
    dailymed_setid: str | None = None
    kind: Literal["label", "guideline", "paper", "code_system", "form", "website", "code", "dataset"]
    trust: Trust = "primary"
    note: str | None = None

    @model_validator(mode="after")
    def _locatable(self) -> Source:
        if not (self.url or self.dailymed_setid):
            raise ValueError(f"source {self.id!r} needs a url or a dailymed_setid")
        return self

    @property
    def link(self) -> str:
        """A URL a reader can open."""
        if self.url:
            return self.url
        return f"https://dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?setid={self.dailymed_setid}"


class Cited(Frozen):
    """An entry that traces to at least one registered source."""

    sources: tuple[str, ...] = Field(min_length=1)
    verification: Verification


def data_dir() -> Path:
    """Directory of the packaged knowledge-base files."""
    return Path(str(resources.files(DATA_PACKAGE) / "data"))


# libyaml's safe loader parses the knowledge base about ten times faster than pure Python.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """Parse one YAML data file, naming the file in any error."""
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_LOADER)  # noqa: S506  (a safe loader)
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeBaseError(f"{path.name}: cannot read: {exc}") from exc


def validate(model: type[M], raw: Any, where: str) -> M:
    """Validate raw data against a model, turning errors into KnowledgeBaseError."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeBaseError(f"{where}: {exc}") from exc


class SourceRegistry(Frozen):
    sources: tuple[Source, ...]

    def by_id(self) -> dict[str, Source]:
        return {s.id: s for s in self.sources}


def check_citations(entries: Iterable[tuple[str, Cited]], sources: Mapping[str, Source], where: str) -> None:
    """Fail when an entry cites a source id that is not registered."""
    for name, entry in entries:
        for sid in entry.sources:
            if sid not in sources:
                raise KnowledgeBaseError(f"{where}: {name} cites unknown source {sid!r}")
