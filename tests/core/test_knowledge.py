"""The knowledge base loads whole or not at all; every entry cites a registered source."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.base import Cited, data_dir
from withdrawal.knowledge.loader import KnowledgeBase, load_kb


def _copy_kb(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(data_dir(), target)
    return target


def _edit(path: Path, change: object) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_packaged_kb_loads(kb: KnowledgeBase) -> None:
    assert kb.version
    assert len(kb.drugs) > 60
    assert {r.code for r in kb.tramadol.rules} >= {
        "age_under_12", "adolescent_post_tonsillectomy", "respiratory_depression",
        "acute_severe_asthma", "gi_obstruction", "hypersensitivity", "maoi", "pregnancy",
        "breastfeeding", "seizure_risk", "suicide_risk", "serotonergic_drug", "cns_depressant",
        "cyp2d6_inhibitor", "cyp3a4_inducer", "cyp3a4_inhibitor", "cyp2d6_ultrarapid",
        "cyp2d6_poor", "opioid_antagonist", "renal_impairment", "hepatic_impairment", "elderly",
        "hyponatremia", "adrenal_insufficiency",
    }  # fmt: skip


def test_entry_without_source_is_rejected(tmp_path: Path) -> None:
    d = _copy_kb(tmp_path)
    _edit(d / "tramadol.yaml", lambda y: y["rules"][0].update(sources=[]))
    with pytest.raises(KnowledgeBaseError, match="sources"):
        load_kb(d)


def test_entry_with_missing_sources_key_is_rejected(tmp_path: Path) -> None:
    d = _copy_kb(tmp_path)
    _edit(d / "care.yaml", lambda y: y["resources"][0].pop("sources"))
    with pytest.raises(KnowledgeBaseError, match="sources"):
        load_kb(d)


def test_unregistered_source_id_is_rejected(tmp_path: Path) -> None:
    d = _copy_kb(tmp_path)
    _edit(d / "tramadol.yaml", lambda y: y["rules"][0].update(sources=["no_such_source"]))
    with pytest.raises(KnowledgeBaseError, match="no_such_source"):
        load_kb(d)


def test_rule_naming_unknown_drug_class_is_rejected(tmp_path: Path) -> None:
    d = _copy_kb(tmp_path)
    _edit(d / "tramadol.yaml", lambda y: y["rules"][0].update(when=[{"drug_classes_any": ["maoix"]}]))
    with pytest.raises(KnowledgeBaseError, match="maoix"):
        load_kb(d)


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    d = _copy_kb(tmp_path)
    _edit(d / "vocabulary.yaml", lambda y: y["drugs"][0].update(brand="Ultram"))
    with pytest.raises(KnowledgeBaseError, match="brand"):
        load_kb(d)


def test_cows_bands_with_a_gap_are_rejected(tmp_path: Path) -> None:
    d = _copy_kb(tmp_path)
    _edit(d / "cows.yaml", lambda y: y["bands"][1].update(max=11))
    with pytest.raises(KnowledgeBaseError, match="gap"):
        load_kb(d)


def test_source_needs_a_locator(tmp_path: Path) -> None:
    d = _copy_kb(tmp_path)
    _edit(d / "sources.yaml", lambda y: y["sources"][0].pop("dailymed_setid"))
    with pytest.raises(KnowledgeBaseError, match="url or a dailymed_setid"):
        load_kb(d)


def _all_cited(kb: KnowledgeBase) -> list[Cited]:
    out: list[Cited] = [*kb.vocabulary.classes, *kb.vocabulary.drugs, *kb.vocabulary.conditions]
    out += [*kb.tramadol.rules, *kb.tramadol.dose_limits, *kb.vocabulary.condition_scope]
    out += [*kb.tramadol.pair_interactions, kb.tramadol.off_label_statement]
    c = kb.care
    out += [c.tramadol_taper, *c.timelines, *c.treatments, *c.adjuncts, *c.resources]
    out += [*c.option_notes, *c.option_rules, *c.adjunct_rules]
    out += [*c.monitoring, *c.evidence_summary, *c.statements]
    for scale in kb.scales.values():
        out += [scale, *scale.items, *scale.bands]
    return out


def test_every_entry_cites_a_registered_source(kb: KnowledgeBase) -> None:
    entries = _all_cited(kb)
    assert len(entries) > 200
    for entry in entries:
        assert entry.sources, entry
        for sid in entry.sources:
            assert sid in kb.sources, (entry, sid)


def test_every_rule_cites_a_primary_or_says_it_is_not_verified(kb: KnowledgeBase) -> None:
    for rule in kb.tramadol.rules:
        trusts = {kb.sources[s].trust for s in rule.sources}
        if rule.verification == "verified":
            assert "primary" in trusts, rule.id


# The private number in the article this project answers; it must never be shown.
PRIVATE_NUMBER = re.compile(r"866\D?303\D?3480")


def test_only_public_resources(kb: KnowledgeBase) -> None:
    ids = {r.id for r in kb.care.resources}
    assert ids == {"samhsa_helpline", "findtreatment", "lifeline_988", "emergency_911"}
    text = yaml.safe_dump([r.model_dump() for r in kb.care.resources])
    assert "1-800-662-HELP (4357)" in text and "988" in text and "findtreatment.gov" in text.lower()
    assert not PRIVATE_NUMBER.search(text)
    for r in kb.care.resources:
        assert r.url and re.match(r"https://(www\.)?(samhsa\.gov|findtreatment\.gov|988lifeline\.org|911\.gov)/", r.url)


def test_no_private_number_anywhere_in_the_data() -> None:
    for path in data_dir().rglob("*.yaml"):
        assert not PRIVATE_NUMBER.search(path.read_text()), path


def test_condition_codes_resolve_with_child_codes(kb: KnowledgeBase) -> None:
    assert kb.lookup_condition("G40.909") == "seizure_disorder"
    assert kb.lookup_condition("G40") == "seizure_disorder"
    assert kb.lookup_condition("g40.909") == "seizure_disorder"
    assert kb.lookup_condition("84757009") == "seizure_disorder"
    assert kb.lookup_condition("K56.0") == "paralytic_ileus"
    assert kb.lookup_condition("K56.609") == "gi_obstruction"
    assert kb.lookup_condition("F11.23") == "opioid_withdrawal"
    assert kb.lookup_condition("SEIZURE_DISORDER") == "seizure_disorder"
    assert kb.lookup_condition("Z99.99") is None
    assert kb.lookup_condition("123") is None
    # a display text is not walked as a code, and gives the same answer every time (memo)
    long_text = "Major depressive disorder, single episode, unspecified"
    assert kb.lookup_condition(long_text) is None
    assert kb.lookup_condition(long_text) is None
    assert kb.lookup_condition("g40.909 (from the problem list)") == "seizure_disorder"  # code first, as before


def test_lookup_memo_is_bounded_and_not_shared_by_copies(kb: KnowledgeBase) -> None:
    import dataclasses

    from withdrawal.knowledge.kb import MEMO_MAX

    fresh = dataclasses.replace(kb)
    assert fresh.memo("drug_name") is not kb.memo("drug_name")
    table = fresh.memo("test")
    table.update((str(i), i) for i in range(MEMO_MAX))
    assert len(fresh.memo("test")) == 0  # emptied at the bound, not grown without limit
    long_name = "sertraline " + "x" * 300
    assert fresh.memoized("drug_name", long_name, lambda t: ("computed",)) == ("computed",)
    assert long_name not in fresh.memo("drug_name")  # long keys are computed, not kept


def test_interaction_index_equals_a_scan_of_the_rules(kb: KnowledgeBase) -> None:
    """The checker's tramadol interactions are the screen's own rules (one place says what interacts)."""
    from withdrawal.safety.interactions import tramadol_interactions

    assert set(kb.tramadol_interactions_of) == set(kb.drugs)
    for drug_id, drug in kb.drugs.items():
        refs = {drug_id, *drug.classes}
        scanned = [r for r in kb.tramadol.rules if any(refs & {*m.drugs_any, *m.drug_classes_any} for m in r.when)]
        assert tramadol_interactions(drug_id, kb) == scanned, drug_id
    assert {r.code for r in tramadol_interactions("sertraline", kb)} == {"serotonergic_drug", "seizure_risk"}


@pytest.mark.parametrize("name", ["prochlorperazine", "digoxin", "loperamide", "sertraline", "quetiapine"])
def test_checker_and_screen_agree(kb: KnowledgeBase, name: str) -> None:
    """Whatever the checker reports with tramadol, the screen raises for a patient on that drug."""
    from withdrawal.patient import parse_patient, resolve
    from withdrawal.safety import screen_tramadol
    from withdrawal.safety.interactions import check_interactions

    report = check_interactions([name], kb)
    screen = screen_tramadol(resolve(parse_patient({"age_years": 40, "medications": [{"name": name}]}), kb), kb)
    assert report.with_tramadol, name
    assert {h.code for h in report.with_tramadol} == set(screen.codes)


@pytest.mark.parametrize("bad", ["G40.", "g40.9", "G4", "G40.90912", "40.9", "G40 .9"])
def test_malformed_icd10cm_code_stops_the_load(tmp_path: Path, bad: str) -> None:
    data = _copy_kb(tmp_path)
    _edit(data / "vocabulary.yaml", lambda d: d["conditions"][0].__setitem__("icd10cm", [bad]))
    with pytest.raises(KnowledgeBaseError):
        load_kb(data)


@pytest.mark.parametrize(
    ("brand", "generic"),
    [("Ultram", "tramadol"), ("ZOLOFT", "sertraline"), ("prozac", "fluoxetine"), ("Paxil", "paroxetine"),
     ("Xanax", "alprazolam"), ("Klonopin", "clonazepam"), ("Nardil", "phenelzine"),
     ("Parnate", "tranylcypromine"), ("Emsam", "selegiline"), ("Wellbutrin", "bupropion"),
     ("Tegretol", "carbamazepine"), ("Neurontin", "gabapentin"), ("Lyrica", "pregabalin"),
     ("Remeron", "mirtazapine"), ("Desyrel", "trazodone"), ("Vivitrol", "naltrexone"),
     ("Revia", "naltrexone"), ("Subutex", "buprenorphine"), ("Lucemyra", "lofexidine"),
     ("Zofran", "ondansetron"), ("Imitrex", "sumatriptan"), ("Zyvox", "linezolid")],
)  # fmt: skip
def test_brand_names_resolve(kb: KnowledgeBase, brand: str, generic: str) -> None:
    assert generic in kb.lookup_drug(brand)


def test_combination_brand_resolves_to_each_ingredient(kb: KnowledgeBase) -> None:
    assert set(kb.lookup_drug("Suboxone")) == {"buprenorphine", "naloxone"}


def test_drug_classes_named_by_the_issue_exist(kb: KnowledgeBase) -> None:
    for cls in ("maoi", "ssri", "snri", "tca", "triptan", "antiemetic_5ht3", "benzodiazepine",
                "gabapentinoid", "opioid_agonist", "opioid_partial_agonist", "opioid_antagonist",
                "cyp2d6_inhibitor", "cyp3a4_inhibitor", "cyp3a4_inducer", "seizure_threshold_lowering"):  # fmt: skip
        assert kb.drug_class_members[cls], cls


def test_rxcui_codes_are_unique(kb: KnowledgeBase) -> None:
    codes = [d.rxcui for d in kb.vocabulary.drugs if d.rxcui]
    assert len(codes) == len(set(codes))
    assert kb.drug_rxcui["10689"] == "tramadol"


def test_a_base_dose_limit_with_an_interval_is_required(tmp_path: Path) -> None:
    d = _copy_kb(tmp_path)
    _edit(d / "tramadol.yaml", lambda y: y["dose_limits"][0].pop("interval_h"))
    with pytest.raises(KnowledgeBaseError, match="interval_h"):
        load_kb(d)


def test_every_verdict_level_has_its_heading(tmp_path: Path, kb: KnowledgeBase) -> None:
    """The pages and the SMART launch head the verdict with the knowledge base's words: a level
    without one stops the load (a page would otherwise show an empty headline)."""
    from tests_support import kb_with
    from withdrawal.knowledge.models import LEVELS

    assert set(kb.tramadol.verdict_headings) == set(LEVELS)
    assert "do not use" in kb.tramadol.verdict_headings["contraindicated"]
    with pytest.raises(KnowledgeBaseError, match="verdict_headings.*avoid"):
        load_kb(kb_with(tmp_path, "tramadol.yaml", lambda d: d["verdict_headings"].pop("avoid")))
