"""Seeded synthetic FHIR R4 Bulk Data export with per-patient ground truth.

Patients, their conditions, medication orders and statements, allergies and observations are
drawn with NumPy, a chunk of patients at a time, and written as NDJSON lines (optionally gzip)
plus a Bulk Data manifest. Prevalences are plausible for a US adult primary-care population but
deliberately enriched for the rare combinations the screen looks for, so that a few thousand
patients exercise every flag. RxNorm codes come from the knowledge base; some medications are
written by name only (brands, drugs without an RxCUI) to exercise name resolution.

The ground truth (``ground_truth.parquet``) is the per-patient screen
(:class:`~withdrawal.population.per_patient.PatientEvaluator`, i.e. ``screen_tramadol``) run on a
``PatientIn`` built from the latent facts as they were written, independently of the engines.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from withdrawal.errors import InputError
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.knowledge.models import Sex
from withdrawal.knowledge.population import DoseUnitConversion, MmeTable
from withdrawal.patient import MedicationIn, PatientIn
from withdrawal.population.compiler import option_treatments
from withdrawal.population.per_patient import PatientEvaluator, PatientScreen

RESOURCE_TYPES = ("Patient", "Condition", "MedicationRequest", "MedicationStatement", "AllergyIntolerance",
                  "Observation")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CRCL_LOINC = "2164-2"
PREGNANCY_STATUS_LOINC = "82810-3"
PREGNANT_SCT = "77386006"
NOT_PREGNANT_SCT = "60001007"
PREGNANT_LOINC_ANSWER = "LA15173-0"
BREASTFEEDING_STATUS_LOINC = "63895-7"
BREASTFEEDING_YES = "LA29252-6"
BREASTFEEDING_NO = "LA29253-4"
TRUTH_FILE = "ground_truth.parquet"

# condition key or noise label -> (icd10cm, snomed or None, display, prevalence, adults_only)
CONDITIONS: tuple[tuple[str, str, str | None, str, float, bool], ...] = (
    ("opioid_use_disorder", "F11.20", "5602001", "Opioid dependence, uncomplicated", 0.03, True),
    ("seizure_disorder", "G40.909", "84757009", "Epilepsy, unspecified", 0.01, False),
    ("head_injury", "S06.0X0A", None, "Concussion without loss of consciousness", 0.004, False),
    ("suicidal_ideation", "R45.851", "6471006", "Suicidal ideations", 0.006, True),
    ("alcohol_use_disorder", "F10.20", "7200002", "Alcohol dependence, uncomplicated", 0.03, True),
    ("alcohol_withdrawal", "F10.239", None, "Alcohol dependence with withdrawal", 0.002, True),
    ("copd", "J44.9", "13645005", "Chronic obstructive pulmonary disease", 0.04, True),
    ("sleep_apnea", "G47.33", "78275009", "Obstructive sleep apnea", 0.04, False),
    ("acute_severe_asthma", "J45.51", None, "Severe persistent asthma with exacerbation", 0.003, False),
    ("cirrhosis", "K74.60", "19943007", "Cirrhosis of liver", 0.005, True),
    ("hyponatremia", "E87.1", "89627008", "Hyponatremia", 0.005, False),
    ("gi_obstruction", "K56.609", None, "Intestinal obstruction", 0.001, False),
    ("adrenal_insufficiency", "E27.40", "386584007", "Adrenal insufficiency", 0.001, False),
    ("respiratory_depression", "J96.00", None, "Acute respiratory failure", 0.001, False),
    ("cns_infection", "G03.9", None, "Meningitis, unspecified", 0.001, False),
    ("hypertension", "I10", "38341003", "Essential hypertension", 0.25, True),
    ("diabetes", "E11.9", "44054006", "Type 2 diabetes mellitus", 0.10, True),
    ("low_back_pain", "M54.50", None, "Low back pain", 0.08, True),
)

# drug id -> (doses in mg, or in the rate unit of its MME factor (fentanyl: mcg/h), times a day)
_OPIOID_DOSES: dict[str, tuple[tuple[float, ...], tuple[int, ...]]] = {
    "tramadol": ((50, 100), (2, 3, 4)),
    "oxycodone": ((5, 10, 15, 20, 30), (2, 3, 4)),
    "hydrocodone": ((5, 7.5, 10), (3, 4, 6)),
    "codeine": ((30, 60), (3, 4)),
    "morphine": ((15, 30, 60), (2, 3)),
    "hydromorphone": ((2, 4, 8), (3, 4)),
    "tapentadol": ((50, 100), (2, 3)),
    "oxymorphone": ((5, 10), (2, 3)),
    "methadone": ((20, 40, 60, 80, 100, 120), (1,)),
    "buprenorphine": ((8, 16), (1,)),
    "fentanyl": ((12, 25, 50, 75, 100), (1,)),
}
DRUGS: tuple[tuple[str, float], ...] = (
    ("tramadol", 0.04), ("oxycodone", 0.025), ("hydrocodone", 0.025), ("codeine", 0.01), ("morphine", 0.006),
    ("hydromorphone", 0.004), ("fentanyl", 0.004), ("tapentadol", 0.002), ("oxymorphone", 0.001),
    ("sertraline", 0.04), ("fluoxetine", 0.025), ("citalopram", 0.02), ("escitalopram", 0.025),
    ("paroxetine", 0.01), ("venlafaxine", 0.012), ("duloxetine", 0.015), ("amitriptyline", 0.01),
    ("nortriptyline", 0.004), ("trazodone", 0.025), ("mirtazapine", 0.008), ("bupropion", 0.025),
    ("ondansetron", 0.01), ("sumatriptan", 0.006), ("cyclobenzaprine", 0.01),
    ("phenelzine", 0.002), ("selegiline", 0.002), ("linezolid", 0.001),
    ("alprazolam", 0.02), ("lorazepam", 0.015), ("diazepam", 0.01), ("clonazepam", 0.015),
    ("gabapentin", 0.04), ("pregabalin", 0.01), ("zolpidem", 0.015),
    ("carbamazepine", 0.004), ("phenytoin", 0.003), ("warfarin", 0.012), ("erythromycin", 0.002),
    ("quinidine", 0.0005), ("ketoconazole", 0.0005), ("clonidine", 0.01), ("hydroxyzine", 0.01),
    ("promethazine", 0.006), ("naloxone", 0.004), ("naltrexone", 0.001),
)
# medicines outside the knowledge base: (RxCUI, name, prevalence)
NOISE_DRUGS: tuple[tuple[str, str, float], ...] = (
    ("29046", "lisinopril 10 MG Oral Tablet", 0.15),
    ("83367", "atorvastatin 20 MG Oral Tablet", 0.15),
    ("6809", "metformin hydrochloride 500 MG Oral Tablet", 0.08),
)
_BENZOS = ("alprazolam", "lorazepam", "diazepam", "clonazepam")
_SSRIS = ("sertraline", "fluoxetine", "citalopram", "escitalopram", "paroxetine")


@dataclass(frozen=True)
class SynthReport:
    out: Path
    patients: int
    resources: dict[str, int]
    files: tuple[Path, ...]
    truth: Path | None
    as_of: date


@dataclass
class _Med:
    drug: str | None  # None: outside the knowledge base
    code: str | None
    text: str
    state: str  # active | stopped | ignored
    days: int  # days since stopped (stopped)
    dose: float | None  # mg per dose, or a rate in its MME factor's unit (_rate_unit: fentanyl's mcg/h)
    freq: int
    rate: bool = False  # dose is a rate (written as a patch, in ug/h)


@dataclass
class _Latent:
    pid: str
    sex: Sex
    birth: date
    age: int
    pregnant_obs: bool = False
    breastfeeding_obs: bool = False
    conditions: list[str] = field(default_factory=list)  # codes as written (active ones)
    meds: list[_Med] = field(default_factory=list)
    allergies: list[str] = field(default_factory=list)  # names of active allergies
    crcl: float | None = None


def age_on(birth: date, as_of: date) -> int:
    """Completed years on ``as_of`` (the engines compute the same from birthDate)."""
    return as_of.year - birth.year - (1 if (as_of.month, as_of.day) < (birth.month, birth.day) else 0)


class _Writers:
    def __init__(self, out: Path, compress: bool, stack: ExitStack) -> None:
        self.out, self.compress, self.stack = out, compress, stack
        self.handles: dict[str, IO[str]] = {}
        self.counts: dict[str, int] = dict.fromkeys(RESOURCE_TYPES, 0)
        self.paths: dict[str, Path] = {}

    def write(self, rtype: str, lines: list[str]) -> None:
        if not lines:
            return
        fh = self.handles.get(rtype)
        if fh is None:
            name = f"{rtype}.ndjson" + (".gz" if self.compress else "")
            path = self.out / name
            if self.compress:
                raw = self.stack.enter_context(gzip.open(path, "wb", compresslevel=1))
                fh = self.stack.enter_context(io.TextIOWrapper(raw, encoding="utf-8", newline="\n"))
            else:
                fh = self.stack.enter_context(path.open("w", encoding="utf-8", newline="\n", buffering=1 << 20))
            self.handles[rtype], self.paths[rtype] = fh, path
        fh.write("\n".join(lines))
        fh.write("\n")
        self.counts[rtype] += len(lines)


def _coding(system: str, code: str, display: str) -> str:
    return json.dumps({"system": system, "code": code, "display": display})


def _status(system_tail: str, code: str) -> str:
    return ('{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/' + system_tail + '","code":"'
            + code + '"}]}')


def synthesize(
    out: Path,
    n: int,
    *,
    seed: int = 0,
    as_of: date = date(2026, 1, 1),
    compress: bool = False,
    manifest: bool = True,
    truth: bool = True,
    chunk: int = 50_000,
    progress: Callable[[int], None] | None = None,
    kb: KnowledgeBase | None = None,
) -> SynthReport:
    """Write ``n`` synthetic patients under ``out``; ``progress`` gets the patients done so far."""
    if n < 1:
        raise InputError("n", "must be at least 1", value=n)
    if chunk < 1:
        raise InputError("chunk", "must be at least 1", value=chunk)
    kb = kb or default_kb()
    out.mkdir(parents=True, exist_ok=True)
    for old in (*out.glob("*.ndjson"), *out.glob("*.ndjson.gz")):
        old.unlink()
    rng = np.random.default_rng(seed)
    # NOTE: a second stream for facts added later (breastfeeding, coded answers), so the
    # first stream, and every export made before them, stays as it was.
    rng_extra = np.random.default_rng([seed, 1])
    evaluator = PatientEvaluator(kb) if truth else None
    cache: dict[tuple[Any, ...], PatientScreen] = {}
    truth_path = out / TRUTH_FILE
    truth_writer: pq.ParquetWriter | None = None
    with ExitStack() as stack:
        writers = _Writers(out, compress, stack)
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            patients = _draw(rng, start, size, as_of, kb)
            _emit(writers, patients, as_of, rng, kb, rng_extra)
            if evaluator is not None:
                table = _truth_table(patients, evaluator, cache)
                if truth_writer is None:
                    truth_writer = stack.enter_context(pq.ParquetWriter(truth_path, table.schema))
                truth_writer.write_table(table)
            if progress is not None:
                progress(start + size)
    files = tuple(writers.paths[t] for t in RESOURCE_TYPES if t in writers.paths)
    if manifest:
        _write_manifest(out, as_of, writers)
    else:
        (out / "manifest.json").unlink(missing_ok=True)
    return SynthReport(out=out, patients=n, resources={k: v for k, v in writers.counts.items() if v},
                       files=files, truth=truth_path if truth else None, as_of=as_of)


def _write_manifest(out: Path, as_of: date, writers: _Writers) -> None:
    doc = {
        "transactionTime": f"{as_of.isoformat()}T00:00:00Z",
        "request": "https://example.org/fhir/$export",
        "requiresAccessToken": False,
        "output": [
            {"type": t, "url": writers.paths[t].name, "count": writers.counts[t]}
            for t in RESOURCE_TYPES if t in writers.paths
        ],
        "error": [],
    }
    (out / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


# --- drawing the latent population ---------------------------------------------------------


def _draw(rng: np.random.Generator, start: int, n: int, as_of: date, kb: KnowledgeBase) -> list[_Latent]:
    bands = np.array([[0, 11], [12, 17], [18, 34], [35, 49], [50, 64], [65, 74], [75, 95]])
    band = rng.choice(len(bands), size=n, p=[0.13, 0.08, 0.23, 0.19, 0.19, 0.10, 0.08])
    target_age = rng.integers(bands[band, 0], bands[band, 1] + 1)
    offset = rng.integers(0, 365, size=n)
    sex = rng.choice(np.array(["female", "male", "other", "unknown"]), size=n, p=[0.505, 0.489, 0.003, 0.003])
    adult = target_age >= 18
    child_factor = np.where(adult, 1.0, 0.15)
    oud = adult & (target_age <= 75) & (rng.random(n) < 0.03)
    patients: list[_Latent] = []
    as_of_ord = as_of.toordinal()
    for i in range(n):
        birth = date.fromordinal(as_of_ord - int(round(int(target_age[i]) * 365.25)) - int(offset[i]))
        patients.append(_Latent(pid=f"p{start + i:08d}", sex=cast(Any, str(sex[i])), birth=birth,
                                age=age_on(birth, as_of)))

    # conditions
    for key, _icd, _sct, _disp, prev, adults_only in CONDITIONS:
        if key == "opioid_use_disorder":
            idx = np.flatnonzero(oud)
        else:
            p = prev * (adult if adults_only else child_factor)
            idx = np.flatnonzero(rng.random(n) < p)
        for i in idx.tolist():
            patients[i].conditions.append(key)  # replaced by the written code in _emit
    # pregnancy: women 15-45
    fertile = (sex == "female") & (target_age >= 15) & (target_age <= 45)
    preg = np.flatnonzero(fertile & (rng.random(n) < 0.05))
    for i in preg.tolist():
        if rng.random() < 0.5:
            patients[i].conditions.append("pregnancy")
        else:
            patients[i].pregnant_obs = True

    # medications: prevalence, enriched for OUD and tramadol users
    has_opioid = np.zeros(n, dtype=bool)
    on_tramadol = np.zeros(n, dtype=bool)
    for drug, prev in DRUGS:
        p = prev * child_factor
        if drug in _BENZOS:
            p = np.where(oud, p * 3, p)
        if drug in _SSRIS or drug in ("phenelzine", "selegiline", "bupropion", "paroxetine"):
            p = np.where(on_tramadol, p * 3, p)
        if drug == "naloxone":
            p = np.where(oud, 0.35, np.where(has_opioid, 0.08, p))
        idx = np.flatnonzero(rng.random(n) < p)
        for i in idx.tolist():
            patients[i].meds.append(_draw_med(rng, drug, kb))
        if drug == "tramadol":
            on_tramadol[idx] = True
        if drug in _OPIOID_DOSES:
            has_opioid[idx] = True
    for drug, prev in (("buprenorphine", 0.35), ("methadone", 0.2), ("naltrexone", 0.07)):
        for i in np.flatnonzero(oud & (rng.random(n) < prev)).tolist():
            patients[i].meds.append(_draw_med(rng, drug, kb))
    # enrichment: tramadol with an MAOI around the 14-day window, so small samples hold the rare flag
    for i in np.flatnonzero(adult & (rng.random(n) < 0.01)).tolist():
        patients[i].meds.append(_draw_med(rng, "tramadol", kb))
        maoi = _draw_med(rng, str(rng.choice(["phenelzine", "selegiline", "linezolid"])), kb)
        if maoi.state == "stopped":
            maoi.days = int(rng.integers(10, 19))
        patients[i].meds.append(maoi)
    for code, text, prev in NOISE_DRUGS:
        for i in np.flatnonzero(rng.random(n) < prev * adult).tolist():
            patients[i].meds.append(_Med(None, code, text, "active", 0, 10.0, 1))

    # allergies
    for name, prev in (("tramadol", 0.004), ("codeine", 0.005), ("penicillin", 0.08)):
        for i in np.flatnonzero(rng.random(n) < prev).tolist():
            patients[i].allergies.append(name)

    # creatinine clearance: a quarter of adults, more of the old; about 5% of those below 30
    tested = np.flatnonzero((adult & (rng.random(n) < 0.25)) | ((target_age >= 65) & (rng.random(n) < 0.4)))
    values = np.clip(rng.lognormal(np.log(75), 0.45, size=len(tested)), 4, 160)
    boundary = rng.random(len(tested)) < 0.01
    values = np.where(boundary, 30.0, np.round(values, 1))
    for i, v in zip(tested.tolist(), values.tolist(), strict=True):
        patients[i].crcl = float(v)
    return patients


def _draw_med(rng: np.random.Generator, drug: str, kb: KnowledgeBase) -> _Med:
    u = rng.random()
    if u < 0.78:
        state, days = "active", 0
    elif u < 0.90:
        state, days = "stopped", int(rng.integers(0, 31))
    elif u < 0.95:
        state, days = "stopped", int(rng.integers(31, 500))
    else:
        state, days = "ignored", 0
    doses, freqs = _OPIOID_DOSES.get(drug, ((10.0,), (1,)))
    dose: float | None = float(doses[int(rng.integers(len(doses)))])
    freq = int(freqs[int(rng.integers(len(freqs)))])
    if drug in _OPIOID_DOSES and rng.random() < 0.1:
        dose = None
    patch = _rate_unit(drug, kb.mme) is not None
    rxcui = kb.drugs[drug].rxcui
    name = kb.drugs[drug].name
    brands = kb.drugs[drug].brands
    v = rng.random()
    if rxcui is None or v < 0.1:
        # by name only: generic or brand, with strength text
        label = brands[0] if (brands and v < 0.05) else name
        unit = "MCG/HR Transdermal System" if patch else "MG Oral Tablet"
        return _Med(drug, None, f"{label} {dose or 10:g} {unit}", state, days, dose, freq, patch)
    unit = "MCG/HR Transdermal System" if patch else "MG Oral Tablet"
    return _Med(drug, rxcui, f"{name} {dose or 10:g} {unit}", state, days, dose, freq, patch)


# --- writing FHIR resources ----------------------------------------------------------------


def _emit(
    w: _Writers, patients: list[_Latent], as_of: date, rng: np.random.Generator, kb: KnowledgeBase,
    rng_extra: np.random.Generator,
) -> None:
    pat_lines: list[str] = []
    cond_lines: list[str] = []
    mr_lines: list[str] = []
    ms_lines: list[str] = []
    al_lines: list[str] = []
    obs_lines: list[str] = []
    cond_info = {c[0]: c for c in CONDITIONS}
    for p in patients:
        ref = '{"reference":"Patient/' + p.pid + '"}'
        pat_lines.append('{"resourceType":"Patient","id":"' + p.pid + '","gender":"' + p.sex
                         + '","birthDate":"' + p.birth.isoformat() + '"}')
        written: list[str] = []
        pregnant_by_condition = "pregnancy" in p.conditions  # before the keys become written codes
        for j, key in enumerate(p.conditions):
            cid = f"{p.pid}-c{j}"
            onset = (as_of - timedelta(days=int(rng.integers(1, 3000)))).isoformat()
            if key == "pregnancy":
                code, system, disp = "Z34.90", ICD10CM, "Encounter for supervision of normal pregnancy"
                onset = (as_of - timedelta(days=int(rng.integers(1, 200)))).isoformat()
            else:
                _, icd, sct, disp, _, _ = cond_info[key]
                if sct is not None and rng.random() < 0.3:
                    code, system = sct, SNOMED
                else:
                    code, system = icd, ICD10CM
            u = rng.random()
            clinical, verification, extra = "active", "confirmed", ""
            if u < 0.06:  # resolved before as_of: not counted
                clinical = "resolved"
                extra = ',"abatementDateTime":"' + (as_of - timedelta(days=int(rng.integers(1, 400)))).isoformat() + '"'
            elif u < 0.08:
                verification = "entered-in-error"
            elif u < 0.10:  # onset after as_of: not counted
                onset = (as_of + timedelta(days=int(rng.integers(1, 100)))).isoformat()
            else:
                written.append(code)
            status = "" if u > 0.97 else ',"clinicalStatus":' + _status("condition-clinical", clinical)
            cond_lines.append(
                '{"resourceType":"Condition","id":"' + cid + '","subject":' + ref + status
                + ',"verificationStatus":' + _status("condition-ver-status", verification)
                + ',"code":{"coding":[' + _coding(system, code, disp) + '],"text":' + json.dumps(disp) + '}'
                + ',"onsetDateTime":"' + onset + '"' + extra + '}'
            )
        p.conditions = written
        for j, med in enumerate(p.meds):
            _emit_med(p, j, med, ref, as_of, rng, mr_lines, ms_lines)
        for j, name in enumerate(list(p.allergies)):
            u = rng.random()
            clinical, verification = "active", "confirmed"
            if u < 0.05:
                clinical = "inactive"
                p.allergies.remove(name)
            elif u < 0.08:
                verification = "refuted"
                p.allergies.remove(name)
            rx = kb.drugs[name].rxcui if name in kb.drugs else None
            code = ('"coding":[' + _coding(RXNORM, rx, name) + '],' if rx and rng.random() < 0.5 else "")
            al_lines.append(
                '{"resourceType":"AllergyIntolerance","id":"' + f"{p.pid}-a{j}" + '","patient":' + ref
                + ',"clinicalStatus":' + _status("allergyintolerance-clinical", clinical)
                + ',"verificationStatus":' + _status("allergyintolerance-verification", verification)
                + ',"code":{' + code + '"text":"' + name.capitalize() + '"}}'
            )
        if p.crcl is not None:
            day = as_of - timedelta(days=int(rng.integers(0, 300)))
            obs_lines.append(_obs_quantity(f"{p.pid}-o0", ref, day, p.crcl, "final"))
            u = rng.random()
            if u < 0.15:  # an older, different value: the latest counts
                older = day - timedelta(days=int(rng.integers(1, 400)))
                obs_lines.append(_obs_quantity(f"{p.pid}-o1", ref, older, round(p.crcl * 0.4, 1), "final"))
            elif u < 0.2:  # a later one entered in error: ignored
                obs_lines.append(_obs_quantity(f"{p.pid}-o1", ref, min(day + timedelta(days=1), as_of), 12.0,
                                               "entered-in-error"))
        if p.pregnant_obs:
            preg_day = (as_of - timedelta(days=int(rng.integers(0, 120)))).isoformat()
            # pregnant, coded in SNOMED CT or as the LOINC answer (both are read)
            answer = (SNOMED, PREGNANT_SCT) if rng_extra.random() < 0.5 else (LOINC, PREGNANT_LOINC_ANSWER)
            obs_lines.append(_obs_coded(f"{p.pid}-o2", ref, preg_day, PREGNANCY_STATUS_LOINC, "Pregnancy status",
                                        *answer))
        elif p.sex == "female" and 15 <= p.age <= 45 and rng.random() < 0.05:
            preg_day = (as_of - timedelta(days=int(rng.integers(0, 120)))).isoformat()
            obs_lines.append(_obs_coded(f"{p.pid}-o2", ref, preg_day, PREGNANCY_STATUS_LOINC, "Pregnancy status",
                                        SNOMED, NOT_PREGNANT_SCT))
        if p.sex == "female" and 18 <= p.age <= 40 and not p.pregnant_obs and not pregnant_by_condition:
            u = rng_extra.random()
            if u < 0.08:
                day = as_of - timedelta(days=int(rng_extra.integers(0, 200)))
                p.breastfeeding_obs = u < 0.04
                latest = BREASTFEEDING_YES if p.breastfeeding_obs else BREASTFEEDING_NO
                obs_lines.append(_obs_coded(f"{p.pid}-o3", ref, day.isoformat(), BREASTFEEDING_STATUS_LOINC,
                                            "Breastfeeding status", LOINC, latest))
                if rng_extra.random() < 0.3:  # an older, opposite status: the latest counts
                    before = (day - timedelta(days=int(rng_extra.integers(1, 300)))).isoformat()
                    other = BREASTFEEDING_NO if p.breastfeeding_obs else BREASTFEEDING_YES
                    obs_lines.append(_obs_coded(f"{p.pid}-o4", ref, before, BREASTFEEDING_STATUS_LOINC,
                                                "Breastfeeding status", LOINC, other))
    w.write("Patient", pat_lines)
    w.write("Condition", cond_lines)
    w.write("MedicationRequest", mr_lines)
    w.write("MedicationStatement", ms_lines)
    w.write("AllergyIntolerance", al_lines)
    w.write("Observation", obs_lines)


def _obs_quantity(oid: str, ref: str, day: date, value: float, status: str) -> str:
    return ('{"resourceType":"Observation","id":"' + oid + '","status":"' + status + '","subject":' + ref
            + ',"code":{"coding":[{"system":"' + LOINC + '","code":"' + CRCL_LOINC
            + '","display":"Creatinine renal clearance"}]},"effectiveDateTime":"' + day.isoformat()
            + '","valueQuantity":{"value":' + repr(value) + ',"unit":"mL/min","system":"http://unitsofmeasure.org",'
            '"code":"mL/min"}}')


def _obs_coded(oid: str, ref: str, day: str, loinc: str, display: str, value_system: str, value: str) -> str:
    return ('{"resourceType":"Observation","id":"' + oid + '","status":"final","subject":' + ref
            + ',"code":{"coding":[{"system":"' + LOINC + '","code":"' + loinc
            + '","display":"' + display + '"}]},"effectiveDateTime":"' + day
            + '","valueCodeableConcept":{"coding":[{"system":"' + value_system + '","code":"' + value + '"}]}}')


def _emit_med(p: _Latent, j: int, med: _Med, ref: str, as_of: date, rng: np.random.Generator,
              mr_lines: list[str], ms_lines: list[str]) -> None:
    statement = rng.random() < 0.25
    start = as_of - timedelta(days=med.days + int(rng.integers(1, 200)))
    end: date | None = None
    if med.state == "active":
        status = "active" if rng.random() < 0.95 else "on-hold"
        if rng.random() < 0.5:
            end = as_of + timedelta(days=int(rng.integers(1, 90)))
    elif med.state == "stopped":
        end = as_of - timedelta(days=med.days)
        v = rng.random()
        # an active order whose validity ended is stopped too (but not when it ended today)
        status = "active" if (v < 0.15 and med.days > 0) else ("stopped" if v < 0.6 else "completed")
    else:
        status = "cancelled" if statement is False and rng.random() < 0.5 else "entered-in-error"
        if rng.random() < 0.3:  # starts after as_of: ignored whatever the status
            status = "active"
            start = as_of + timedelta(days=int(rng.integers(1, 30)))
    coding = ('"coding":[' + _coding(RXNORM, med.code, med.text) + '],') if med.code else ""
    concept = '{' + coding + '"text":' + json.dumps(med.text) + '}'
    dosage = ""
    if med.dose is not None:
        if med.rate:
            qty = '{"value":' + f"{med.dose:g}" + ',"unit":"ug/h","system":"http://unitsofmeasure.org","code":"ug/h"}'
            dosage = '[{"doseAndRate":[{"doseQuantity":' + qty + '}]}]'
        else:
            qty = '{"value":' + f"{med.dose:g}" + ',"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}'
            dosage = ('[{"timing":{"repeat":{"frequency":' + str(med.freq) + ',"period":1,"periodUnit":"d"}},'
                      '"doseAndRate":[{"doseQuantity":' + qty + '}]}]')
    mid = f"{p.pid}-m{j}"
    if statement:
        period = '{"start":"' + start.isoformat() + '"' + (',"end":"' + end.isoformat() + '"' if end else "") + '}'
        ms_lines.append('{"resourceType":"MedicationStatement","id":"' + mid + '","status":"' + status
                        + '","subject":' + ref + ',"medicationCodeableConcept":' + concept
                        + ',"effectivePeriod":' + period + (',"dosage":' + dosage if dosage else "") + '}')
    else:
        validity = ""
        if end is not None:
            validity = (',"dispenseRequest":{"validityPeriod":{"start":"' + start.isoformat() + '","end":"'
                        + end.isoformat() + '"}}')
        mr_lines.append('{"resourceType":"MedicationRequest","id":"' + mid + '","status":"' + status
                        + '","intent":"order","subject":' + ref + ',"authoredOn":"' + start.isoformat() + '"'
                        + ',"medicationCodeableConcept":' + concept
                        + (',"dosageInstruction":' + dosage if dosage else "") + validity + '}')


# --- ground truth ----------------------------------------------------------------------------


def _rate_unit(drug: str | None, table: MmeTable) -> DoseUnitConversion | None:
    """The conversion of a drug dosed as a rate (its MME factor's unit is not mg/day: a patch's mcg/h),
    else None (a dose in mg, taken so many times a day)."""
    f = table.by_drug().get(drug) if drug is not None else None
    unit = table.dose_unit(f.dose_unit) if f is not None else None
    return unit if unit is not None and not unit.is_mg_per_day else None


def latent_patient_in(p: _Latent, table: MmeTable) -> PatientIn:
    """What the per-patient screen sees of a latent patient: the facts as written, as of as_of; a rate
    becomes mg/day by ``table``'s conversion of its unit."""
    meds: list[MedicationIn] = []
    for m in p.meds:
        if m.state == "ignored":
            continue
        mg_day: float | None = None
        if m.dose is not None:
            rate = _rate_unit(m.drug, table)
            mg_day = rate.to_mg_per_day(m.dose) if rate is not None else m.dose * m.freq
        meds.append(MedicationIn(
            name=m.text, rxnorm=m.code, status="active" if m.state == "active" else "stopped",
            days_since_stopped=float(m.days) if m.state == "stopped" else None, dose_mg_per_day=mg_day,
        ))
    return PatientIn(
        age_years=p.age, sex=p.sex, pregnant=p.pregnant_obs, breastfeeding=p.breastfeeding_obs,
        conditions=tuple(p.conditions),
        medications=tuple(meds), allergies=tuple(p.allergies), creatinine_clearance_ml_min=p.crcl,
    )


