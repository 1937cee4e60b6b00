"""Typical-subject predictions against published summary statistics.

Source of every reference value: the project research notes, research/tramadol_pk_params.json,
``validation_targets`` (study named in each test). Rule (issue 3): the typical subject lies
within mean +/- SD, or within 20% of the mean where no SD is given. Salt: Lintz and the Swiss
label report tramadol as HCl, so model base concentrations are divided by 0.8784 there; other
studies are taken as base. ``calibration`` marks targets the model was fitted to (not
independent). Targets an honest model cannot meet are strict xfails with the reason.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from withdrawal.pk.calibrate import peak
from withdrawal.pk.closed_form import concentrations, tramadol_modes
from withdrawal.pk.models import tramadol_defaults
from withdrawal.pk.params import Patient, adjust_for_patient, load_tramadol

DATA = load_tramadol()
SALT = DATA.salt_base_per_hcl
P = tramadol_defaults()
LIQUID = {"KA": DATA.t("KA_LIQUID"), "F": DATA.t("F_LIQUID"),
          "FP": (1 - DATA.t("F_LIQUID")) * DATA.t("FM")}
LAG_LIQUID = DATA.t("ALAG_LIQUID")
T = np.linspace(0, 240, 48001)


def within(value: float, mean: float, sd: float | None) -> bool:
    tol = 0.2 * mean if sd is None else sd
    return mean - tol <= value <= mean + tol


def curves(release: str = "ir", dose_mg: float = 100.0, **o: float) -> tuple[np.ndarray, ...]:
    q = {k: np.array([v]) for k, v in {**P, **o}.items()}
    ct, cm = concentrations(tramadol_modes(q, release), [(0.0, dose_mg)], T)
    return ct[0], cm[0]


def auc(c: np.ndarray) -> float:
    return float(np.trapezoid(c, T))


def half_life(c: np.ndarray) -> float:
    i, j = np.searchsorted(T, [48, 72])
    return math.log(2) / (math.log(c[i] / c[j]) / (T[j] - T[i]))


def iv_bolus(dose_mg: float) -> np.ndarray:
    """Tramadol base after an IV bolus (or s.c. taken as IV): one compartment."""
    return dose_mg * SALT * 1000 / P["V"] * np.exp(-P["CL"] / P["V"] * T)


# LINTZ1986: 100 mg HCl capsules p.o. vs i.v., 10 healthy men (concentrations as HCl)
def test_lintz1986_cmax() -> None:
    assert within(peak("ir", "tramadol")[1] / SALT, 280, 49)


def test_lintz1986_tmax() -> None:
    assert within(peak("ir", "tramadol")[0], 2.0, None)


def test_lintz1986_auc_oral() -> None:
    assert within(auc(curves()[0]) / SALT, 2488, 774)


def test_lintz1986_auc_iv_calibration() -> None:
    assert within(auc(iv_bolus(100)) / SALT, 3709, 977)


def test_lintz1986_bioavailability_calibration() -> None:
    assert within(P["F"], 0.68, 0.13)


# LINTZ1998: 100 mg drops p.o. vs i.v., 8 healthy (as HCl); drops = liquid parameters + lag
def test_lintz1998_cmax() -> None:
    assert within(peak("ir", "tramadol", **LIQUID)[1] / SALT, 308, 89)


@pytest.mark.xfail(strict=True, reason="absorption half-life 0.34 h and lag 0.23 h from the "
                   "same study give tmax 1.66 h with a 5.2 h elimination half-life; the mean "
                   "tmax 1.20 +/- 0.39 h is an average of individual peaks, not reachable by "
                   "the typical curve without a distribution phase")
def test_lintz1998_tmax() -> None:
    assert within(peak("ir", "tramadol", **LIQUID)[0] + LAG_LIQUID, 1.20, 0.39)


def test_lintz1998_auc_oral() -> None:
    assert within(auc(curves(**LIQUID)[0]) / SALT, 2390, 712)


def test_lintz1998_auc_iv() -> None:
    assert within(auc(iv_bolus(100)) / SALT, 3490, 510)


def test_lintz1998_half_life_oral_and_iv() -> None:
    assert within(half_life(curves(**LIQUID)[0]), 5.5, 0.9)
    assert within(half_life(iv_bolus(100)), 5.2, 0.8)


# ROUINI2009: single 100 mg oral, 24 healthy (12 M / 12 F)
@pytest.mark.xfail(strict=True, reason="the parent is calibrated to Lintz 1986 (the only "
                   "oral+IV crossover giving F and CL jointly): Cmax 222 ng/mL base (253 as HCl) "
                   "is below Rouini's 349.3 - 76.7; the two cohorts differ")
def test_rouini2009_tramadol_cmax() -> None:
    assert within(peak("ir", "tramadol")[1], 349.3, 76.7)


@pytest.mark.xfail(strict=True, reason="absorption half-life 0.6 h (Swiss label) gives tmax "
                   "2.12 h, just above Rouini's 1.6 + 0.4 h")
def test_rouini2009_tramadol_tmax() -> None:
    assert within(peak("ir", "tramadol")[0], 1.6, 0.4)


def test_rouini2009_m1_cmax_calibration() -> None:
    assert within(peak("ir", "m1")[1], 88.7, 30.3)


def test_rouini2009_m1_tmax_calibration() -> None:
    assert within(peak("ir", "m1")[0], 2.4, 0.7)


# SWISS_FI: label statements, single oral doses (Grünenthal data, as HCl)
def test_swiss_label_capsule_cmax_and_tmax() -> None:
    tmax, cmax = peak("ir", "tramadol")
    assert within(cmax / SALT, 280, 49)
    assert within(tmax, 1.63, 1.21)


def test_swiss_label_effervescent_as_solution() -> None:
    tmax, cmax = peak("ir", "tramadol", **LIQUID)  # dissolved before intake: solution kinetics
    assert within(cmax / SALT, 270.6, 36.01)
    assert within(tmax + LAG_LIQUID, 1.17, 0.55)


def test_swiss_label_liquid() -> None:
    tmax, cmax = peak("ir", "tramadol", **LIQUID)
    assert within(cmax / SALT, 309, 90)
    assert within(tmax + LAG_LIQUID, 1.17, 0.55)


def test_swiss_label_retard_100mg() -> None:
    tmax, cmax = peak("er", "tramadol")
    assert within(cmax / SALT, 141, 40)
    assert within(tmax, 4.9, None)  # calibration: KREL_ER was fitted to this tmax


@pytest.mark.xfail(strict=True, reason="observed retard Cmax is less than dose-proportional "
                   "(260 vs 2 x 141); a linear model predicts 343 ng/mL > 260 + 62")
def test_swiss_label_retard_200mg() -> None:
    assert within(2 * peak("er", "tramadol")[1] / SALT, 260, 62)


# VANDENBOSSCHE2015: healthy adults, IR (dose-normalisation basis unknown: only basis-free
# quantities are compared)
def test_vandenbossche2015_oral_clearance_per_kg() -> None:
    cl_f = P["CL"] / P["F"] * 1000 / 60 / 70  # mL/min/kg for a 70 kg adult (assumption)
    assert within(cl_f, 9.06, None)


@pytest.mark.xfail(strict=True, reason="M1/tramadol AUC ratio 0.44 versus 0.346 (636.13/1838.29): "
                   "M1 is fitted to Rouini's M1 peak, whose M1:parent ratio differs")
def test_vandenbossche2015_m1_to_tramadol_auc_ratio() -> None:
    ct, cm = curves()
    assert within(auc(cm) / auc(ct), 636.13 / 1838.29, None)


@pytest.mark.xfail(strict=True, reason="M1/tramadol Cmax ratio 0.40 versus 0.23 (52.14/226.92); "
                   "same cause as the AUC ratio")
def test_vandenbossche2015_m1_to_tramadol_cmax_ratio() -> None:
    assert within(peak("ir", "m1")[1] / peak("ir", "tramadol")[1], 52.14 / 226.92, None)


# DOONEY2014: 50 mg subcutaneous, 8 healthy men (taken as an IV bolus: no s.c. absorption data)
@pytest.mark.xfail(strict=True, reason="no s.c. absorption parameters and no distribution "
                   "phase: the bolus model peaks at 216 ng/mL at time 0 versus 470 +/- 130 at "
                   "20.6 min")
def test_dooney2014_cmax_and_tmax() -> None:
    c = iv_bolus(50)
    assert within(float(c.max()) / 1000, 0.47, 0.13)
    assert within(float(T[c.argmax()]) * 60, 20.6, 18.8)


@pytest.mark.xfail(strict=True, reason="AUC 1629 ng*h/mL base (1855 as HCl) versus 2917 +/- 1250: "
                   "clearance from Lintz 1986 is higher than in this cohort; salt basis not stated")
def test_dooney2014_auc() -> None:
    assert within(auc(iv_bolus(50)) * 60 / 1000, 175, 75)


def test_dooney2014_mean_residence_time() -> None:
    assert within(P["V"] / P["CL"] * 60, 466, 224)


# NESKOVIC2021: postoperative ICU, 100 mg IV q6h: median 4.8 h (range 3.2-7.6)
def test_neskovic2021_half_life_within_reported_range() -> None:
    assert 3.2 <= half_life(iv_bolus(100)) <= 7.6


# US label (pk_drugscom_half_life, pk_us_ultram_er)
def test_us_label_tramadol_half_life() -> None:
    assert within(half_life(curves()[0]), 6.3, 1.4)


@pytest.mark.xfail(strict=True, reason="M1 elimination is fitted fast (t1/2 2.0 h) to reach the "
                   "observed M1 tmax 2.4 h, so M1 declines with the parent (5.2 h); 7.4 h would "
                   "need a slow M1 peripheral compartment the summary data cannot identify")
def test_us_label_m1_apparent_half_life() -> None:
    assert within(half_life(curves()[1]), 7.4, 1.4)


@pytest.mark.xfail(strict=True, reason="first-order release fitted to the Swiss retard tmax "
                   "does not give flip-flop kinetics; Ultram ER half-life 7.9 h not reproduced")
def test_us_ultram_er_tramadol_half_life() -> None:
    assert within(half_life(curves("er")[0]), 7.9, None)


# AJVR2011 (citing its ref. 11): M1 Cmax after 100 mg oral by phenotype; FDA label (SNPedia)
def _m1_cmax(phenotype: str) -> float:
    adj = adjust_for_patient(Patient(phenotype))  # type: ignore[arg-type]
    return peak("ir", "m1", MCL=adj.cl_mult, MF=adj.m1_formation_mult)[1]


def test_ajvr2011_m1_cmax_poor_metabolizer() -> None:
    assert within(_m1_cmax("poor"), 18, None)


def test_ajvr2011_m1_cmax_extensive_metabolizer() -> None:
    assert within(_m1_cmax("normal"), 106, None)


@pytest.mark.xfail(strict=True, reason="UM M1 formation x2.25 (Stamer 2007 early (+)-M1 AUC) "
                   "gives M1 Cmax 195 ng/mL versus about 132 in this secondary source")
def test_ajvr2011_m1_cmax_ultrarapid_metabolizer() -> None:
    assert within(_m1_cmax("ultrarapid"), 132, None)


def test_fda_label_poor_metabolizer_tramadol_20_percent_higher() -> None:
    ct_pm = curves(MCL=adjust_for_patient(Patient("poor")).cl_mult)[0]
    assert auc(ct_pm) / auc(curves()[0]) == pytest.approx(1.2, rel=0.01)


@pytest.mark.xfail(strict=True, reason="label says M1 about 40% lower in PM; the model follows "
                   "Allegaert 2015/Stamer 2007/Enggaard 2006 (formation 19% of normal), giving "
                   "about 80% lower: the sources disagree")
def test_fda_label_poor_metabolizer_m1_40_percent_lower() -> None:
    adj = adjust_for_patient(Patient("poor"))
    cm_pm = curves(MCL=adj.cl_mult, MF=adj.m1_formation_mult)[1]
    assert within(auc(cm_pm) / auc(curves()[1]), 0.6, None)
