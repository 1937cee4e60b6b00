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
(``cond_map``, ``med_map``, ``alg_map``); the maps carry the KB ids as bit mask words
(:class:`~withdrawal.population.rules.BitLayout`), so a patient's sets are ``bit_or`` aggregates and
every compiled rule test is a ``&`` per word. How FHIR statuses and dates become "active" or "stopped
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
  (LOINC 82810-3) within 280 days, if pregnant (SNOMED 77386006 or LOINC LA15173-0, the answers
  the per-patient mapper reads), sets ``pregnant_obs``; the latest breastfeeding status (LOINC
  63895-7), if LA29252-6 (currently breastfeeding), sets ``breastfeeding_obs``. Only yes/no
  answers count (an "unknown" is passed over, as by the per-patient mapper); on the same day "yes"
  wins. Coded answers only (the first coding of the value that is one of them): a ``valueBoolean``
  is not read here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date

from withdrawal.fhir import codes
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.patient import MedicationIn, PatientIn, resolve, resolve_drug_name
from withdrawal.population.mme import MmeTable
from withdrawal.population.rules import BitLayout, Dialect, window_column

RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CRCL_LOINC = "2164-2"
# The status codes and answers are the per-patient mapper's own (fhir.codes), so both read the same.
PREGNANCY_STATUS = tuple(sorted(codes.PREGNANCY_STATUS))
PREGNANT_ANSWERS = tuple(sorted(codes.PREGNANT_ANSWERS))
NOT_PREGNANT_ANSWERS = tuple(sorted(codes.NOT_PREGNANT_ANSWERS))
BREASTFEEDING_STATUS = tuple(sorted(codes.BREASTFEEDING_STATUS))
BREASTFEEDING_ANSWERS = tuple(sorted(codes.BREASTFEEDING_ANSWERS))
NOT_BREASTFEEDING_ANSWERS = tuple(sorted(codes.NOT_BREASTFEEDING_ANSWERS))
STATUS_ANSWERS = (*PREGNANT_ANSWERS, *NOT_PREGNANT_ANSWERS, *BREASTFEEDING_ANSWERS, *NOT_BREASTFEEDING_ANSWERS)
"""The yes/no answers read from an Observation's value: the engines take the first coding that is one."""
PREGNANCY_OBS_DAYS = 280
FINAL_OBS = ("final", "amended", "corrected")
MED_ACTIVE = ("active", "on-hold")
MED_ENDED = ("stopped", "completed")



def patient_ref_sql(col: str) -> str:
    """SQL for the patient id in a FHIR Reference column (the same text in DuckDB and Spark)."""
    return f"replace(replace({col}.reference, 'Patient/', ''), 'urn:uuid:', '')"


def date_sql(col: str) -> str:
    """SQL for the calendar date of a FHIR date or dateTime string (both dialects)."""
    return f"try_cast(substr({col}, 1, 10) AS DATE)"

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


