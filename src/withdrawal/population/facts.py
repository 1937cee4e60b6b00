"""From staged FHIR rows to one facts row per patient: SQL shared by both engines.

Each engine stages the NDJSON into flat relations with the same columns (``staging.py``, generated
from ``withdrawal.fhir.reading`` for both engines' JSON functions). Every reading decision (which
statuses count, which dates are tried, look-back windows, tie-breaks) is a row of that table; the
facts SQL below is generated from the same rows, and the readers that work on codes, text and doses
are the per-patient mapper's own (:func:`~withdrawal.fhir.mapping.concept_identity`,
:func:`~withdrawal.fhir.mapping.concept_conditions`, :func:`~withdrawal.fhir.mapping.concept_allergy`,
:func:`~withdrawal.fhir.mapping.daily_dose_mg`), run over the *distinct* staged values only, which
the engines join back (``cond_map``, ``med_map``, ``dose_map``, ``alg_map``, ``obs_map``). The maps carry the KB
ids as bit mask words (:class:`~withdrawal.population.sql.BitLayout`), so a patient's sets are
``bit_or`` aggregates and every compiled rule test is a ``&`` per word. Items the knowledge base
cannot resolve (medications active or stopped within the washout, allergies, conditions inside the
screen's scope) set ``unresolved``, which the incomplete-screen rule reads.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from withdrawal.fhir import reading
from withdrawal.fhir.mapping import (
    MedIdentity,
    allergy_counted,
    concept_allergy,
    concept_conditions,
    concept_identity,
    daily_dose_mg,
    is_cyp2d6,
    observation_coded,
)
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.population.mme import MmeTable, mme_sql
from withdrawal.population.sql import BitLayout, Dialect, window_column

PHENOTYPES: tuple[str, ...] = tuple(p for p, _ in reading.phenotype_words())


def condition_map(pairs: Iterable[tuple[str | None, int | None]],
                  kb: KnowledgeBase) -> list[tuple[str, int, frozenset[str], bool]]:
    """(concept, procedure, condition keys, unresolved) per distinct Condition or Procedure code, by the
    mapper's reading."""
    out: list[tuple[str, int, frozenset[str], bool]] = []
    for concept, procedure in sorted({(c or "", int(p or 0)) for c, p in pairs}):
        entries = concept_conditions(_json(concept) if concept else None, kb, procedure=bool(procedure))
        if not entries:
            continue
        found = [kb.resolve_condition(e) for e in entries]
        keys = frozenset(c.key for c in found if c.key)
        out.append((concept, procedure, keys, any(c.in_scope for c in found)))
    return out


