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


def pain(**changes: Any) -> dict[str, Any]:
    """A patient who is not withdrawing (tramadol considered for pain): no standing caution."""
    patient = base(**changes)
    patient.pop("opioid", None) if "opioid" not in changes else None
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
    # phenoconversion: a strong CYP2D6 inhibitor is treated as the poor-metaboliser phenotype (CPIC: avoid, strong)
    ("paroxetine", base(medications=[med("Paxil")]), "cyp2d6_inhibitor", "avoid"),
    ("quinidine", base(medications=[med("quinidine")]), "cyp2d6_inhibitor", "avoid"),
    ("terbinafine", base(medications=[med("Lamisil")]), "cyp2d6_inhibitor", "avoid"),
    # classes of the opioid boxed warning (CNS depressants) and the seizure warning (neuroleptics, anorectics)
    ("quetiapine", base(medications=[med("Seroquel")]), "cns_depressant", "avoid"),
    ("quetiapine_seizure", base(medications=[med("quetiapine")]), "seizure_risk", "caution"),
    ("temazepam", base(medications=[med("Restoril")]), "cns_depressant", "avoid"),
    ("phenobarbital", base(medications=[med("phenobarbital")]), "cns_depressant", "avoid"),
    ("baclofen", base(medications=[med("baclofen")]), "cns_depressant", "avoid"),
    ("xylazine", base(medications=[med("xylazine")]), "cns_depressant", "avoid"),
    ("kratom", base(medications=[med("kratom")]), "cns_depressant", "avoid"),
    ("amphetamine", base(medications=[med("Adderall")]), "seizure_risk", "caution"),
    ("butorphanol", base(medications=[med("butorphanol")]), "opioid_antagonist", "avoid"),
    ("meperidine", base(medications=[med("Demerol")]), "serotonergic_drug", "caution"),
    ("dextromethorphan", base(medications=[med("dextromethorphan")]), "serotonergic_drug", "caution"),
    ("insulin", base(medications=[med("insulin glargine")]), "hypoglycaemia", "caution"),
    ("diabetes_icd", base(conditions=["E11.9"]), "hypoglycaemia", "caution"),
    ("digoxin", base(medications=[med("digoxin")]), "digoxin", "caution"),
    ("methadone_stopped", base(medications=[med("methadone", status="stopped", days_since_stopped=2)]), "opioid_agonist_treatment", "avoid"),
    # conditions by every common code and the words clinicians type
    ("epilepsy_word", base(conditions=["epilepsy"]), "seizure_risk", "avoid"),
    ("seizures_word", base(conditions=["Seizures"]), "seizure_risk", "avoid"),
    ("head_injury_word", base(conditions=["head injury"]), "head_injury", "caution"),
    ("convulsions_icd", base(conditions=["R56.9"]), "seizure_risk", "avoid"),
    ("pregnancy_o_code", base(sex="female", conditions=["O26.891"]), "pregnancy", "avoid"),
    ("pregnancy_snomed", base(sex="female", conditions=["72892002"]), "pregnancy", "avoid"),
    ("pregnancy_z3a", base(sex="female", conditions=["Z3A.28"]), "pregnancy", "avoid"),
    ("asthma_exacerbation", base(conditions=["J45.51"]), "acute_severe_asthma", "contraindicated"),
    ("asthma_severe_persistent", base(conditions=["J45.50"]), "acute_severe_asthma", "contraindicated"),
    ("tonsillectomy_pcs", base(age_years=15, conditions=["0CTPXZZ"]), "adolescent_post_tonsillectomy", "contraindicated"),
    ("adolescent", base(age_years=16), "adolescent", "caution"),
    ("codeine_allergy", base(allergies=["codeine"]), "hypersensitivity", "avoid"),
    ("opioid_allergy_status", base(conditions=["Z88.5"]), "hypersensitivity", "avoid"),
    ("depression_icd", base(conditions=["F32.9"]), "suicide_risk", "caution"),
    ("postpartum", base(sex="female", conditions=["O90.89"]), "postpartum", "caution"),
    ("ckd5", base(conditions=["N18.5"]), "renal_impairment", "caution"),
    ("unknown_drug", base(medications=[med("zorblaxamine")]), "incomplete_screen", "caution"),
    ("unknown_allergy", base(allergies=["zorblax"]), "incomplete_screen", "caution"),
    ("unknown_in_scope_code", base(conditions=["G99.8"]), "incomplete_screen", "caution"),
    ("unknown_free_text", base(conditions=["funny turns"]), "incomplete_screen", "caution"),
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
    result = run(pain())
    assert result.verdict == "acceptable"
    assert result.findings == ()
    assert result.max_daily_dose_mg == 400


def test_withdrawing_adult_carries_only_the_standing_caution() -> None:
    # US label: withdrawal states among seizure risks; addiction-prone patients; off-label use.
    result = run(base())
    assert result.verdict == "caution"
    assert result.codes == ("opioid_withdrawal",)
    assert "residential" in result.findings[0].message


