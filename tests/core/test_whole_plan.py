"""The whole answer fits the patient: timing from every opioid on board, antagonists, every option
and adjunct screened, no ready schedule when tramadol is avoided, consistency of the sources.

References: ASAM 2020 (buprenorphine 12-18 h after short-acting, 24-48 h after methadone);
ASAM 2023 high-potency synthetic opioids (low-dose start overlapping the full agonist); naltrexone
and Vivitrol labels (opioid agonists contraindicated while naltrexone acts); methadone, Suboxone
and Lucemyra labels (boxed warning with benzodiazepines, QT, CYP3A4); FDA 2016 (do not withhold
agonist treatment from patients on benzodiazepines); FDA 2020 (NSAIDs from 20 weeks of pregnancy);
AGS Beers 2023 (first-generation antihistamines and doxepin over 6 mg in older adults).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from withdrawal.assess import Assessment, assess
from withdrawal.knowledge.loader import default_kb
from withdrawal.knowledge.models import LEVELS
from withdrawal.safety.interactions import check_interactions

KB = default_kb()
COWS_17 = {"resting_pulse_rate": 2, "sweating": 1, "restlessness": 1, "pupil_size": 1,
           "bone_or_joint_aches": 1, "runny_nose_or_tearing": 2, "gi_upset": 2, "tremor": 1,
           "yawning": 1, "anxiety_or_irritability": 2, "gooseflesh_skin": 3}  # fmt: skip
COWS_0 = dict.fromkeys(COWS_17, 0)


def run(hours: float = 16, substance: str = "heroin", override: str | None = None, **changes: Any) -> Assessment:
    raw = {"age_years": 35, "opioid": {"substance": substance, "hours_since_last_use": hours}, "cows": COWS_17,
           **changes}
    return assess(raw, KB, override=override)


def option(a: Assessment, treatment: str) -> Any:
    return next(o for o in a.plan.options if o.treatment == treatment)


def adjunct(a: Assessment, drug: str) -> Any:
    return next(x for x in a.plan.adjuncts if x.drug == drug)


# --- 3. timing from every opioid on board -------------------------------------------------


def test_active_methadone_holds_the_standard_buprenorphine_start() -> None:
    timing = option(run(medications=[{"name": "methadone", "dose_mg_per_day": 90}]), "buprenorphine").timing
    assert timing.startswith("Standard start: not yet") and "methadone" in timing and "24-48 h" in timing
    assert "low-dose buprenorphine start overlapping the full agonist" in timing


def test_recently_stopped_methadone_sets_the_wait() -> None:
    a = run(medications=[{"name": "methadone", "status": "stopped", "days_since_stopped": 0.5}])
    assert "24 h after the last methadone" in option(a, "buprenorphine").timing
    assert "opioid_agonist_treatment" in a.screen.codes  # residual methadone: a tramadol finding


def test_methadone_stopped_long_ago_no_longer_holds_the_start() -> None:
    a = run(medications=[{"name": "methadone", "status": "stopped", "days_since_stopped": 5}])
    assert option(a, "buprenorphine").timing.startswith("Can start now")
    assert "opioid_agonist_treatment" not in a.screen.codes


def test_fentanyl_offers_the_low_dose_start() -> None:
    timing = option(run(hours=20, substance="fentanyl"), "buprenorphine").timing
    assert "low-dose" in timing


def test_tramadol_gets_the_same_objective_gate() -> None:
    a = run(hours=5, cows=COWS_0)
    assert option(a, "tramadol").timing.startswith("Not yet")
    assert option(a, "buprenorphine").timing.startswith("Standard start: not yet")
    low = run(hours=20, cows=COWS_0)
    assert "below" in option(low, "tramadol").timing


def test_cows_wording_does_not_contradict_the_band() -> None:
    statement = next(s for s in KB.care.statements if s.id == "cows_threshold").text
    assert "8 or more" in statement and "mild" in statement and "moderate" not in statement


# --- 4. antagonists block agonists ----------------------------------------------------------


@pytest.mark.parametrize("med", [{"name": "naltrexone"}, {"name": "Vivitrol", "status": "stopped", "days_since_stopped": 20}])
def test_naltrexone_excludes_every_agonist(med: dict[str, Any]) -> None:
    a = run(medications=[med])
    excluded = {e.treatment: e for e in a.plan.excluded}
    assert {"buprenorphine", "methadone", "tramadol"} <= set(excluded)
    assert "naltrexone" in " ".join(excluded["buprenorphine"].reasons).lower()
    assert a.plan.options[0].treatment == "lofexidine"  # non-opioid management first


# --- 5. every option screened -----------------------------------------------------------------


def test_agonists_carry_the_benzodiazepine_warning_without_being_withheld() -> None:
    a = run(medications=[{"name": "lorazepam"}])
    for t in ("buprenorphine", "methadone"):
        o = option(a, t)
        assert o.status == "recommended"
        assert any(f.code == "cns_depressant" and "withhold" in f.message for f in o.findings)


def test_methadone_with_an_maoi_and_serotonergic_drugs() -> None:
    assert option(run(medications=[{"name": "linezolid"}]), "methadone").status == "not_advised"
    codes = {f.code for f in option(run(medications=[{"name": "sertraline"}]), "methadone").findings}
    assert "serotonergic_drug" in codes


def test_qt_drugs_flag_methadone_and_lofexidine_and_ondansetron() -> None:
    a = run(medications=[{"name": "citalopram"}])
    for t in ("methadone", "lofexidine"):
        assert "qt_prolongation" in {f.code for f in option(a, t).findings}
    assert adjunct(a, "ondansetron").status == "caution"


def test_an_option_does_not_interact_with_itself() -> None:
    a = run(medications=[{"name": "methadone"}])
    assert option(a, "methadone").findings == ()


def test_children_get_no_adult_agonist_doses() -> None:
    a = run(age_years=14)
    assert "Adult doses do not apply" in option(a, "buprenorphine").dosing
    assert "adolescent" in a.screen.codes


def test_checker_reports_the_option_pairs() -> None:
    report = check_interactions(["sertraline", "methadone"], KB)
    assert any({h.first, h.second} == {"sertraline", "methadone"} for h in report.between)


# --- 6. adjuncts fit the patient ---------------------------------------------------------------


def test_nsaids_not_in_pregnancy_without_gestational_age_or_from_20_weeks() -> None:
    for weeks in (None, 20, 30):
        a = run(sex="female", pregnant=True, gestational_age_weeks=weeks)
        x = adjunct(a, "ibuprofen")
        assert x.status == "not_for_this_patient" and "20 weeks" in x.reason and not x.dose
    assert adjunct(run(sex="female", pregnant=True, gestational_age_weeks=12), "ibuprofen").status == "offered"


def test_nsaids_not_with_anticoagulants_or_cirrhosis() -> None:
    assert adjunct(run(medications=[{"name": "Eliquis"}]), "ibuprofen").status == "not_for_this_patient"
    assert adjunct(run(conditions=["cirrhosis"]), "ibuprofen").status == "not_for_this_patient"
    assert adjunct(run(conditions=["cirrhosis"]), "acetaminophen").status == "caution"


def test_beers_antihistamines_and_sedatives_and_children() -> None:
    old = run(age_years=70)
    assert adjunct(old, "diphenhydramine").status == "not_for_this_patient"
    assert adjunct(run(medications=[{"name": "clonazepam"}]), "trazodone").status == "caution"
    assert adjunct(run(conditions=["suicidal_ideation"]), "doxepin").status == "not_for_this_patient"
    assert all(x.status == "not_for_this_patient" for x in run(age_years=15).plan.adjuncts)


# --- 7. no ready schedule when tramadol is avoided ---------------------------------------------


def test_no_schedule_when_avoided_unless_overridden() -> None:
    avoided = run(conditions=["seizure_disorder"])
    assert avoided.screen.verdict == "avoid"
    assert avoided.plan.tramadol_regimen is None and "override" in (avoided.plan.regimen_withheld or "")
    chosen = run(conditions=["seizure_disorder"], override="no other option accepted; observed inpatient")
    assert chosen.plan.tramadol_regimen and chosen.plan.override
    assert chosen.to_dict()["tramadol"]["override"].startswith("no other option")


def test_override_never_unlocks_a_contraindication() -> None:
    a = run(medications=[{"name": "phenelzine"}], override="please")
    assert a.plan.tramadol_regimen is None and a.plan.override is None
    assert "contraindicated" in (a.plan.regimen_withheld or "")


def test_outpatient_tramadol_says_where_the_evidence_comes_from() -> None:
    assert any("residential" in r for r in option(run(setting="outpatient"), "tramadol").reasons)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(d.name for d in KB.vocabulary.drugs)), st.sampled_from(sorted(KB.conditions)))
def test_regimen_only_below_avoid(drug: str, condition: str) -> None:
    a = run(medications=[{"name": drug}], conditions=[condition])
    assert bool(a.plan.tramadol_regimen) == (LEVELS.index(a.screen.verdict) < LEVELS.index("avoid"))


# --- 8. consistency and sources ------------------------------------------------------------------


def test_suboxone_is_not_a_rescue_kit() -> None:
    text = run(medications=[{"name": "Suboxone"}]).plan.naloxone.text
    assert "Suboxone" in text and "still needs naloxone" in text


def test_no_private_treatment_centre_is_cited() -> None:
    for s in KB.sources.values():
        assert not any(d in s.link for d in ("recoverycenter", "mccaod", "rehab", "metamorphosispain")), s.id


def test_strong_cyp2d6_inhibitor_is_treated_as_a_poor_metaboliser() -> None:
    inhibited = run(medications=[{"name": "fluoxetine"}]).screen
    poor = run(cyp2d6_phenotype="poor").screen
    level = {f.code: f.level for f in inhibited.findings}["cyp2d6_inhibitor"]
    assert level == {f.code: f.level for f in poor.findings}["cyp2d6_poor"] == "avoid"
    assert "strong" in next(f for f in poor.findings if f.code == "cyp2d6_poor").message


@pytest.mark.parametrize(("code", "status"), [("Z3A.12", "offered"), ("Z3A.20", "not_for_this_patient"),
                                               ("Z3A.01", "offered"), ("Z3A.00", "not_for_this_patient")])
def test_gestational_age_from_z3a_codes(code: str, status: str) -> None:
    """ICD-10-CM Z3A.NN states the weeks of gestation; Z3A.00 (not specified) counts as possibly 20 or more."""
    assert adjunct(run(sex="female", conditions=[code]), "ibuprofen").status == status