def _json(text: str) -> object:
    """A staged JSON text (as the export wrote it); None when it is not JSON (Spark gives a string value
    unquoted, which no reader accepts)."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def _identity(concept: str, text: str, kb: KnowledgeBase) -> MedIdentity | None:
    """A staged medication (its CodeableConcept's JSON text, else a reference's display) as the mapper reads it."""
    return concept_identity(_json(concept) if concept else ({"text": text} if text else None), kb)


Identities = Mapping[tuple[str, str], MedIdentity | None]
"""The mapper's identity of each distinct staged medication, by (concept, text); None where it has
neither a code nor a name (a reference to a Medication the export does not hold, an empty concept)."""


def medication_identities(pairs: Iterable[tuple[str | None, str | None]], kb: KnowledgeBase) -> dict[
        tuple[str, str], MedIdentity | None]:
    """The identity of every distinct staged (concept, text), in sorted order: read once for both the
    medication map and the dose map."""
    return {(concept, text): _identity(concept, text, kb)
            for concept, text in sorted({(c or "", t or "") for c, t in pairs})}


def medication_map(identities: Identities, kb: KnowledgeBase) -> list[tuple[str, str, str, str]]:
    """(concept, text, drug id or '' when unresolved, product key): the mapper's identity, then the
    knowledge base's :meth:`~withdrawal.knowledge.kb.KnowledgeBase.resolve_medication`.

    A name with words beside its known ingredients that were not screened gets an extra '' row, as
    the patient model names it unresolved; so does a medication with neither a code nor a name."""
    out: list[tuple[str, str, str, str]] = []
    for (concept, text), ident in sorted(identities.items()):
        if ident is None:
            # as the mapper's ``unidentified_medication``: named as not screened, never dropped
            out.append((concept, text, "", ""))
            continue
        found = kb.resolve_medication(ident.rxnorm, ident.name)
        drugs = sorted(set(found.drugs))
        # a product with words left unscreened beside its ingredients is also an unresolved row
        unscreened = [""] if not found.complete else []
        out.extend((concept, text, d, ident.product) for d in (*drugs, *unscreened))
    return out


def dose_map(triples: Iterable[tuple[str | None, str | None, str | None]], identities: Identities,
             kb: KnowledgeBase) -> list[tuple[str, str, str, float]]:
    """(concept, text, dosage, mg/day) for every distinct dosage that can be read: the mapper's
    ``daily_dose_mg`` on the dosage as the export wrote it, with the medication's identity's strength."""
    out: list[tuple[str, str, str, float]] = []
    for concept, text, dosage in sorted({(c or "", t or "", d or "") for c, t, d in triples}):
        ident = identities.get((concept, text))
        if ident is None or not dosage:
            continue
        mg = daily_dose_mg(_json(dosage), ident.strength_mg, kb)
        if mg is not None:
            out.append((concept, text, dosage, mg))
    return out


def allergy_map(concepts: Iterable[tuple[str | None]],
                kb: KnowledgeBase) -> list[tuple[str, frozenset[str], bool]]:
    """(concept, drug ids, unresolved): a known RxNorm code, else the name, as the knowledge base resolves it."""
    out: list[tuple[str, frozenset[str], bool]] = []
    for concept in sorted({c or "" for c, in concepts}):
        entry = concept_allergy(_json(concept) if concept else None, kb)
        if not entry:
            continue
        found = kb.resolve_allergy(entry)
        out.append((concept, frozenset(found.drugs), not found.complete))
    return out


def category_map(categories: Iterable[tuple[str | None]]) -> list[tuple[str, int]]:
    """(category, 1 when counted else 0) for every distinct staged AllergyIntolerance category (its JSON text;
    '' when absent): the mapper's ``allergy_counted``."""
    return [(c, int(allergy_counted(_json(c) if c else None))) for c in sorted({c or "" for c, in categories})]


def observation_map(rows: Iterable[tuple[str | None, str | None, str | None, int | None, str | None]]
                    ) -> list[tuple[str, str, str, int, str, str, int | None, str | None]]:
    """(code, coded, vstring, vbool, component, kind, answer 1/0, phenotype) for every distinct staged
    Observation of a kind the table reads: the mapper's ``observation_coded``."""
    out: list[tuple[str, str, str, int, str, str, int | None, str | None]] = []
    for code, coded, vs, vb, comp in sorted({(a or "", b or "", c or "", -1 if d is None else int(d), e or "")
                                              for a, b, c, d, e in rows}):
        res = {"code": _json(code) if code else None, "valueCodeableConcept": _json(coded) if coded else None,
               "valueString": vs or None, "valueBoolean": {1: True, 0: False}.get(vb),
               "component": _json(comp) if comp else None}
        kind, answer, phenotype = observation_coded(res)
        if kind is not None and (kind != "cyp2d6" or is_cyp2d6(res)):  # a 53040-2 result of another gene: none
            out.append((code, coded, vs, vb, comp, kind, None if answer is None else int(answer), phenotype))
    return out


@dataclass(frozen=True)
class MapTable:
    """A code map for the engines: rows with the KB sets as bit mask words (:class:`BitLayout`)."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type: STRING, BIGINT, INT or DOUBLE)
    rows: tuple[tuple[str | int | float | None, ...], ...]

    def ddl(self) -> str:
        return ", ".join(f"{n} {t}" for n, t in self.columns)


@dataclass(frozen=True)
class Distinct:
    """The distinct staged values the maps are built from."""

    conditions: list[tuple[str | None, int | None]]
    medications: list[tuple[str | None, str | None, str | None]]  # (concept, text, dosage): one pass for both maps
    allergies: list[tuple[str | None]]
    categories: list[tuple[str | None]]
    observations: list[tuple[str | None, str | None, str | None, int | None, str | None]]


VIEWS: dict[str, str] = {
    "pat": "SELECT patient_id, birth_date, birth_first, sex FROM stg_patient",
    "cond": "SELECT * FROM stg_condition UNION ALL SELECT * FROM stg_procedure",
    "alg": "SELECT * FROM stg_allergyintolerance",
    "obs": "SELECT * FROM stg_observation",
    # a medication by reference not resolved in its own row: the export's Medication resource, else the
    # reference's display (as the mapper reads a Bundle's Medication entries)
    "med": """
