"""Tramadol safety screen: each finding code, each dose-limit path, and its invariants.

Reference for levels and limits: tramadol US label (contraindications section 4; IR maximum
400 mg/day; over 75 years 300 mg/day; CrCl < 30 mL/min 200 mg/day every 12 h; cirrhosis 50 mg
every 12 h), CPIC 2021 for CYP2D6, and the research notes' hard stops for off-label use.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from withdrawal.knowledge.loader import default_kb
from withdrawal.knowledge.models import LEVELS
from withdrawal.patient import parse_patient, resolve
from withdrawal.safety import ScreenResult, screen_tramadol

KB = default_kb()


def base(**changes: Any) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "age_years": 35,
        "sex": "male",
        "opioid": {"substance": "heroin", "hours_since_last_use": 16},
        "setting": "inpatient",
    }
    patient.update(changes)
    return patient


def run(raw: dict[str, Any]) -> ScreenResult:
    return screen_tramadol(resolve(parse_patient(raw), KB), KB)


def med(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, **kw}


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("age_under_12", base(age_years=11), "age_under_12", "contraindicated"),
    ("tonsillectomy_16", base(age_years=16, conditions=["tonsillectomy_recent"]), "adolescent_post_tonsillectomy", "contraindicated"),
    ("resp_depression", base(conditions=["respiratory_depression"]), "respiratory_depression", "contraindicated"),
    ("asthma_icd", base(conditions=["J45.902"]), "acute_severe_asthma", "contraindicated"),
    ("ileus", base(conditions=["paralytic_ileus"]), "gi_obstruction", "contraindicated"),
    ("obstruction_icd", base(conditions=["K56.609"]), "gi_obstruction", "contraindicated"),
    ("allergy_brand", base(allergies=["ULTRAM"]), "hypersensitivity", "contraindicated"),
    ("maoi_active", base(medications=[med("phenelzine")]), "maoi", "contraindicated"),
    ("maoi_14_days", base(medications=[med("Nardil", status="stopped", days_since_stopped=14)]), "maoi", "contraindicated"),
    ("linezolid", base(medications=[med("Zyvox")]), "maoi", "contraindicated"),
    ("pregnant", base(sex="female", pregnant=True), "pregnancy", "avoid"),
    ("pregnancy_code", base(sex="female", conditions=["Z33.1"]), "pregnancy", "avoid"),
    ("breastfeeding", base(sex="female", breastfeeding=True), "breastfeeding", "avoid"),
    ("epilepsy_icd", base(conditions=["G40.909"]), "seizure_risk", "avoid"),
    ("alcohol_withdrawal", base(conditions=["alcohol_withdrawal"]), "seizure_risk", "avoid"),
    ("bupropion", base(medications=[med("Wellbutrin")]), "seizure_risk", "avoid"),
    ("suicidal", base(conditions=["suicidal_ideation"]), "suicide_risk", "avoid"),
    ("sertraline", base(medications=[med("sertraline")]), "serotonergic_drug", "avoid"),
    ("sumatriptan", base(medications=[med("Imitrex")]), "serotonergic_drug", "caution"),
    ("clonazepam", base(medications=[med("clonazepam")]), "cns_depressant", "avoid"),
    ("gabapentin", base(medications=[med("Neurontin")]), "cns_depressant", "avoid"),
    ("alcohol_disorder", base(conditions=["F10.20"]), "cns_depressant", "avoid"),
    ("hydroxyzine", base(medications=[med("hydroxyzine")]), "cns_depressant", "caution"),
    ("paroxetine", base(medications=[med("Paxil")]), "cyp2d6_inhibitor", "caution"),
    ("quinidine", base(medications=[med("quinidine")]), "cyp2d6_inhibitor", "caution"),
    ("carbamazepine", base(medications=[med("Tegretol")]), "cyp3a4_inducer", "avoid"),
    ("rifampin", base(medications=[med("rifampin")]), "cyp3a4_inducer", "caution"),
    ("ketoconazole", base(medications=[med("ketoconazole")]), "cyp3a4_inhibitor", "caution"),
    ("ultrarapid", base(cyp2d6_phenotype="ultrarapid"), "cyp2d6_ultrarapid", "avoid"),
    ("poor", base(cyp2d6_phenotype="poor"), "cyp2d6_poor", "avoid"),
    ("naltrexone", base(medications=[med("naltrexone")]), "opioid_antagonist", "contraindicated"),
    ("vivitrol_recent", base(medications=[med("Vivitrol", status="stopped", days_since_stopped=20)]), "opioid_antagonist", "contraindicated"),
    ("renal", base(creatinine_clearance_ml_min=29.9), "renal_impairment", "caution"),
    ("cirrhosis", base(conditions=["K74.60"]), "hepatic_impairment", "caution"),
    ("child_pugh_c", base(child_pugh="C"), "hepatic_impairment", "avoid"),
    ("elderly", base(age_years=76), "elderly", "caution"),
    ("hyponatremia", base(conditions=["E87.1"]), "hyponatremia", "caution"),
    ("adrenal", base(conditions=["adrenal_insufficiency"]), "adrenal_insufficiency", "caution"),
    ("methadone_treatment", base(medications=[med("methadone", dose_mg_per_day=80)]), "opioid_agonist_treatment", "avoid"),
    ("suboxone", base(medications=[med("Suboxone")]), "opioid_agonist_treatment", "avoid"),
    ("too_early", base(opioid={"substance": "heroin", "hours_since_last_use": 3}), "recent_opioid_use", "avoid"),
    ("on_tramadol", base(medications=[med("tramadol")]), "tramadol_dependence", "avoid"),
    ("serotonin_history", base(conditions=["serotonin_syndrome_history"]), "serotonin_syndrome_history", "avoid"),
    ("warfarin", base(medications=[med("Coumadin")]), "warfarin", "caution"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "code", "level"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_finding(raw: dict[str, Any], code: str, level: str) -> None:
    result = run(raw)
    finding = next((f for f in result.findings if f.code == code), None)
    assert finding is not None, result.codes
    assert finding.level == level
    assert finding.sources and finding.message and finding.action
    assert LEVELS.index(result.verdict) >= LEVELS.index(level)


def test_clean_adult_is_acceptable_with_the_label_maximum() -> None:
    result = run(base())
    assert result.verdict == "acceptable"
    assert result.findings == ()
    assert result.max_daily_dose_mg == 400


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("maoi_15_days", None),
        ("naltrexone_old", None),
    ],
)
def test_old_stops_no_longer_count(raw: str, expected: None) -> None:
    patient = {
        "maoi_15_days": base(medications=[med("phenelzine", status="stopped", days_since_stopped=15)]),
        "naltrexone_old": base(medications=[med("naltrexone", status="stopped", days_since_stopped=45)]),
    }[raw]
    assert run(patient).verdict == "acceptable"


def test_stopped_without_date_counts_as_recent() -> None:
    result = run(base(medications=[med("phenelzine", status="stopped")]))
    assert "maoi" in result.codes


def test_ssri_stopped_does_not_count() -> None:
    assert run(base(medications=[med("sertraline", status="stopped", days_since_stopped=2)])).verdict == "acceptable"


@pytest.mark.parametrize(
    ("raw", "limit", "interval"),
    [
        (base(), 400, 6),
        (base(age_years=75), 400, 6),
        (base(age_years=76), 300, 6),
        (base(creatinine_clearance_ml_min=30), 400, 6),
        (base(creatinine_clearance_ml_min=29), 200, 12),
        (base(conditions=["cirrhosis"]), 100, 12),
        (base(child_pugh="A"), 100, 12),
        (base(age_years=80, creatinine_clearance_ml_min=20), 200, 12),
        (base(age_years=80, creatinine_clearance_ml_min=20, child_pugh="B"), 100, 12),
    ],
)
def test_dose_limit_paths_lowest_wins(raw: dict[str, Any], limit: int, interval: int) -> None:
    result = run(raw)
    assert result.max_daily_dose_mg == limit
    assert result.dose_limit.interval_h == interval


def test_adolescent_with_sleep_apnoea_is_avoided() -> None:
    assert "adolescent_respiratory_risk" in run(base(age_years=15, conditions=["sleep_apnea"])).codes


drug_names = st.sampled_from(sorted(d.name for d in KB.vocabulary.drugs))
condition_keys = st.sampled_from(sorted(KB.conditions))


@settings(max_examples=60, deadline=None)
@given(st.lists(drug_names, max_size=4), st.lists(condition_keys, max_size=3), drug_names, condition_keys)
def test_adding_a_drug_or_condition_never_lowers_the_verdict(
    drugs: list[str], conds: list[str], extra_drug: str, extra_cond: str
) -> None:
    before = run(base(medications=[med(d) for d in drugs], conditions=conds))
    after = run(base(medications=[med(d) for d in [*drugs, extra_drug]], conditions=[*conds, extra_cond]))
    assert LEVELS.index(after.verdict) >= LEVELS.index(before.verdict)
    assert set(before.codes) <= set(after.codes)


@settings(max_examples=40, deadline=None)
@given(st.lists(drug_names, min_size=2, max_size=5), st.randoms(use_true_random=False))
def test_medication_order_does_not_change_the_answer(drugs: list[str], rnd: Any) -> None:
    shuffled = drugs[:]
    rnd.shuffle(shuffled)
    a = run(base(medications=[med(d) for d in drugs]))
    b = run(base(medications=[med(d) for d in shuffled]))
    assert a.verdict == b.verdict
    assert set(a.codes) == set(b.codes)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["acetaminophen", "ibuprofen", "loperamide", "Tylenol", "Advil", "digoxin"]))
def test_clean_case_stays_clean_with_harmless_additions(name: str) -> None:
    assert run(base(medications=[med(name)])).verdict == "acceptable"


def test_buprenorphine_blocks_tramadol() -> None:
    # DDInter (Major): buprenorphine blocks tramadol's mu effect and may precipitate withdrawal.
    result = run(base(medications=[med("Suboxone")]))
    codes = {f.code: f.level for f in result.findings}
    assert codes["opioid_antagonist"] == "avoid"
    assert codes["cns_depressant"] == "avoid"


def test_naloxone_rescue_kit_does_not_block() -> None:
    assert run(base(medications=[med("Narcan")])).verdict == "acceptable"


def test_methadone_is_serotonergic_with_tramadol() -> None:
    codes = {f.code: f.level for f in run(base(medications=[med("methadone")])).findings}
    assert codes["serotonergic_drug"] == "caution"