@pytest.mark.parametrize(
    "raw",
    [
        {"conditions": ["F11.20"]},
        {"conditions": ["opioid_withdrawal"]},
        {"medications": [{"name": "oxycodone", "status": "stopped", "days_since_stopped": 2}]},
    ],
)
def test_opioid_use_recorded_raises_the_standing_caution(raw: dict[str, Any]) -> None:
    assert "opioid_withdrawal" in run(pain(**raw)).codes


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
    assert run({k: v for k, v in patient.items() if k != "opioid"}).verdict == "acceptable"


def test_stopped_without_date_counts_as_recent() -> None:
    result = run(base(medications=[med("phenelzine", status="stopped")]))
    assert "maoi" in result.codes


def test_ssri_stopped_does_not_count() -> None:
    assert run(pain(medications=[med("sertraline", status="stopped", days_since_stopped=2)])).verdict == "acceptable"


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
@given(st.sampled_from(["acetaminophen", "ibuprofen", "Tylenol", "Advil", "Motrin"]))
def test_clean_case_stays_clean_with_harmless_additions(name: str) -> None:
    assert run(pain(medications=[med(name)])).verdict == "acceptable"


def test_buprenorphine_blocks_tramadol() -> None:
    # DDInter (Major): buprenorphine blocks tramadol's mu effect and may precipitate withdrawal.
    result = run(base(medications=[med("Suboxone")]))
    codes = {f.code: f.level for f in result.findings}
    assert codes["opioid_antagonist"] == "avoid"
    assert codes["cns_depressant"] == "avoid"


def test_naloxone_rescue_kit_does_not_block() -> None:
    assert run(pain(medications=[med("Narcan")])).verdict == "acceptable"


def test_methadone_is_serotonergic_with_tramadol() -> None:
    codes = {f.code: f.level for f in run(base(medications=[med("methadone")])).findings}
    assert codes["serotonergic_drug"] == "caution"


def test_out_of_scope_codes_are_listed_without_raising() -> None:
    """Hypertension (I10), a social-history Z code and an unknown SNOMED finding stay out of scope."""
    patient = resolve(parse_patient(pain(conditions=["I10", "Z59.0", "160903007"])), KB)
    assert patient.unresolved == ()
    assert set(patient.out_of_scope) == {"I10", "Z59.0", "160903007"}
    assert screen_tramadol(patient, KB).verdict == "acceptable"


def test_old_unknown_stop_does_not_make_the_screen_incomplete() -> None:
    """Beyond the rules' longest washout (30 days, extended-release naltrexone) a stopped drug cannot matter."""
    assert KB.washout_days == 30
    old = run(pain(medications=[med("zorblax", status="stopped", days_since_stopped=31)]))
    recent = run(pain(medications=[med("zorblax", status="stopped", days_since_stopped=30)]))
    assert "incomplete_screen" not in old.codes
    assert "incomplete_screen" in recent.codes


def test_incomplete_screen_is_first_among_its_level() -> None:
    result = run(base(medications=[med("zorblax"), med("rifampin")], conditions=["hyponatremia"]))
    cautions = [f.code for f in result.findings if f.level == "caution"]
    assert cautions[0] == "incomplete_screen"
    first = next(f for f in result.findings if f.code == "incomplete_screen")
    assert "medication: zorblax" in first.triggers


def test_abortion_outcome_codes_are_not_a_current_pregnancy() -> None:
    """ICD-10-CM O00-O08 (pregnancy with abortive outcome) are neither pregnancy nor in scope."""
    patient = resolve(parse_patient(pain(sex="female", conditions=["O03.9"])), KB)
    assert "pregnancy" not in patient.conditions
    assert patient.out_of_scope == ("O03.9",)


@pytest.mark.parametrize(("hours", "fires"), [(20, True), (95, True), (None, True), (100, False)])
def test_withdrawal_from_methadone_keeps_the_residual_methadone_finding(hours: float | None, fires: bool) -> None:
    """Methadone is long-acting (withdrawal peaks 72-96 h after the last dose): within 96 h it is still acting."""
    result = run(base(opioid={"substance": "methadone", "hours_since_last_use": hours}))
    assert ("opioid_agonist_treatment" in result.codes) is fires


@pytest.mark.parametrize(
    ("name", "left"),
    [
        ("Zoloft Xanax blorp", "blorp"),  # one line, several names: the unknown one is named, not dropped
        ("sertraline 50 MG Oral Tablet", None),  # RxNorm SCD words are product words
        ("tramadol hydrochloride 100 MG 24 HR Extended Release Oral Tablet", None),
        ("Acetaminophen 325 MG / oxyCODONE Hydrochloride 5 MG Oral Tablet", None),
        ("Suboxone 8 MG / 2 MG film", None),
    ],
)
def test_words_beside_a_known_ingredient_are_screened_or_named(name: str, left: str | None) -> None:
    patient = resolve(parse_patient(pain(medications=[med(name)])), KB)
    assert patient.active_drugs  # the known ingredients still count
    if left is None:
        assert patient.unresolved == ()
    else:
        assert patient.unresolved == (f"medication: {name} (not recognised: {left})",)
        assert "incomplete_screen" in screen_tramadol(patient, KB).codes
