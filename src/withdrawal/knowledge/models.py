"""Schemas of the knowledge-base files.

Each file under ``knowledge/data`` is validated against one of these models at
load time; unknown keys, missing sources and bad cross-references are errors.
Units live in field names (``_h``, ``_days``, ``_mg``, ``_ml_min``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from withdrawal.knowledge.base import Cited, Frozen

Level = Literal["acceptable", "caution", "avoid", "contraindicated"]
LEVELS: tuple[Level, ...] = ("acceptable", "caution", "avoid", "contraindicated")
Phenotype = Literal["poor", "intermediate", "normal", "ultrarapid"]
Sex = Literal["female", "male", "other", "unknown"]
Setting = Literal["inpatient", "outpatient"]
ChildPugh = Literal["A", "B", "C"]
Substance = Literal[
    "heroin",
    "fentanyl",
    "methadone",
    "buprenorphine",
    "oxycodone",
    "morphine",
    "hydrocodone",
    "codeine",
    "tramadol",
    "other",
]


# --- vocabulary -------------------------------------------------------------------------


class DrugClass(Cited):
    """A pharmacological or interaction class used by the rules."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    description: str


class Drug(Cited):
    """One ingredient; brand names of combination products appear under each ingredient."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    synonyms: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    rxcui: str | None = Field(default=None, pattern=r"^[0-9]+$")
    atc: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    code_note: str | None = None


class Condition(Cited):
    """A condition key of the patient format with the codes that map onto it."""

    key: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    synonyms: tuple[str, ...] = ()
    """Plain clinical words a clinician types for it ("epilepsy", "seizures")."""
    icd10cm: tuple[Annotated[str, Field(pattern=r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")], ...] = ()
    """ICD-10-CM codes as written (dot after the category), at most 7 characters without the dot."""
    snomed: tuple[str, ...] = ()
    icd10pcs: tuple[str, ...] = ()
    """Procedure codes (ICD-10-PCS, as prefixes) that record it, e.g. a tonsillectomy."""


class ScreenScope(Cited):
    """A family of condition codes the screen looks at: an unknown code inside it leaves the screen incomplete.

    Outside every scope entry an unknown code (hypertension, a social-history finding) is listed as
    out of scope without raising, so that clean EHR patients stay clean.
    """

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    icd10cm_prefixes: tuple[str, ...] = ()
    icd10cm_excluded_prefixes: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()
    reason: str


class ConditionGroup(Cited):
    """Conditions the software treats alike, by one name (``opioid_use``: the patients the withdrawal
    decision support is for)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    conditions: tuple[str, ...] = Field(min_length=1)
    description: str


class Vocabulary(Frozen):
    classes: tuple[DrugClass, ...]
    drugs: tuple[Drug, ...]
    conditions: tuple[Condition, ...]
    condition_scope: tuple[ScreenScope, ...] = ()
    condition_groups: tuple[ConditionGroup, ...] = ()
    product_words: tuple[str, ...] = ()
    """Words of a product's name that are not an ingredient (dose forms, salts, release, units):
    any other word left over beside a known ingredient means part of the name was not screened."""


# --- tramadol rules ---------------------------------------------------------------------


class Match(Frozen):
    """A conjunction of patient facts; a rule fires when any of its matches holds.

    Unset fields are not tested. ``stopped_within_days`` widens the drug tests to
    medications stopped no more than that many days ago (the MAOI 14-day rule).
    """

    age_below: int | None = None
    age_above: int | None = None
    age_at_least: int | None = None
    pregnant: bool | None = None
    breastfeeding: bool | None = None
    conditions_any: tuple[str, ...] = ()
    drugs_any: tuple[str, ...] = ()
    drug_classes_any: tuple[str, ...] = ()
    stopped_within_days: int | None = Field(default=None, ge=0)
    allergy_drugs_any: tuple[str, ...] = ()
    cyp2d6_phenotype_in: tuple[Phenotype, ...] = ()
    crcl_below: float | None = None
    child_pugh_in: tuple[ChildPugh, ...] = ()
    substance_in: tuple[Substance, ...] = ()
    setting_in: tuple[Setting, ...] = ()
    before_withdrawal_onset: bool | None = None
    last_use_within_h: float | None = Field(default=None, gt=0)
    """The named substance was last used less than this many hours ago (unknown hours: the strict reading, yes)."""
    unresolved: bool | None = None
    """True: some medication, allergy or in-scope condition could not be resolved (incomplete screen)."""
    gestational_weeks_at_least: float | None = Field(default=None, ge=0)
    """Pregnant and at least this many weeks, or pregnant with no gestational age (the strict reading)."""

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not self.model_dump(exclude_defaults=True):
            raise ValueError("a match must test at least one fact")
        return self


