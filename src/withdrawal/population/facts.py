"""From staged FHIR rows to one facts row per patient: SQL shared by both engines.

Each engine stages the NDJSON into six flat relations with the same columns (its own JSON
functions, see ``duckdb_engine.py`` and ``spark_engine.py``):

* ``pat(patient_id, birth_date DATE, sex)``
* ``cond(patient_id, code, clinical, verification, onset DATE, abatement DATE)``, one row per coding
* ``med(patient_id, status, start_date DATE, end_date DATE, rx_code, text, dose_value, dose_unit,
  frequency, period, period_unit)`` for MedicationRequest and MedicationStatement
* ``alg(patient_id, clinical, verification, rx_code, text)``
* ``obs(patient_id, status, loinc, effective DATE, value, value_code)``

Codes and names are mapped onto the knowledge base by the per-patient code itself
(:func:`withdrawal.patient.resolve`) over the *distinct* values only, which the engines join back
(``cond_map``, ``med_map``, ``alg_map``). How FHIR statuses and dates become "active" or "stopped
N days ago" is decided here, once, for both engines:

* Condition: counted when clinicalStatus is absent, active, recurrence or relapse, the
  verificationStatus is not refuted or entered-in-error, onset is not after the as-of date and
  abatement (if any) is after it.
* MedicationRequest (authoredOn, dispenseRequest.validityPeriod.end) and MedicationStatement
  (effectivePeriod): ignored unless status is active, on-hold, stopped or completed and the start is
  not after the as-of date. Active or on-hold with no end or an end after the as-of date: active.
  Otherwise stopped, ``as_of - end`` days ago; with no end date, today (the strict reading of the
  per-patient format).
* AllergyIntolerance: clinicalStatus absent or active, not refuted or entered-in-error.
* Observation (final, amended or corrected, not after the as-of date): the latest creatinine
  clearance (LOINC 2164-2; ties: the lower value) is ``crcl``; the latest pregnancy status
  (LOINC 82810-3) within 280 days, if SNOMED 77386006 (pregnant), sets ``pregnant_obs``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.patient import MedicationIn, PatientIn, resolve, resolve_drug_name
from withdrawal.population.mme import MmeTable
from withdrawal.population.rules import Dialect, window_column

RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CRCL_LOINC = "2164-2"
PREGNANCY_STATUS_LOINC = "82810-3"
PREGNANT_SCT = "77386006"
PREGNANCY_OBS_DAYS = 280
FINAL_OBS = ("final", "amended", "corrected")
MED_ACTIVE = ("active", "on-hold")
MED_ENDED = ("stopped", "completed")


def condition_map(codes: Iterable[str], kb: KnowledgeBase) -> list[tuple[str, str]]:
    """(code, condition key) for every code the per-patient screen recognises."""
    out: list[tuple[str, str]] = []
    for code in sorted(set(codes)):
        if not code.strip():
            continue
        keys = resolve(PatientIn(age_years=0, conditions=(code,)), kb).conditions
        out.extend((code, k) for k in sorted(keys))
    return out


def medication_map(pairs: Iterable[tuple[str | None, str | None]], kb: KnowledgeBase) -> list[tuple[str, str, str]]:
    """(rx_code or '', text or '', drug id): the per-patient resolution of code, then name."""
    out: list[tuple[str, str, str]] = []
    for code, text in sorted({(c or "", t or "") for c, t in pairs}):
        rx = code if code.isascii() and code.isdigit() else None
        name = text if text.strip() else None
        if rx is None and name is None:
            continue
        med = MedicationIn(name=name, rxnorm=rx)
        drugs = resolve(PatientIn(age_years=0, medications=(med,)), kb).active_drugs
        out.extend((code, text, d) for d in sorted(drugs))
    return out


def allergy_map(pairs: Iterable[tuple[str | None, str | None]], kb: KnowledgeBase) -> list[tuple[str, str, str]]:
    """(rx_code or '', text or '', drug id): RxNorm code if known, else the name as in ``resolve``."""
    out: list[tuple[str, str, str]] = []
    for code, text in sorted({(c or "", t or "") for c, t in pairs}):
        by_code = kb.drug_rxcui.get(code)
        drugs = (by_code,) if by_code else (resolve_drug_name(text, kb) if text.strip() else ())
        out.extend((code, text, d) for d in sorted(set(drugs)))
    return out


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def facts_sql(d: Dialect, as_of: date, table: MmeTable, windows: Iterable[int]) -> str:
    """SELECT producing the ``facts`` relation the compiled rules read."""
    asof = f"DATE '{as_of.isoformat()}'"
    factors = table.by_drug()
    mme_case = " ".join(
        f"WHEN '{drug}' THEN mg_day * 1000.0 / 24.0 * {f.factor!r}" if f.dose_unit == "mcg_per_h"
        else f"WHEN '{drug}' THEN mg_day * {f.factor!r}"
        for drug, f in sorted(factors.items())
    )
    period_days = ("CASE period_unit WHEN 'd' THEN period WHEN 'h' THEN period / 24.0 "
                   "WHEN 'wk' THEN period * 7.0 WHEN 'mo' THEN period * 30.0 END")
    mg_day = (
        "CASE WHEN dose_unit = 'mg' AND frequency IS NOT NULL AND " + period_days + " > 0 "
        "THEN dose_value * frequency / (" + period_days + ") "
        "WHEN dose_unit IN ('ug/h', 'mcg/h', '[mcg]/h') THEN dose_value * 24 / 1000 END"
    )
    windows = tuple(windows)
    win_cols = ", ".join(
        f"{d.agg_set('drug', f'state = {chr(39)}active{chr(39)} OR days <= {w}')} AS {window_column(w)}"
        for w in windows
    )
    win_out = "".join(f", coalesce(m.{window_column(w)}, {d.empty_list()}) AS {window_column(w)}" for w in windows)
    return f"""
