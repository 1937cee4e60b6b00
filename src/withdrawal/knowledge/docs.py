"""Render the knowledge base as Markdown tables, so clinicians review tables, not YAML.

``python -m withdrawal.knowledge.docs > docs/knowledge.md`` regenerates the page; a test
fails when the committed page no longer matches the data.
"""

from __future__ import annotations

from collections.abc import Iterable

from withdrawal.knowledge.base import Cited
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.knowledge.models import Match


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _cites(entry: Cited) -> str:
    return ", ".join(entry.sources) + f" ({entry.verification})"


def _when(matches: Iterable[Match]) -> str:
    parts = []
    for m in matches:
        fields = m.model_dump(exclude_defaults=True)
        parts.append(" and ".join(f"{k}={v if not isinstance(v, tuple) else list(v)}" for k, v in fields.items()))
    return " or ".join(parts) or "always"


def _table(header: list[str], rows: Iterable[list[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out + [""]


def render(kb: KnowledgeBase) -> str:
    """The whole page."""
    t = kb.tramadol
    lines = [
        "# Knowledge base",
        "",
        f"Generated from the data files of knowledge-base version {kb.version} by",
        "`python -m withdrawal.knowledge.docs`; do not edit by hand.",
        "",
        "## Tramadol rules",
        "",
    ]
    lines += _table(
        ["rule", "finding code", "level", "when", "message", "sources (verification)"],
        ([r.id, r.code, r.level, _when(r.when), r.message, _cites(r)] for r in t.rules),
    )
    lines += ["## Dose limits (immediate and extended release; 0: the form is not for the patient)", ""]
    lines += _table(
        ["limit", "release", "max mg/day", "interval h", "when", "sources (verification)"],
        ([d.id, d.release, d.max_daily_mg, d.interval_h or "", _when(d.when), _cites(d)] for d in t.dose_limits),
    )
    lines += [
        "The interaction checker (`withdrawal interactions`) reports these same rules for each drug that",
        "their drug tests name, and the option rules below for pairs with an option's drug.",
        "",
        "## Option rules (every option screened for the patient)",
        "",
    ]
    lines += _table(
        ["rule", "options", "finding code", "level", "excludes", "when", "message", "sources (verification)"],
        (
            [r.id, ", ".join(r.treatments), r.code, r.level, "yes" if r.exclude else "", _when(r.when), r.message,
             _cites(r)]
            for r in kb.care.option_rules
        ),
    )
    lines += ["## Adjunct rules", ""]
    lines += _table(
        ["rule", "adjuncts", "status", "when", "reason", "sources (verification)"],
        ([r.id, ", ".join(r.adjuncts), r.status, _when(r.when), r.reason, _cites(r)] for r in kb.care.adjunct_rules),
    )
    lines += ["## What the screen looks at (condition scope)", ""]
    lines += _table(
        ["scope", "ICD-10-CM prefixes", "left out", "SNOMED CT", "why", "sources (verification)"],
        (
            [c.id, ", ".join(c.icd10cm_prefixes), ", ".join(c.icd10cm_excluded_prefixes), ", ".join(c.snomed),
             c.reason, _cites(c)]
            for c in kb.vocabulary.condition_scope
        ),
    )
    lines += ["## Drug classes", ""]
    lines += _table(
        ["class", "label", "members", "sources (verification)"],
        (
            [c.id, c.label, ", ".join(sorted(kb.drug_class_members.get(c.id, ()))), _cites(c)]
            for c in kb.vocabulary.classes
        ),
    )
    lines += ["## Withdrawal course", ""]
    lines += _table(
        ["opioid", "acting", "onset h", "peak h", "duration days", "buprenorphine wait h", "sources"],
        (
            [
                c.substance,
                c.acting,
                f"{c.onset_h.low:g}-{c.onset_h.high:g}" if c.onset_h else "unknown",
                f"{c.peak_h.low:g}-{c.peak_h.high:g}" if c.peak_h else "unknown",
                f"{c.duration_days.low:g}-{c.duration_days.high:g}" if c.duration_days else "unknown",
                f"{c.buprenorphine_wait_h.low:g}-{c.buprenorphine_wait_h.high:g}" if c.buprenorphine_wait_h else "",
                _cites(c),
            ]
            for c in kb.care.timelines
        ),
    )
    lines += ["## Options", ""]
    lines += _table(
        ["option", "role", "base rank", "route", "order product", "dosing", "sources"],
        ([o.name, o.role, o.base_rank, o.route or "", o.order_product or "", o.dosing, _cites(o)]
         for o in kb.care.treatments),
    )
    lines += ["## Drugs", ""]
    lines += _table(
        ["drug", "brands", "RxCUI", "ATC", "classes", "sources"],
        (
            [d.name, ", ".join(d.brands), d.rxcui or "not found", ", ".join(d.atc), ", ".join(d.classes), _cites(d)]
            for d in kb.vocabulary.drugs
        ),
    )
    lines += ["## Conditions", ""]
    lines += _table(
        ["key", "words", "ICD-10-CM", "SNOMED CT", "ICD-10-PCS", "sources"],
        (
            [c.key, ", ".join(c.synonyms), ", ".join(c.icd10cm), ", ".join(c.snomed), ", ".join(c.icd10pcs), _cites(c)]
            for c in kb.vocabulary.conditions
        ),
    )
    lines += ["## Condition groups", ""]
    lines += _table(
        ["group", "label", "conditions", "why", "sources (verification)"],
        ([g.id, g.label, ", ".join(g.conditions), g.description, _cites(g)] for g in kb.vocabulary.condition_groups),
    )
    lines += _pathway(kb)
    cited: set[str] = set()
    pw = kb.pathway
    steps = [s for st in pw.starts for s in (st, *st.steps, *st.schedules)]
    for e in (pw.low_dose_first, *steps, *pw.rechecks, *pw.precipitated_withdrawal, *pw.handoff):
        cited.update(e.sources)
    for group in (t.rules, t.dose_limits, kb.care.option_rules, kb.care.adjunct_rules, kb.care.timelines,
                  kb.care.treatments, kb.vocabulary.condition_scope, kb.vocabulary.classes,
                  kb.vocabulary.condition_groups):
        cited.update(s for e in group for s in e.sources)
    cited.update(s for d in (*kb.vocabulary.drugs, *kb.vocabulary.conditions) for s in d.sources)
    lines += ["## Sources cited above", ""]
    lines += _table(
        ["id", "title", "organisation", "trust", "link"],
        (
            [kb.sources[i].id, kb.sources[i].title, kb.sources[i].organisation, kb.sources[i].trust, kb.sources[i].link]
            for i in sorted(cited)
        ),
    )
    return "\n".join(lines)


def _pathway(kb: KnowledgeBase) -> list[str]:
    """The buprenorphine start pathway (pathway.yaml): starts, steps, schedules as published, rechecks."""
    pw = kb.pathway
    lines = ["## Buprenorphine start pathway", ""]
    lines += [f"Low-dose start first when: {', '.join(pw.low_dose_first.substances)} on board"
              f"{' or a full agonist still taken' if pw.low_dose_first.still_taking else ''}. "
              f"{pw.low_dose_first.reason} The buprenorphine option's timing then ends: "
              f"\"{pw.low_dose_first.timing_note}\" ({_cites(pw.low_dose_first)})", ""]
    lines += _table(
        ["start", "COWS from", "step", "text", "sources (verification)"],
        ([st.name, st.cows_min if st.cows_min is not None else "", s.id, s.text, _cites(s)]
         for st in pw.starts for s in st.steps),
    )
    for st in pw.starts:
        for sc in st.schedules:
            lines += [f"### {sc.name} ({sc.setting}; {_cites(sc)})", "", sc.note, ""]
            lines += _table(["day", "buprenorphine", "full agonist"],
                            ([d.day, d.buprenorphine, d.full_agonist] for d in sc.days))
    lines += ["### COWS rechecks, precipitated withdrawal, hand-off", ""]
    rows: list[list[object]] = [[r.id, f"{r.when}: {r.action}" + (f" (timing, below the threshold: \"{r.timing_note}\")"
                                                                  if r.timing_note else ""), _cites(r)]
                                for r in pw.rechecks]
    rows += [[s.id, s.text, _cites(s)] for s in (*pw.precipitated_withdrawal, *pw.handoff)]
    lines += _table(["step", "text", "sources (verification)"], rows)
    return lines


if __name__ == "__main__":
    import sys

    sys.stdout.write(render(default_kb()))