WITH s AS (
  SELECT * FROM stg_medicationrequest UNION ALL SELECT * FROM stg_medicationstatement
),
r AS (
  SELECT id, max(has_code) AS has_code, min(concept) AS concept
  FROM stg_medication WHERE id IS NOT NULL GROUP BY id
)
SELECT s.patient_id, s.rtype, s.status, s.intent, s.start_date, s.start_late, s.end_date, s.stop_date,
  coalesce(CASE WHEN s.ref IS NULL THEN s.concept WHEN r.has_code THEN r.concept END, '') AS concept,
  coalesce(CASE WHEN s.ref IS NULL THEN s.text WHEN r.has_code THEN NULL ELSE s.ref_display END, '') AS text,
  s.dosage
FROM s LEFT JOIN r ON s.ref = r.id""",
}
"""The staged relations the facts read, from the engines' ``stg_<type>`` (rows that parsed); the same SQL
in both engines."""


DISTINCT_SQL = {
    "conditions": "SELECT DISTINCT concept, procedure FROM cond",
    "medications": "SELECT DISTINCT concept, text, dosage FROM med",
    "allergies": "SELECT DISTINCT concept FROM alg",
    "categories": "SELECT DISTINCT category FROM alg",
    "observations": "SELECT DISTINCT code, coded, vstring, vbool, component FROM obs",
}


def map_tables(kb: KnowledgeBase, layout: BitLayout, values: Distinct) -> tuple[MapTable, ...]:
    """``cond_map``, ``med_map`` (one row per drug, for the MME), ``dose_map``, ``alg_map``, ``cat_map`` and
    ``obs_map``."""
    cwords, dwords = layout.columns("conditions", "conditions"), layout.columns("drugs", "drugs")
    identities = medication_identities(((c, t) for c, t, _ in values.medications), kb)
    cond = MapTable("cond_map", (("concept", "STRING"), ("procedure", "INT"),
                                 *((c, "BIGINT") for c in cwords), ("unresolved", "INT")),
                    tuple((c, p, *layout.masks("conditions", ks), int(u))
                          for c, p, ks, u in condition_map(values.conditions, kb)))
    med = MapTable("med_map", (("concept", "STRING"), ("text", "STRING"), ("drug", "STRING"), ("product", "STRING"),
                               *((c, "BIGINT") for c in dwords), ("unresolved", "INT")),
                   tuple((c, t, drug, prod, *layout.masks("drugs", (drug,) if drug else ()), int(not drug))
                         for c, t, drug, prod in medication_map(identities, kb)))
    dose = MapTable("dose_map", (("concept", "STRING"), ("text", "STRING"), ("dosage", "STRING"),
                                 ("mg_day", "DOUBLE")),
                    tuple(dose_map(values.medications, identities, kb)))
    alg = MapTable("alg_map", (("concept", "STRING"),
                               *((c, "BIGINT") for c in layout.columns("allergies", "drugs")), ("unresolved", "INT")),
                   tuple((c, *layout.masks("drugs", ds), int(u)) for c, ds, u in allergy_map(values.allergies, kb)))
    cat = MapTable("cat_map", (("category", "STRING"), ("counted", "INT")), tuple(category_map(values.categories)))
    obs = MapTable("obs_map", (("code", "STRING"), ("coded", "STRING"), ("vstring", "STRING"), ("vbool", "INT"),
                               ("component", "STRING"), ("kind", "STRING"), ("answer", "INT"), ("phenotype", "STRING")),
                   tuple(observation_map(values.observations)))
    return cond, med, dose, alg, cat, obs


def _status_reading(d: Dialect, rtype: str) -> str:
    return (f"CASE WHEN status IN {d.literals(reading.values(rtype, 'status', 'active'))} THEN 'active' "
            f"WHEN status IN {d.literals(reading.values(rtype, 'status', 'stopped'))} THEN 'stopped' END")


def facts_sql(d: Dialect, as_of: date, table: MmeTable, windows: Iterable[int], layout: BitLayout,
              words: Collection[str] | None = None, washout_days: int = 0) -> str:
    """SELECT producing the ``facts`` relation the compiled rules read: one row per patient.

    The mapped conditions, allergies and the MME parts contribute rows to one ``UNION ALL``, aggregated
    in a single ``GROUP BY patient_id``: sets with ``bit_or`` over the mask words, the MME as a sum
    over products (a product repeated in the record counts once, at its highest dose, as the mapper's
    de-duplication). The medications' window words are aggregated on their own (each aggregate then
    updates only the columns its rows carry: 5 % less CPU for the facts on 1M than one aggregate of
    every source), and so are the observations (the latest as the least (days ago, tie-break) pair).
    The patients are joined to the aggregates, not aggregated with them: the aggregates then hold only
    the patients with a record (15 % less CPU for the facts on 1M).
    ``words``: the set words the rules read (default all); only those are aggregated."""
    asof = f"DATE {d.literal(as_of.isoformat())}"
    o, c, a = "Observation", "Condition", "AllergyIntolerance"

    def used(cols: Iterable[str]) -> list[str]:
        return [col for col in cols if words is None or col in words]

    cwords = used(layout.columns("conditions", "conditions"))
    dwords = layout.columns("drugs", "drugs")
    awords = used(layout.columns("allergies", "drugs"))
    win: list[tuple[str, str]] = [(window_column(None), "active")]
    win += [(window_column(w), f"active OR days <= {int(w)}") for w in tuple(windows)]
    win_words = [(f"{col}_{i}", f"CASE WHEN {cond} THEN drugs_{i} END")
                 for col, cond in win for i in range(len(dwords)) if words is None or f"{col}_{i}" in words]

    cols: list[tuple[str, str]] = [("patient_id", "STRING"), *((col, "BIGINT") for col in cwords),
                                   ("mme_part", "DOUBLE"),
                                   *((col, "BIGINT") for col in awords), ("unres", "INT")]

    def branch(exprs: dict[str, str], rest: str) -> str:
        select = ", ".join(f"{exprs[k]} AS {k}" if k in exprs else f"CAST(NULL AS {t}) AS {k}" for k, t in cols)
        return f"SELECT {select} {rest}"

    undated = reading.UNDATED_DAYS
    # one dated after the as-of date but read as on or before it is as recent as the as-of date (``fhir.mapping``)
    # (greatest skips a NULL in both engines: an undated one is tested first)
    days_ago = (f"CASE WHEN effective IS NULL THEN {undated} "
                f"ELSE greatest(CAST({d.days_between('effective', asof)} AS INT), 0) END")
    cyp_rank = "CASE phenotype " + " ".join(f"WHEN {d.literal(p)} THEN {i}" for i, p in enumerate(PHENOTYPES)) + " END"
    # a result of a kind a rule reads whose value cannot be read, not older than the latest one read of its kind
    # (a clearance's or an eGFR's: the renal value read, the more recent of the two): not screened
    # (``fhir.mapping._observation``, reading.NOT_READ)
    lookback = f"(effective IS NULL OR days <= {reading.PREGNANCY_LOOKBACK_DAYS})"
    value_of = {"pregnancy": "answer", "breastfeeding": "answer", "crcl": "value", "egfr": "value",
                "cyp2d6": "phenotype"}
    newest = ", ".join(
        f"min(CASE WHEN kind = {d.literal(k)} AND {v} IS {neg}NULL{' AND ' + lookback if k == 'pregnancy' else ''} "
        f"THEN days END) AS {k}_{name}"
        for k, v in value_of.items() for name, neg in (("read", "NOT "), ("unread", "")))
    renal_kinds = reading.values(o, "latest", "more recent")
    read_days = {k: f"{k}_read" for k in value_of}
    read_days.update(dict.fromkeys(renal_kinds, "coalesce(least(crcl_read, egfr_read), crcl_read, egfr_read)"))
    unread = " OR ".join(f"({k}_unread <= coalesce({read_days[k]}, {k}_unread))" for k in value_of)
    branches = [
        branch({"patient_id": "patient_id", "unres": "1"}, f"FROM ob WHERE {unread}"),
        branch({"patient_id": "cond.patient_id", "unres": "cond_map.unresolved",
                **{col: f"cond_map.{col}" for col in cwords}}, f"""
  FROM cond JOIN cond_map ON cond.concept = cond_map.concept AND cond.procedure = cond_map.procedure
  WHERE (clinical IS NULL OR clinical IN {d.literals(reading.values(c, 'clinicalStatus', 'counted'))})
    AND (verification IS NULL OR verification NOT IN {d.literals(reading.values(c, 'verificationStatus', 'ignored'))})
    AND (onset IS NULL OR {d.days_between(asof, 'onset')} <= onset_late)
    AND (abatement IS NULL OR {d.days_between(asof, 'abatement')} > least(abatement_late, 0))"""),
        branch({"patient_id": "patient_id", "mme_part": mme_sql(d, table, "drug", "mg_day")}, "FROM mm"),
        branch({"patient_id": "alg.patient_id", "unres": "alg_map.unresolved",
                **{col: f"alg_map.{col}" for col in awords}}, f"""
  FROM alg JOIN alg_map ON alg.concept = alg_map.concept JOIN cat_map ON alg.category = cat_map.category
  WHERE (clinical IS NULL OR clinical NOT IN {d.literals(reading.values(a, 'clinicalStatus', 'ignored'))})
    AND (verification IS NULL OR verification NOT IN {d.literals(reading.values(a, 'verificationStatus', 'ignored'))})
    AND cat_map.counted = 1"""),
    ]
    union = "\n  UNION ALL\n".join(branches)
    sets = [*cwords, *(col for col, _ in win_words), *awords]
    coded = [*cwords, *awords]  # the words of the conditions' and allergies' aggregate (the medications': em)
    set_aggs = "".join(f"coalesce(bit_or({col}), 0) AS {col}, " for col in coded)
    mr, ms = "MedicationRequest", "MedicationStatement"
    ignored_intents = d.literals(reading.values(mr, "intent", "ignored when stopped"))
    # the renal value: the more recent of the latest clearance and the latest eGFR, the same day the lower
    # (``fhir.mapping.renal_of``; an undated one is reading.UNDATED_DAYS old)
    if tuple(renal_kinds) != ("crcl", "egfr"):
        raise ValueError(f"the renal value is read from a clearance and an eGFR, not {renal_kinds}")
    renal = ("(CASE WHEN egfr IS NULL THEN crcl WHEN crcl IS NULL THEN egfr WHEN crcl_read < egfr_read THEN crcl "
             "WHEN egfr_read < crcl_read THEN egfr ELSE least(crcl, egfr) END)")
    # a partial birthDate: the age is the youngest it allows (its last day, or the as-of date when that is
    # later), and one it leaves open (youngest and oldest differ) is not screened (``fhir.mapping.ages_on``)
    youngest, oldest = _age_sql(f"least(birth_date, {asof})", asof), _age_sql("birth_first", asof)
    pheno = "CASE cyp_rank " + " ".join(f"WHEN {i} THEN {d.literal(p)}" for i, p in enumerate(PHENOTYPES)) + " END"
    return f"""