class Rule(Cited):
    """One reason against (or for care with) tramadol, with what to do about it."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    code: str = Field(pattern=r"^[a-z0-9_]+$")
    level: Level
    category: Literal["contraindication", "warning", "interaction", "population", "pharmacogenomic", "completeness"]
    when: tuple[Match, ...] = Field(min_length=1)
    message: str
    action: str


class DoseLimit(Cited):
    """A ceiling on the daily dose of one product form; the lowest applicable one wins.

    ``release``: the immediate-release (default) or extended-release products. ``max_daily_mg`` 0 says
    the form is not for the patient at all (only for extended release, where the labels say so)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    max_daily_mg: int = Field(ge=0)
    interval_h: int | None = None
    reason: str
    when: tuple[Match, ...] = ()
    release: Literal["immediate", "extended"] = "immediate"

    @model_validator(mode="after")
    def _zero_only_for_extended(self) -> DoseLimit:
        if self.max_daily_mg == 0 and self.release != "extended":
            raise ValueError(f"dose limit {self.id}: max_daily_mg 0 (not for this patient) only for extended release")
        return self


class PairInteraction(Cited):
    """An interaction between two non-tramadol drug classes the checker also reports."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    first: tuple[str, ...]
    second: tuple[str, ...]
    severity: str
    effect: str
    management: str


class Statement(Cited):
    """A sentence the software says, with its sources."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    text: str


class TramadolRules(Frozen):
    off_label_statement: Statement
    verdict_headings: dict[Level, str]
    """What each verdict level means for the prescriber, as the pages' headline says it."""
    rules: tuple[Rule, ...]
    dose_limits: tuple[DoseLimit, ...]
    pair_interactions: tuple[PairInteraction, ...] = ()

    @model_validator(mode="after")
    def _every_level_headed(self) -> TramadolRules:
        missing = [lv for lv in LEVELS if not self.verdict_headings.get(lv, "").strip()]
        if missing:
            raise ValueError(f"verdict_headings: no heading for {', '.join(missing)} (needed: {', '.join(LEVELS)})")
        return self


# --- scales -----------------------------------------------------------------------------


class ScaleOption(Frozen):
    score: int = Field(ge=0)
    anchor: str


class ScaleItem(Cited):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    number: int = Field(ge=1)
    label: str
    instruction: str = ""
    options: tuple[ScaleOption, ...] = Field(min_length=2)

    @property
    def allowed_scores(self) -> tuple[int, ...]:
        return tuple(o.score for o in self.options)


class Band(Cited):
    key: str = Field(pattern=r"^[a-z_]+$")
    label: str
    min: int
    max: int


class Scale(Cited):
    id: Literal["cows", "sows"]
    name: str
    citation: str
    administration: str
    total_min: int
    total_max: int
    items: tuple[ScaleItem, ...]
    bands: tuple[Band, ...] = ()
    bands_note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Scale:
        ids = [i.id for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.id}: duplicate item ids")
        if sum(max(i.allowed_scores) for i in self.items) != self.total_max:
            raise ValueError(f"{self.id}: item maxima do not add up to total_max")
        if self.bands:
            edges = sorted((b.min, b.max) for b in self.bands)
            if edges[0][0] != self.total_min or edges[-1][1] != self.total_max:
                raise ValueError(f"{self.id}: bands do not cover the total range")
            for (_, hi), (lo, _) in zip(edges, edges[1:], strict=False):
                if lo != hi + 1:
                    raise ValueError(f"{self.id}: bands leave a gap or overlap at {hi}")
        return self


# --- course, treatments, resources ------------------------------------------------------


class Range(Frozen):
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError("range low exceeds high")
        return self


class Timeline(Cited):
    """Expected course of withdrawal after the last use of one opioid."""

    substance: Substance
    acting: Literal["short", "long", "unknown"]
    onset_h: Range | None = None
    peak_h: Range | None = None
    duration_days: Range | None = None
    buprenorphine_wait_h: Range | None = None
    note: str | None = None


class Treatment(Cited):
    """A management option the plan can rank."""

    id: TreatmentId
    name: str
    role: Literal["first_line", "alternative", "off_label", "supportive"]
    base_rank: int = Field(ge=1)
    summary: str
    dosing: str
    settings: tuple[Literal["inpatient", "outpatient", "otp"], ...] = ()
    drug: str | None = None
    route: str | None = None
    """How the drug is given, as an order states it (the CDS buprenorphine order's route)."""
    order_product: str | None = None
    """The product a draft order for this option names (the CDS suggestion that replaces a tramadol
    order with it: its label, action and medication text), under the option's sources."""
    cautions: tuple[str, ...] = ()
    start_cows_min: int | None = Field(default=None, ge=0, le=48)


TreatmentId = Literal["buprenorphine", "methadone", "lofexidine", "clonidine", "tramadol", "symptomatic"]