WITH p AS (
  SELECT patient_id, min(birth_date) AS birth_date, min(sex) AS sex FROM pat
  WHERE patient_id IS NOT NULL GROUP BY patient_id
),
c AS (
  SELECT cond.patient_id, {d.agg_set('cond_map.key', 'TRUE')} AS conditions
  FROM cond JOIN cond_map ON cond.code = cond_map.code
  WHERE (clinical IS NULL OR clinical IN ('active', 'recurrence', 'relapse'))
    AND (verification IS NULL OR verification NOT IN ('refuted', 'entered-in-error'))
    AND (onset IS NULL OR onset <= {asof})
    AND (abatement IS NULL OR abatement > {asof})
  GROUP BY cond.patient_id
),
ms AS (
  SELECT med.patient_id, med_map.drug,
    CASE WHEN status IN {_in(MED_ACTIVE)} AND (end_date IS NULL OR end_date > {asof}) THEN 'active'
         ELSE 'stopped' END AS state,
    CASE WHEN status IN {_in(MED_ACTIVE)} AND (end_date IS NULL OR end_date > {asof}) THEN NULL
         WHEN end_date IS NULL OR end_date > {asof} THEN 0
         ELSE {d.days_between('end_date', asof)} END AS days,
    {mg_day} AS mg_day
  FROM med JOIN med_map ON coalesce(med.rx_code, '') = med_map.rx_code AND coalesce(med.text, '') = med_map.text
  WHERE status IN {_in(MED_ACTIVE + MED_ENDED)} AND (start_date IS NULL OR start_date <= {asof})
),
m AS (
  SELECT patient_id,
    {d.agg_set('drug', "state = 'active'")} AS drugs_active,
    {win_cols},
    sum(CASE WHEN state = 'active' THEN CASE drug {mme_case} ELSE 0.0 END END) AS mme
  FROM ms GROUP BY patient_id
),
a AS (
  SELECT alg.patient_id, {d.agg_set('alg_map.drug', 'TRUE')} AS allergies
  FROM alg JOIN alg_map ON coalesce(alg.rx_code, '') = alg_map.rx_code AND coalesce(alg.text, '') = alg_map.text
  WHERE (clinical IS NULL OR clinical = 'active')
    AND (verification IS NULL OR verification NOT IN ('refuted', 'entered-in-error'))
  GROUP BY alg.patient_id
),
k AS (
  SELECT patient_id, value AS crcl FROM (
    SELECT patient_id, value,
      row_number() OVER (PARTITION BY patient_id ORDER BY effective DESC, value ASC) AS rn
    FROM obs
    WHERE loinc = '{CRCL_LOINC}' AND status IN {_in(FINAL_OBS)} AND value IS NOT NULL
      AND effective IS NOT NULL AND effective <= {asof}
  ) AS ranked_obs WHERE rn = 1
),
g AS (
  SELECT patient_id, (value_code = '{PREGNANT_SCT}') AS pregnant FROM (
    SELECT patient_id, value_code,
      row_number() OVER (PARTITION BY patient_id ORDER BY effective DESC, value_code ASC) AS rn
    FROM obs
    WHERE loinc = '{PREGNANCY_STATUS_LOINC}' AND status IN {_in(FINAL_OBS)} AND value_code IS NOT NULL
      AND effective IS NOT NULL AND effective <= {asof}
      AND {d.days_between('effective', asof)} <= {PREGNANCY_OBS_DAYS}
  ) AS ranked_preg WHERE rn = 1
)
SELECT p.patient_id,
  CASE WHEN p.birth_date IS NULL OR p.birth_date > {asof} THEN NULL
       ELSE year({asof}) - year(p.birth_date)
         - CASE WHEN month({asof}) < month(p.birth_date)
                  OR (month({asof}) = month(p.birth_date) AND day({asof}) < day(p.birth_date)) THEN 1 ELSE 0 END
  END AS age,
  coalesce(p.sex, 'unknown') AS sex,
  coalesce(g.pregnant, FALSE) AS pregnant_obs,
  coalesce(c.conditions, {d.empty_list()}) AS conditions,
  coalesce(m.drugs_active, {d.empty_list()}) AS drugs_active{win_out},
  coalesce(a.allergies, {d.empty_list()}) AS allergies,
  k.crcl AS crcl,
  round(coalesce(m.mme, 0.0), 3) AS mme
FROM p
LEFT JOIN c ON c.patient_id = p.patient_id
LEFT JOIN m ON m.patient_id = p.patient_id
LEFT JOIN a ON a.patient_id = p.patient_id
LEFT JOIN k ON k.patient_id = p.patient_id
LEFT JOIN g ON g.patient_id = p.patient_id
"""


def summary_sql(flag_columns: Iterable[str]) -> str:
    """Counts by age band and sex over the ``screened`` relation; same SQL in both engines."""
    flags = ", ".join(f"sum(CASE WHEN {c} THEN 1 ELSE 0 END) AS {c}" for c in flag_columns)
    return (
        "SELECT age_band, sex, count(*) AS patients, "
        "sum(CASE WHEN tramadol_active THEN 1 ELSE 0 END) AS tramadol_active, "
        "sum(CASE WHEN tramadol_blocked THEN 1 ELSE 0 END) AS tramadol_blocked, "
        "sum(CASE WHEN high_mme THEN 1 ELSE 0 END) AS high_mme, "
        f"{flags} FROM screened GROUP BY age_band, sex ORDER BY age_band, sex"
    )
