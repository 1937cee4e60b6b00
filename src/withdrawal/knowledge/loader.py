"""Load the one knowledge base: every file its manifest names, under one version, checked whole.

The loader refuses to return a knowledge base in which any entry lacks a source, cites an
unregistered source, or refers to a drug, class, condition, trial or setting that is not
defined, or whose folder holds a data file the manifest does not name: a half-valid knowledge
base is worse than none, and the service loads it before it serves (a bad file stops it there,
not at the bedside).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import (
    Cited,
    Frozen,
    Source,
    SourceRegistry,
    check_citations,
    data_dir,
    read_yaml,
    validate,
)
from withdrawal.knowledge.evidence import SummaryData, TrialBase, check_summary, check_trial_base
from withdrawal.knowledge.kb import KnowledgeBase, Resolved, ResolvedCondition, normalise_name
from withdrawal.knowledge.models import (
    BuprenorphinePathway,
    Care,
    Condition,
    Drug,
    DrugClass,
    Match,
    Scale,
    TramadolRules,
    Vocabulary,
)
from withdrawal.knowledge.monitoring import MonitoringRules, check_monitoring
from withdrawal.knowledge.patient_info import PatientInfo, check_patient_info, check_translation
from withdrawal.knowledge.pk import TramadolData
from withdrawal.knowledge.population import FlagFile, MmeTable, check_flags, check_mme

__all__ = ["KnowledgeBase", "Manifest", "Resolved", "ResolvedCondition", "default_kb", "load_kb"]

M = TypeVar("M", bound=BaseModel)
INCOMPLETE_SCREEN = "incomplete_screen"
"""The rule that names what the screen could not resolve; the CDS card of an unidentified order says it too."""
OPIOID_USE = "opioid_use"
"""The condition group of the patients the withdrawal decision support is for (the CDS patient-view services)."""


class ManifestFiles(Frozen):
    """Every part of the knowledge base and its file (relative to the data folder)."""

    vocabulary: str
    tramadol: str
    cows: str
    sows: str
    care: str
    pathway: str
    pk: str
    mme: str
    population_flags: str
    monitoring: str
    trials: str
    evidence_summary: str
    patient_info_en: str
    patient_info_es: str


class Manifest(Frozen):
    """``manifest.yaml``: the one version, the source registries and the part files."""

    version: str = Field(pattern=r"^[0-9]{4}\.[0-9]{2}\.[0-9]{2}(\.[0-9]+)?$")
    sources: tuple[str, ...] = Field(min_length=1)
    files: ManifestFiles

    def names(self) -> set[str]:
        return {*self.sources, *self.files.model_dump().values()}

def _cited_entries(kb_parts: Iterable[tuple[str, Iterable[object]]]) -> list[tuple[str, Cited]]:
    out: list[tuple[str, Cited]] = []
    for where, items in kb_parts:
        for item in items:
            if isinstance(item, Cited):
                name = getattr(item, "id", None) or getattr(item, "key", None) or where
                out.append((f"{where}:{name}", item))
    return out


def _check_matches(
    matches: Iterable[Match],
    where: str,
    drugs: Mapping[str, Drug],
    classes: Mapping[str, DrugClass],
    conditions: Mapping[str, Condition],
) -> None:
    for m in matches:
        for d in (*m.drugs_any, *m.allergy_drugs_any):
            if d not in drugs:
                raise KnowledgeBaseError(f"{where}: unknown drug {d!r}")
        for c in m.drug_classes_any:
            if c not in classes:
                raise KnowledgeBaseError(f"{where}: unknown drug class {c!r}")
        for k in m.conditions_any:
            if k not in conditions:
                raise KnowledgeBaseError(f"{where}: unknown condition {k!r}")


def _index_names(drugs: Iterable[Drug]) -> dict[str, tuple[str, ...]]:
    names: dict[str, list[str]] = defaultdict(list)
    for d in drugs:
        for n in {d.id.replace("_", " "), d.name, *d.synonyms, *d.brands}:
            key = normalise_name(n)
            if d.id not in names[key]:
                names[key].append(d.id)
    return {k: tuple(v) for k, v in names.items()}


def _index_conditions(conditions: Iterable[Condition]) -> dict[str, str]:
    codes: dict[str, str] = {}
    for c in conditions:
        for icd in c.icd10cm:
            codes[icd.upper()] = c.key
            codes["ICD:" + icd.upper().replace(".", "")] = c.key
        for sct in c.snomed:
            codes[sct] = c.key
            codes["SCT:" + sct] = c.key
        for pcs in c.icd10pcs:
            codes["PCS:" + pcs.upper()] = c.key
        for word in (c.label, *c.synonyms):
            codes["TXT:" + normalise_name(word)] = c.key
    return codes


def _sources(directory: Path, names: Iterable[str]) -> dict[str, Source]:
    """Every registry merged; a duplicate id is an error."""
    merged: dict[str, Source] = {}
    for name in names:
        for source in validate(SourceRegistry, read_yaml(directory / name), name).sources:
            if source.id in merged:
                raise KnowledgeBaseError(f"{name}: duplicate source id {source.id!r}")
            merged[source.id] = source
    return merged


def read_manifest(directory: Path) -> Manifest:
    """The manifest, and no data file in the folder that it does not name."""
    manifest = validate(Manifest, read_yaml(directory / "manifest.yaml"), "manifest.yaml")
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*.yaml")} - {"manifest.yaml"}
    if stray := sorted(present - manifest.names()):
        raise KnowledgeBaseError(f"manifest.yaml: data files not in the manifest (nothing would load or check "
                                 f"them): {stray}")
    return manifest


def load_kb(directory: Path | None = None) -> KnowledgeBase:
    """Read, validate and cross-check every knowledge-base file the manifest names."""
    directory = directory or data_dir()
    manifest = read_manifest(directory)
    files = manifest.files

    def part(model: type[M], name: str) -> M:
        return validate(model, read_yaml(directory / name), name)

    sources = _sources(directory, manifest.sources)
    vocab = part(Vocabulary, files.vocabulary)
    rules = part(TramadolRules, files.tramadol)
    care = part(Care, files.care)
    pathway = part(BuprenorphinePathway, files.pathway)
    scales: dict[str, Scale] = {s.id: s for s in (part(Scale, files.cows), part(Scale, files.sows))}
    pk = part(TramadolData, files.pk)
    mme = part(MmeTable, files.mme)
    flags = part(FlagFile, files.population_flags).to_flags()
    monitoring = part(MonitoringRules, files.monitoring)
    trials = part(TrialBase, files.trials)
    summary = part(SummaryData, files.evidence_summary)
    info = {"en": part(PatientInfo, files.patient_info_en), "es": part(PatientInfo, files.patient_info_es)}
    for lang, content in info.items():
        if content.lang != lang:
            raise KnowledgeBaseError(f"patient_info_{lang}: the file says lang {content.lang!r}")

    drugs = {d.id: d for d in vocab.drugs}
    classes = {c.id: c for c in vocab.classes}
    conditions = {c.key: c for c in vocab.conditions}
    for d in vocab.drugs:
        for c in d.classes:
            if c not in classes:
                raise KnowledgeBaseError(f"vocabulary.yaml: drug {d.id} has unknown class {c!r}")
    groups = {g.id: frozenset(g.conditions) for g in vocab.condition_groups}
    if len(groups) != len(vocab.condition_groups) or OPIOID_USE not in groups:
        raise KnowledgeBaseError(f"vocabulary.yaml: condition_groups need {OPIOID_USE!r}, and each id once")
    for g in vocab.condition_groups:
        if unknown := [k for k in g.conditions if k not in conditions]:
            raise KnowledgeBaseError(f"vocabulary.yaml: condition group {g.id} names unknown {unknown}")
    for r in rules.rules:
        _check_matches(r.when, f"tramadol.yaml: rule {r.id}", drugs, classes, conditions)
    if not any(r.id == INCOMPLETE_SCREEN and any(m.unresolved for m in r.when) for r in rules.rules):
        raise KnowledgeBaseError(f"tramadol.yaml: no rule {INCOMPLETE_SCREEN!r} on unresolved items (an incomplete "
                                 "screen would read clean, and an unidentified order would have no card text)")
    for release in ("immediate", "extended"):
        if not any(not lim.when and lim.interval_h and lim.release == release for lim in rules.dose_limits):
            raise KnowledgeBaseError(f"tramadol.yaml: no unconditional {release}-release dose limit with an interval_h")
    for lim in rules.dose_limits:
        _check_matches(lim.when, f"tramadol.yaml: dose limit {lim.id}", drugs, classes, conditions)
    for pair in rules.pair_interactions:
        for ref in (*pair.first, *pair.second):
            if ref not in classes and ref not in drugs:
                raise KnowledgeBaseError(f"tramadol.yaml: pair {pair.id} names unknown {ref!r}")
    for note in care.option_notes:
        _check_matches(note.when, f"care.yaml: option note {note.id}", drugs, classes, conditions)
    for orule in care.option_rules:
        _check_matches(orule.when, f"care.yaml: option rule {orule.id}", drugs, classes, conditions)
    for adj in care.adjuncts:
        if adj.drug not in drugs:
            raise KnowledgeBaseError(f"care.yaml: adjunct {adj.id} names unknown drug {adj.drug!r}")
    adjunct_ids = {a.id for a in care.adjuncts}
    for arule in care.adjunct_rules:
        _check_matches(arule.when, f"care.yaml: adjunct rule {arule.id}", drugs, classes, conditions)
        for a in arule.adjuncts:
            if a not in adjunct_ids:
                raise KnowledgeBaseError(f"care.yaml: adjunct rule {arule.id} names unknown adjunct {a!r}")
    for res in care.resources:
        for k in res.first_when_conditions:
            if k not in conditions:
                raise KnowledgeBaseError(f"care.yaml: resource {res.id} names unknown {k!r}")

    _check_pathway(pathway, care)
    parts: list[tuple[str, Iterable[object]]] = [
        ("vocabulary.classes", vocab.classes),
        ("vocabulary.drugs", vocab.drugs),
        ("vocabulary.conditions", vocab.conditions),
        ("tramadol.rules", rules.rules),
        ("tramadol.dose_limits", rules.dose_limits),
        ("tramadol.pair_interactions", rules.pair_interactions),
        ("tramadol.off_label", [rules.off_label_statement]),
        ("care.tramadol_taper", [care.tramadol_taper]),
        ("care.timelines", care.timelines),
        ("care.treatments", care.treatments),
        ("care.option_notes", care.option_notes),
        ("care.option_rules", care.option_rules),
        ("care.adjunct_rules", care.adjunct_rules),
        ("vocabulary.condition_scope", vocab.condition_scope),
        ("vocabulary.condition_groups", vocab.condition_groups),
        ("care.adjuncts", care.adjuncts),
        ("care.resources", care.resources),
        ("care.monitoring", care.monitoring),
        ("care.evidence_summary", care.evidence_summary),
        ("care.statements", care.statements),
        *_pathway_parts(pathway),
    ]
    for scale in scales.values():
        parts += [(f"{scale.id}", [scale]), (f"{scale.id}.items", scale.items)]
        parts += [(f"{scale.id}.bands", scale.bands)]
    check_citations(_cited_entries(parts), sources, "knowledge base")

    members: dict[str, set[str]] = defaultdict(set)
    for d in vocab.drugs:
        for c in d.classes:
            members[c].add(d.id)
    interactions_of = {
        d.id: tuple(
            r
            for r in rules.rules
            if any(d.id in m.drugs_any or any(c in m.drug_classes_any for c in d.classes) for m in r.when)
        )
        for d in vocab.drugs
    }
    kb = KnowledgeBase(
        version=manifest.version,
        sources=sources,
        vocabulary=vocab,
        tramadol=rules,
        scales=scales,
        care=care,
        drugs=drugs,
        classes=classes,
        conditions=conditions,
        drug_names=_index_names(vocab.drugs),
        drug_rxcui={d.rxcui: d.id for d in vocab.drugs if d.rxcui},
        condition_codes=_index_conditions(vocab.conditions),
        condition_groups=groups,
        drug_class_members={k: frozenset(v) for k, v in members.items()},
        tramadol_interactions_of=interactions_of,
        pathway=pathway,
        pk=pk,
        mme=mme,
        population_flags=flags,
        monitoring=monitoring,
        trials=trials,
        evidence_summary=summary,
        patient_info=info,
        washout_days=max(
            (m.stopped_within_days or 0 for when in _rule_matches(rules, care) for m in when), default=0
        ),
    )
    check_citations(pk.cited_entries(), sources, files.pk)
    check_mme(mme, kb, files.mme)
    check_flags(flags, kb)
    check_monitoring(monitoring, sources, files.monitoring)
    check_trial_base(trials, sources, files.trials)
    check_summary(summary, trials, sources, files.evidence_summary)
    for lang, content in info.items():
        check_patient_info(content, sources, getattr(files, f"patient_info_{lang}"))
    check_translation(info["en"], info["es"], files.patient_info_es)
    return kb


def _check_pathway(pathway: BuprenorphinePathway, care: Care) -> None:
    """The standard start's COWS threshold is the buprenorphine option's own (one number, one place)."""
    standard = next(s for s in pathway.starts if s.id == "standard")
    bup = next((t for t in care.treatments if t.id == "buprenorphine"), None)
    if bup is None or standard.cows_min != bup.start_cows_min:
        raise KnowledgeBaseError(
            f"pathway.yaml: standard start cows_min {standard.cows_min} differs from care.yaml buprenorphine "
            f"start_cows_min {bup.start_cows_min if bup else None}"
        )
    step_ids = [s.id for s in (*pathway.precipitated_withdrawal, *pathway.handoff)]
    step_ids += [s.id for st in pathway.starts for s in st.steps] + [r.id for r in pathway.rechecks]
    if len(set(step_ids)) != len(step_ids):
        raise KnowledgeBaseError("pathway.yaml: duplicate step ids")


def _pathway_parts(pathway: BuprenorphinePathway) -> list[tuple[str, Iterable[object]]]:
    return [
        ("pathway.low_dose_first", [pathway.low_dose_first]),
        ("pathway.starts", pathway.starts),
        *((f"pathway.{s.id}.steps", s.steps) for s in pathway.starts),
        *((f"pathway.{s.id}.schedules", s.schedules) for s in pathway.starts),
        ("pathway.rechecks", pathway.rechecks),
        ("pathway.precipitated_withdrawal", pathway.precipitated_withdrawal),
        ("pathway.handoff", pathway.handoff),
        ("pathway.chart_note_footer", [pathway.chart_note_footer]),
    ]


def _rule_matches(rules: TramadolRules, care: Care) -> Iterable[tuple[Match, ...]]:
    yield from (r.when for r in rules.rules)
    yield from (r.when for r in care.option_rules)


@cache
def default_kb() -> KnowledgeBase:
    """The packaged knowledge base, loaded and checked once per process."""
    return load_kb()