class OptionNote(Cited):
    """A patient-specific reason shown beside an option when its condition holds."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    treatments: tuple[TreatmentId, ...] = Field(min_length=1)
    when: tuple[Match, ...] = Field(min_length=1)
    text: str
    first: bool = False  # the option goes first (the patient already takes it)


class OptionRule(Cited):
    """A reason for care with (or, with ``exclude``, against) a management option for this patient.

    Findings on an option have the shape of the tramadol findings, so that every option is
    screened the way tramadol is.
    """

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    code: str = Field(pattern=r"^[a-z0-9_]+$")
    treatments: tuple[TreatmentId, ...] = Field(min_length=1)
    level: Level
    when: tuple[Match, ...] = Field(min_length=1)
    message: str
    action: str
    exclude: bool = False
    """The option is not offered at all (an antagonist blocks it, a label age limit)."""


class Adjunct(Cited):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    symptom: str
    drug: str
    dose: str


class AdjunctRule(Cited):
    """When a symptomatic adjunct does not fit the patient (``not_for_this_patient``) or needs care."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    adjuncts: tuple[str, ...] = Field(min_length=1)
    when: tuple[Match, ...] = Field(min_length=1)
    status: Literal["not_for_this_patient", "caution"]
    reason: str


class Resource(Cited):
    """A public crisis or referral resource; never a private centre."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    contact: str
    url: str | None = None
    description: str
    order: int
    first_when_conditions: tuple[str, ...] = ()


class TaperDesign(Cited):
    """Shape of the tramadol taper the plan proposes, and where each number comes from."""

    start_mg_per_day: int = Field(gt=0)
    days: int = Field(ge=1)
    hold_days: int = Field(ge=0)
    step_mg: int = Field(gt=0)
    max_single_dose_mg: int = Field(gt=0)
    note: str


class Care(Frozen):
    tramadol_taper: TaperDesign
    timelines: tuple[Timeline, ...]
    treatments: tuple[Treatment, ...]
    option_notes: tuple[OptionNote, ...]
    option_rules: tuple[OptionRule, ...] = ()
    adjuncts: tuple[Adjunct, ...]
    adjunct_rules: tuple[AdjunctRule, ...] = ()
    resources: tuple[Resource, ...]
    monitoring: tuple[Statement, ...]
    evidence_summary: tuple[Statement, ...]
    statements: tuple[Statement, ...]


# --- buprenorphine start pathway --------------------------------------------------------


class PathwayStep(Cited):
    """One instruction of the buprenorphine start pathway, with its sources."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    text: str
    after_start: bool = False
    """A hand-off step that only applies once buprenorphine has been started (a bridge prescription)."""


class ScheduleDay(Frozen):
    """One day of a published low-dose schedule, as the protocol's table writes it."""

    day: int = Field(ge=1)
    buprenorphine: str
    full_agonist: str


class DoseSchedule(Cited):
    """A day-by-day schedule copied from one published protocol (never composed here)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    setting: Literal["inpatient", "outpatient"]
    days: tuple[ScheduleDay, ...] = Field(min_length=1)
    note: str

    @model_validator(mode="after")
    def _consecutive(self) -> DoseSchedule:
        if [d.day for d in self.days] != list(range(1, len(self.days) + 1)):
            raise ValueError(f"schedule {self.id}: days must run 1, 2, 3 ... without gaps")
        return self


StartId = Literal["standard", "low_dose", "high_dose_ed"]


class StartMethod(Cited):
    """One way to start buprenorphine: when it fits, its steps and (low dose) its schedules."""

    id: StartId
    name: str
    summary: str
    cows_min: int | None = Field(default=None, ge=0, le=48)
    steps: tuple[PathwayStep, ...] = Field(min_length=1)
    schedules: tuple[DoseSchedule, ...] = ()


class Recheck(Cited):
    """A COWS recheck: when, and what to do with the score."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    when: str
    action: str
    timing_note: str | None = None
    """What an option's timing says when the score is below its start threshold (one recheck has it)."""


class LowDoseFirst(Cited):
    """Which opioids on board put the low-dose start first, and why."""

    substances: tuple[Substance, ...] = Field(min_length=1)
    still_taking: bool
    """A full agonist the patient still takes (no last-dose time) also puts it first."""
    reason: str
    timing_note: str
    """The sentence a buprenorphine option's timing ends with when the low-dose start comes first."""


class BuprenorphinePathway(Frozen):
    low_dose_first: LowDoseFirst
    starts: tuple[StartMethod, ...]
    rechecks: tuple[Recheck, ...] = Field(min_length=1)
    precipitated_withdrawal: tuple[PathwayStep, ...] = Field(min_length=1)
    handoff: tuple[PathwayStep, ...] = Field(min_length=1)
    chart_note_footer: PathwayStep

    @property
    def below_threshold(self) -> Recheck:
        """The recheck whose timing note an option's timing ends with below its COWS threshold."""
        return next(r for r in self.rechecks if r.timing_note)

    @model_validator(mode="after")
    def _every_start(self) -> BuprenorphinePathway:
        if sum(1 for r in self.rechecks if r.timing_note) != 1:
            raise ValueError("rechecks: exactly one needs a timing_note (what a timing says below the threshold)")
        ids = [s.id for s in self.starts]
        if sorted(ids) != sorted(("standard", "low_dose", "high_dose_ed")):
            raise ValueError(f"starts must be standard, low_dose and high_dose_ed once each, got {ids}")
        low = next(s for s in self.starts if s.id == "low_dose")
        if not low.schedules:
            raise ValueError("the low-dose start needs at least one published schedule")
        return self