def _truth_table(patients: list[_Latent], evaluator: PatientEvaluator,
                 cache: dict[tuple[Any, ...], PatientScreen]) -> pa.Table:
    cols: dict[str, list[Any]] = {k: [] for k in ("patient_id", "age", "sex", "verdict", "codes", "mme",
                                                  "tramadol_active")}
    flag_ids = [f.id for f in evaluator.flags]
    flag_cols: dict[str, list[bool]] = {f"flag_{f}": [] for f in flag_ids}
    option_cols: dict[str, list[list[str]]] = {}
    for p in patients:
        data = latent_patient_in(p, evaluator.table)
        key = (data.age_years, data.pregnant, data.breastfeeding, data.conditions, data.medications,
               data.allergies, data.creatinine_clearance_ml_min)
        res = cache.get(key)
        if res is None:
            res = evaluator(data)
            if len(cache) < 500_000:
                cache[key] = res
        cols["patient_id"].append(p.pid)
        cols["age"].append(p.age)
        cols["sex"].append(p.sex)
        cols["verdict"].append(res.verdict)
        cols["codes"].append(list(res.codes))
        cols["mme"].append(res.mme)
        cols["tramadol_active"].append(res.tramadol_active)
        for f in flag_ids:
            flag_cols[f"flag_{f}"].append(res.flags[f])
        for t, codes in res.options.items():
            option_cols.setdefault(f"option_{t}", []).append(list(codes))
    schema = pa.schema([("patient_id", pa.string()), ("age", pa.int32()), ("sex", pa.string()),
                        ("verdict", pa.string()), ("codes", pa.list_(pa.string())), ("mme", pa.float64()),
                        ("tramadol_active", pa.bool_())] + [(k, pa.bool_()) for k in flag_cols]
                       + [(k, pa.list_(pa.string())) for k in option_cols])
    return pa.table({**cols, **flag_cols, **option_cols}, schema=schema)


