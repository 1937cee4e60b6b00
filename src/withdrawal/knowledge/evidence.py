"""Schemas of the tramadol trial base and the evidence summary, and their cross-checks.

Files: ``data/evidence/trials.yaml`` (studies and reviews) and ``data/evidence/summary.yaml``
(analyses to pool, what is not pooled, verdicts); sources in ``data/sources_evidence.yaml``.
Part of the one knowledge base (:func:`withdrawal.knowledge.loader.load_kb`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import Field

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import Cited, Frozen, Source, Verification, check_citations

Measure = Literal["RR", "OR", "RD", "MD", "SMD", "GEN"]
"""Effect measures (metafor's names); GEN: effect sizes and variances given as they are."""
Method = Literal["FE", "DL", "REML", "PM", "ML", "HE", "SJ"]
"""Estimators of the between-study variance tau^2 (metafor's names); FE: none (fixed effect)."""
Test = Literal["z", "knha"]
"""z, or Hartung-Knapp (knha)."""

Role = Literal["tramadol", "buprenorphine", "clonidine", "methadone", "placebo", "other"]


class Arm(Frozen):
    """One arm (or cohort) of a study, with counts only where the source gives them."""

    name: str
    role: Role
    n_randomised: int | None = Field(default=None, ge=1)
    n_completed: int | None = Field(default=None, ge=0)
    completed_pct: float | None = Field(default=None, ge=0, le=100)
    dose: str | None = None


class Trial(Cited):
    """One study of tramadol for opioid withdrawal, as reported."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    study: str
    design: str
    kind: Literal["rct", "observational", "laboratory"]
    setting: str | None
    country: str | None
    population: str
    duration: str | None
    arms: tuple[Arm, ...] = Field(min_length=1)
    completion_outcome: str | None
    outcomes: tuple[str, ...]
    adverse_events: tuple[str, ...]
    notes: str | None = None
    counts_verification: Verification | None = None

    def arm(self, role: Role) -> Arm:
        """The single arm with this role; KnowledgeBaseError if none or several."""
        found = [a for a in self.arms if a.role == role]
        if len(found) != 1:
            raise KnowledgeBaseError(f"trial {self.id}: {len(found)} arms with role {role!r}")
        return found[0]


class Review(Cited):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    findings: tuple[str, ...]


class TrialBase(Frozen):
    trials: tuple[Trial, ...]
    reviews: tuple[Review, ...]


GradeJudgement = Literal["not serious", "serious", "very serious", "not assessable"]
GRADE_DOWNGRADE: dict[str, int] = {"not serious": 0, "serious": 1, "very serious": 2,
                                   "not assessable": 0}
"""Levels rated down per judgement (GRADE: 1 for serious, 2 for very serious concerns)."""
CERTAINTY_LEVELS = ("high", "moderate", "low", "very low")
GRADE_DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision",
                 "publication_bias")


class GradeDomain(Cited):
    """One GRADE domain: the judgement and the reason for it, with its sources.

    ``not assessable`` (e.g. inconsistency with one trial, publication bias with fewer than 10)
    rates nothing down but is shown, so the reader sees what could not be checked.
    """

    judgement: GradeJudgement
    reason: str = Field(min_length=20)


class Grade(Cited):
    """Certainty of the evidence for one comparison and outcome, in GRADE's terms; its own
    sources are those of the method."""

    start: Literal["high", "low"] = "high"  # randomised trials start high
    risk_of_bias: GradeDomain
    inconsistency: GradeDomain
    indirectness: GradeDomain
    imprecision: GradeDomain
    publication_bias: GradeDomain

    def domains(self) -> tuple[tuple[str, GradeDomain], ...]:
        """The five domains in GRADE's order."""
        return tuple((name, getattr(self, name)) for name in GRADE_DOMAINS)

    @property
    def downgrades(self) -> int:
        """Levels rated down in all."""
        return sum(GRADE_DOWNGRADE[d.judgement] for _, d in self.domains())

    @property
    def certainty(self) -> str:
        """high, moderate, low or very low: the start level less the downgrades."""
        first = CERTAINTY_LEVELS.index(self.start)
        return CERTAINTY_LEVELS[min(first + self.downgrades, len(CERTAINTY_LEVELS) - 1)]


class Analysis(Cited):
    """A comparison we pool (or show as a single study when only one trial exists)."""

    id: str
    title: str
    comparator: Role
    outcome: str
    measure: Measure
    method: Method
    test: Test
    trials: tuple[str, ...] = Field(min_length=1)
    caveat: str
    grade: Grade


class NotPooled(Cited):
    id: str
    what: str
    reason: str


class Verdict(Cited):
    """A plain-language verdict on one of the article's claims."""

    id: str
    claim: str
    verdict: str
    statement: str


class SummaryData(Frozen):
    analyses: tuple[Analysis, ...]
    not_pooled: tuple[NotPooled, ...]
    verdicts: tuple[Verdict, ...]


def check_trial_base(base: TrialBase, sources: Mapping[str, Source], where: str) -> None:
    """Unique study ids, registered sources."""
    ids = [t.id for t in base.trials] + [r.id for r in base.reviews]
    if len(set(ids)) != len(ids):
        raise KnowledgeBaseError(f"{where}: duplicate study ids")
    entries = [(t.id, t) for t in base.trials] + [(r.id, r) for r in base.reviews]
    check_citations(entries, sources, where)


def check_summary(data: SummaryData, base: TrialBase, sources: Mapping[str, Source], where: str) -> None:
    """Registered sources; every analysed trial exists and has counts for both compared arms."""
    check_citations(iter_statements(data), sources, where)
    by_id = {t.id: t for t in base.trials}
    for analysis in data.analyses:
        for tid in analysis.trials:
            if tid not in by_id:
                raise KnowledgeBaseError(f"{where}: {analysis.id} names unknown trial {tid!r}")
            roles: tuple[Role, Role] = ("tramadol", analysis.comparator)
            for role in roles:
                arm = by_id[tid].arm(role)
                if arm.n_randomised is None or arm.n_completed is None:
                    raise KnowledgeBaseError(f"{where}: {analysis.id}: trial {tid} has no counts for {role}")


def iter_statements(data: SummaryData) -> Iterator[tuple[str, Cited]]:
    """Every cited statement of the summary, with its id."""
    yield from ((a.id, a) for a in data.analyses)
    for a in data.analyses:
        yield f"{a.id}.grade", a.grade
        yield from ((f"{a.id}.grade.{name}", d) for name, d in a.grade.domains())
    yield from ((n.id, n) for n in data.not_pooled)
    yield from ((v.id, v) for v in data.verdicts)