@dataclass(frozen=True)
class MapTable:
    """A code map for the engines: rows with the KB sets as bit mask words (:class:`BitLayout`)."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type: STRING or BIGINT)
    rows: tuple[tuple[str | int, ...], ...]

    def ddl(self) -> str:
        return ", ".join(f"{n} {t}" for n, t in self.columns)


def map_tables(
    kb: KnowledgeBase,
    layout: BitLayout,
    codes: Iterable[str],
    med_pairs: Iterable[tuple[str | None, str | None]],
    alg_pairs: Iterable[tuple[str | None, str | None]],
) -> tuple[MapTable, MapTable, MapTable]:
    """``cond_map(code, conditions_*)``, ``med_map(rx_code, text, drug, drugs_*)`` (one row per drug, for
    the MME) and ``alg_map(rx_code, text, allergies_*)`` from the distinct values of the export."""
    cwords, dwords = layout.columns("conditions", "conditions"), layout.columns("drugs", "drugs")
    keys: dict[str, set[str]] = {}
    for code, key in condition_map(codes, kb):
        keys.setdefault(code, set()).add(key)
    cond = MapTable("cond_map", (("code", "STRING"), *((c, "BIGINT") for c in cwords)),
                    tuple((code, *layout.masks("conditions", ks)) for code, ks in sorted(keys.items())))
    med = MapTable("med_map", (("rx_code", "STRING"), ("text", "STRING"), ("drug", "STRING"),
                               *((c, "BIGINT") for c in dwords)),
                   tuple((c, t, drug, *layout.masks("drugs", (drug,))) for c, t, drug in medication_map(med_pairs, kb)))
    drugs: dict[tuple[str, str], set[str]] = {}
    for c, t, drug in allergy_map(alg_pairs, kb):
        drugs.setdefault((c, t), set()).add(drug)
    alg = MapTable("alg_map", (("rx_code", "STRING"), ("text", "STRING"),
                               *((c, "BIGINT") for c in layout.columns("allergies", "drugs"))),
                   tuple((c, t, *layout.masks("drugs", ds)) for (c, t), ds in sorted(drugs.items())))
    return cond, med, alg


def sql_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def facts_sql(d: Dialect, as_of: date, table: MmeTable, windows: Iterable[int], layout: BitLayout,
              words: Collection[str] | None = None) -> str:
    """SELECT producing the ``facts`` relation the compiled rules read: one row per patient.

    Every source contributes rows to one ``UNION ALL`` (patients, mapped conditions, medications,
    allergies, observations), aggregated in a single ``GROUP BY patient_id``: sets with ``bit_or``
    over the mask words, the latest observation as the least (days ago, value) pair, the MME as a sum.
    No joins between sources, no lists. ``words``: the set words the rules read (default all); only
    those are aggregated."""
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
    def used(cols: Iterable[str]) -> list[str]:
        return [c for c in cols if words is None or c in words]

    cwords = used(layout.columns("conditions", "conditions"))
    dwords = layout.columns("drugs", "drugs")
    awords = used(layout.columns("allergies", "drugs"))
    win: list[tuple[str, str]] = [(window_column(None), "active")]
    win += [(window_column(w), f"active OR days <= {int(w)}") for w in tuple(windows)]
    win_words = [(f"{col}_{i}", f"CASE WHEN {cond} THEN drugs_{i} END")
                 for col, cond in win for i in range(len(dwords)) if words is None or f"{col}_{i}" in words]

    cols: list[tuple[str, str]] = [("patient_id", "STRING"), ("is_pat", "INT"), ("birth_date", "DATE"),
                                   ("sex", "STRING"), *((c, "BIGINT") for c in cwords),
                                   *((c, "BIGINT") for c, _ in win_words), ("mme_part", "DOUBLE"),
                                   *((c, "BIGINT") for c in awords), ("crcl", "DOUBLE"), ("pregnant", "INT"),
                                   ("breastfeeding", "INT")]

    def branch(exprs: dict[str, str], rest: str) -> str:
        select = ", ".join(f"{exprs[c]} AS {c}" if c in exprs else f"CAST(NULL AS {t}) AS {c}" for c, t in cols)
        return f"SELECT {select} {rest}"

    days_ago = f"CAST({d.days_between('effective', asof)} AS INT)"
    branches = [
        branch({"patient_id": "patient_id", "is_pat": "1", "birth_date": "birth_date", "sex": "sex"}, "FROM pat"),
        "" if not cwords else branch({"patient_id": "cond.patient_id", **{c: f"cond_map.{c}" for c in cwords}}, f"""
  FROM cond JOIN cond_map ON cond.code = cond_map.code
  WHERE (clinical IS NULL OR clinical IN ('active', 'recurrence', 'relapse'))
    AND (verification IS NULL OR verification NOT IN ('refuted', 'entered-in-error'))
    AND (onset IS NULL OR onset <= {asof})
    AND (abatement IS NULL OR abatement > {asof})"""),
        branch({"patient_id": "patient_id", **dict(win_words),
                "mme_part": f"CASE WHEN active THEN CASE drug {mme_case} ELSE 0.0 END END"}, "FROM ms"),
        "" if not awords else branch({"patient_id": "alg.patient_id", **{c: f"alg_map.{c}" for c in awords}}, """
  FROM alg JOIN alg_map ON coalesce(alg.rx_code, '') = alg_map.rx_code AND coalesce(alg.text, '') = alg_map.text
  WHERE (clinical IS NULL OR clinical = 'active')
    AND (verification IS NULL OR verification NOT IN ('refuted', 'entered-in-error'))"""),
        branch({"patient_id": "patient_id", "crcl": "crcl",
                "pregnant": "CASE WHEN preg_rank = 0 THEN 1 END",
                "breastfeeding": "CASE WHEN bf_rank = 0 THEN 1 END"}, "FROM ob"),
    ]
    union = "\n  UNION ALL\n".join(b for b in branches if b)  # a set no test reads: no branch
    sets = [*cwords, *(c for c, _ in win_words), *awords]
    set_aggs = "".join(f"coalesce(bit_or({c}), 0) AS {c}, " for c in sets)
    active = f"(status IN {sql_list(MED_ACTIVE)} AND (end_date IS NULL OR end_date > {asof}))"
    return f"""