WITH m0 AS (
  SELECT med.*, CASE WHEN rtype = {d.literal(mr)} THEN {_status_reading(d, mr)} ELSE {_status_reading(d, ms)} END AS st
  FROM med WHERE start_date IS NULL OR {d.days_between(asof, 'start_date')} <= start_late
),
m1 AS (
  SELECT m0.*,
    CASE WHEN st = 'stopped' AND rtype = {d.literal(mr)} AND intent IN {ignored_intents} THEN NULL
         WHEN st = 'active' AND end_date IS NOT NULL AND end_date <= {asof} THEN 'stopped'
         ELSE st END AS state
  FROM m0
),
ms AS (
  SELECT m1.patient_id, med_map.drug, med_map.product, med_map.unresolved,
    {", ".join(f"med_map.{col}" for col in dwords)},
    state = 'active' AS active,
    CASE WHEN state = 'active' THEN NULL
         WHEN stop_date IS NULL OR stop_date > {asof} THEN 0
         ELSE {d.days_between('stop_date', asof)} END AS days,
    dose_map.mg_day
  FROM m1 JOIN med_map ON m1.concept = med_map.concept AND m1.text = med_map.text
  LEFT JOIN dose_map ON m1.concept = dose_map.concept AND m1.text = dose_map.text AND m1.dosage = dose_map.dosage
  WHERE state IS NOT NULL
),
mm AS (
  SELECT patient_id, drug, max(mg_day) AS mg_day FROM ms
  WHERE active AND mg_day IS NOT NULL AND drug <> '' GROUP BY patient_id, product, drug
),
oa AS (
  SELECT patient_id, kind, value, answer, phenotype, effective, {days_ago} AS days
  FROM obs JOIN obs_map ON obs.code = obs_map.code AND obs.coded = obs_map.coded
    AND obs.vstring = obs_map.vstring AND obs.vbool = obs_map.vbool AND obs.component = obs_map.component
  WHERE status IN {d.literals(reading.values(o, 'status', 'usable'))}
    AND (effective IS NULL OR {d.days_between(asof, 'effective')} <= effective_late) AND patient_id IS NOT NULL
),
ob AS (
  SELECT patient_id,
    {d.min_pair('days', 'value', "kind = 'crcl' AND value IS NOT NULL")} AS crcl,
    {d.min_pair('days', 'value', "kind = 'egfr' AND value IS NOT NULL")} AS egfr,
    {d.min_pair('days', '1 - answer', "kind = 'pregnancy' AND answer IS NOT NULL AND (effective IS NULL OR days <= "
                + str(reading.PREGNANCY_LOOKBACK_DAYS) + ")")} AS preg_rank,
    {d.min_pair('days', '1 - answer', "kind = 'breastfeeding' AND answer IS NOT NULL")} AS bf_rank,
    {d.min_pair('days', cyp_rank, "kind = 'cyp2d6' AND phenotype IS NOT NULL")} AS cyp_rank,
    {newest}
  FROM oa GROUP BY patient_id
),
u AS (
  {union}
),
ev AS (
  SELECT patient_id, {set_aggs}
    sum(mme_part) AS mme, max(unres) AS unres
  FROM u WHERE patient_id IS NOT NULL
  GROUP BY patient_id
),
em AS (
  SELECT patient_id, {"".join(f"bit_or({e}) AS {col}, " for col, e in win_words)}
    max(CASE WHEN unresolved = 1 AND (active OR days <= {int(washout_days)}) THEN 1 END) AS unres
  FROM ms WHERE patient_id IS NOT NULL GROUP BY patient_id
),
pg AS (
  SELECT patient_id, min(birth_date) AS birth_date, min(birth_first) AS birth_first, min(sex) AS sex FROM pat
  WHERE patient_id IS NOT NULL GROUP BY patient_id
),
agg AS (
  SELECT pg.patient_id, pg.birth_date, pg.birth_first, pg.sex,
    {"".join(f"coalesce(ev.{col}, 0) AS {col}, " for col in coded)}
    {"".join(f"coalesce(em.{col}, 0) AS {col}, " for col, _ in win_words)}
    ev.mme, ob.crcl, ob.egfr, ob.crcl_read, ob.egfr_read, CASE WHEN ob.preg_rank = 0 THEN 1 END AS pregnant,
    CASE WHEN ob.bf_rank = 0 THEN 1 END AS breastfeeding, ob.cyp_rank, greatest(ev.unres, em.unres) AS unres
  FROM pg LEFT JOIN ev ON pg.patient_id = ev.patient_id LEFT JOIN em ON pg.patient_id = em.patient_id
    LEFT JOIN ob ON pg.patient_id = ob.patient_id
)
SELECT patient_id,
  CASE WHEN birth_first IS NULL OR birth_first > {asof} THEN NULL ELSE {youngest} END AS age,
  coalesce(sex, 'unknown') AS sex,
  coalesce(pregnant = 1, FALSE) AS pregnant_obs,
  coalesce(breastfeeding = 1, FALSE) AS breastfeeding_obs,
  coalesce(unres = 1, FALSE) OR coalesce(birth_first <= {asof} AND {youngest} <> {oldest}, FALSE) AS unresolved,
  {pheno} AS cyp2d6,
  {"".join(f"{col}, " for col in sets)}
  CASE WHEN {renal} IS NULL THEN NULL
       ELSE least(greatest({renal}, {reading.CRCL_MIN!r}), {reading.CRCL_MAX!r}) END AS crcl,
  round(coalesce(mme, 0.0), 3) AS mme
FROM agg
"""


def _age_sql(birth: str, asof: str) -> str:
    """Completed years from ``birth`` to ``asof`` (``fhir.mapping.age_on``)."""
    return (f"(year({asof}) - year({birth}) - CASE WHEN month({asof}) < month({birth}) OR (month({asof}) = "
            f"month({birth}) AND day({asof}) < day({birth})) THEN 1 ELSE 0 END)")


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