def synthesize_varied(
    out: Path,
    n: int,
    *,
    seed: int = 0,
    as_of: date = date(2026, 1, 1),
    truth: bool = True,
    kb: KnowledgeBase | None = None,
) -> SynthReport:
    """Write ``n`` patients drawn from the whole FHIR reading table (``withdrawal.fhir.generate``): every
    status, code, unit, date path and form, medication references and Medication resources included.

    Their truth file is the per-patient reading (``fhir.to_patient`` -> screen and flags), so a bulk run
    on this export is the differential test at any size."""
    import random

    from withdrawal.fhir import to_patient
    from withdrawal.fhir.generate import RecordGenerator

    if n < 1:
        raise InputError("n", "must be at least 1", value=n)
    kb = kb or default_kb()
    out.mkdir(parents=True, exist_ok=True)
    for old in (*out.glob("*.ndjson"), *out.glob("*.ndjson.gz")):
        old.unlink()
    gen = RecordGenerator(kb, as_of, random.Random(seed))
    evaluator = PatientEvaluator(kb) if truth else None
    lines: dict[str, list[str]] = {}
    rows: list[tuple[str, int, str, PatientScreen]] = []
    for i in range(n):
        pid = f"v{i:08d}"
        record = gen.record(pid)
        for res in record:
            lines.setdefault(str(res["resourceType"]), []).append(json.dumps(res, separators=(",", ":")))
        if evaluator is not None:
            data = to_patient(record, kb, as_of=as_of, patient_id=pid).patient
            rows.append((pid, data.age_years, data.sex, evaluator(data)))
    files = []
    for rtype, body in lines.items():
        path = out / f"{rtype}.ndjson"
        path.write_text("\n".join(body) + "\n", encoding="utf-8")
        files.append(path)
    doc = {"transactionTime": f"{as_of.isoformat()}T00:00:00Z", "request": "https://example.org/fhir/$export",
           "requiresAccessToken": False, "error": [],
           "output": [{"type": t, "url": f"{t}.ndjson", "count": len(b)} for t, b in lines.items()]}
    (out / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    truth_path = out / TRUTH_FILE
    if evaluator is not None:
        schema = pa.schema([("patient_id", pa.string()), ("age", pa.int32()), ("sex", pa.string()),
                            ("verdict", pa.string()), ("codes", pa.list_(pa.string())), ("mme", pa.float64()),
                            ("tramadol_active", pa.bool_())]
                           + [(f"flag_{f.id}", pa.bool_()) for f in kb.population_flags]
                           + [(f"option_{t}", pa.list_(pa.string())) for t in option_treatments(kb)])
        table = pa.table({
            "patient_id": [r[0] for r in rows], "age": [r[1] for r in rows], "sex": [r[2] for r in rows],
            "verdict": [r[3].verdict for r in rows], "codes": [list(r[3].codes) for r in rows],
            "mme": [r[3].mme for r in rows], "tramadol_active": [r[3].tramadol_active for r in rows],
            **{f"flag_{f.id}": [r[3].flags[f.id] for r in rows] for f in kb.population_flags},
            **{f"option_{t}": [list(r[3].options[t]) for r in rows] for t in option_treatments(kb)},
        }, schema=schema)
        pq.write_table(table, truth_path)
    else:
        truth_path.unlink(missing_ok=True)
    return SynthReport(out=out, patients=n, resources={t: len(b) for t, b in lines.items()}, files=tuple(files),
                       truth=truth_path if truth else None, as_of=as_of)