WITH ms AS (
  SELECT med.patient_id, med_map.drug, {", ".join(f"med_map.{c}" for c in dwords)},
    {active} AS active,
    CASE WHEN {active} THEN NULL
         WHEN end_date IS NULL OR end_date > {asof} THEN 0
         ELSE {d.days_between('end_date', asof)} END AS days,
    {mg_day} AS mg_day
  FROM med JOIN med_map ON coalesce(med.rx_code, '') = med_map.rx_code AND coalesce(med.text, '') = med_map.text
  WHERE status IN {sql_list(MED_ACTIVE + MED_ENDED)} AND (start_date IS NULL OR start_date <= {asof})
),
oa AS (
  SELECT patient_id, value, value_code, loinc, {days_ago} AS days FROM obs
  WHERE loinc IN {sql_list((CRCL_LOINC, *PREGNANCY_STATUS, *BREASTFEEDING_STATUS))}
    AND status IN {sql_list(FINAL_OBS)}
    AND effective IS NOT NULL AND effective <= {asof} AND patient_id IS NOT NULL
),
ob AS (
  SELECT patient_id,
    {d.min_pair('days', 'value', f"loinc = '{CRCL_LOINC}' AND value IS NOT NULL")} AS crcl,
    {d.min_pair('days', f"CASE WHEN value_code IN {sql_list(PREGNANT_ANSWERS)} THEN 0 ELSE 1 END",
                f"loinc IN {sql_list(PREGNANCY_STATUS)} AND days <= {PREGNANCY_OBS_DAYS} "
                f"AND value_code IN {sql_list(PREGNANT_ANSWERS + NOT_PREGNANT_ANSWERS)}")}
      AS preg_rank,
    {d.min_pair('days', f"CASE WHEN value_code IN {sql_list(BREASTFEEDING_ANSWERS)} THEN 0 ELSE 1 END",
                f"loinc IN {sql_list(BREASTFEEDING_STATUS)} "
                f"AND value_code IN {sql_list(BREASTFEEDING_ANSWERS + NOT_BREASTFEEDING_ANSWERS)}")}
      AS bf_rank
  FROM oa GROUP BY patient_id
),
u AS (
  {union}
),
agg AS (
  SELECT patient_id, min(birth_date) AS birth_date, min(sex) AS sex, {set_aggs}
    sum(mme_part) AS mme,
    max(crcl) AS crcl, max(pregnant) AS pregnant, max(breastfeeding) AS breastfeeding
  FROM u WHERE patient_id IS NOT NULL
  GROUP BY patient_id HAVING max(is_pat) = 1
)
SELECT patient_id,
  CASE WHEN birth_date IS NULL OR birth_date > {asof} THEN NULL
       ELSE year({asof}) - year(birth_date)
         - CASE WHEN month({asof}) < month(birth_date)
                  OR (month({asof}) = month(birth_date) AND day({asof}) < day(birth_date)) THEN 1 ELSE 0 END
  END AS age,
  coalesce(sex, 'unknown') AS sex,
  coalesce(pregnant = 1, FALSE) AS pregnant_obs,
  coalesce(breastfeeding = 1, FALSE) AS breastfeeding_obs,
  {"".join(f"{c}, " for c in sets)}crcl,
  round(coalesce(mme, 0.0), 3) AS mme
FROM agg
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
