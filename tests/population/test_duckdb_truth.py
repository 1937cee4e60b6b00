"""DuckDB screen against the generator's ground truth (the per-patient screen) and the summary."""

from __future__ import annotations

import json
from pathlib import Path

from population_support import AS_OF, N, rows_by_id, truth_by_id

from withdrawal.fhir.reading import READING_VERSION
from withdrawal.knowledge.loader import default_kb
from withdrawal.population.flags import flag_columns
from withdrawal.population.screen import ScreenRun

FLAG_COLUMNS = flag_columns(default_kb())


def _compare(got: dict[str, dict[str, object]], truth: dict[str, dict[str, object]]) -> list[str]:
    problems = []
    for pid, t in truth.items():
        g = got[pid]
        options = [c for c in t if c.startswith("option_")]
        for col in ("verdict", "codes", "mme", "tramadol_active", "age", "sex", *FLAG_COLUMNS, *options):
            if g[col] != t[col]:
                problems.append(f"{pid} {col}: engine {g[col]!r} truth {t[col]!r}")
    return problems


def test_every_flag_occurs_and_is_absent_in_the_sample(export_small: Path) -> None:
    truth = truth_by_id(export_small)
    assert len(truth) == N
    for col in FLAG_COLUMNS:
        positives = sum(1 for r in truth.values() if r[col])
        assert 0 < positives < N, col
    codes = {c for r in truth.values() for c in r["codes"]}
    assert {"maoi", "serotonergic_drug", "pregnancy", "renal_impairment", "hypersensitivity", "age_under_12",
            "opioid_agonist_treatment", "cns_depressant", "cyp2d6_inhibitor", "breastfeeding"} <= codes
    # pregnancy recorded as the LOINC answer LA15173-0 as well as SNOMED CT 77386006 (both read)
    observations = (export_small / "Observation.ndjson").read_text()
    assert '"code":"LA15173-0"' in observations and '"code":"77386006"' in observations
    assert '"code":"LA29252-6"' in observations and '"code":"LA29253-4"' in observations


def test_duckdb_equals_ground_truth(export_small: Path, duck_run: ScreenRun) -> None:
    assert duck_run.patients == N
    assert duck_run.bad_lines == ()
    assert duck_run.as_of == AS_OF  # from the manifest's transactionTime
    got = rows_by_id(duck_run.patients_path)
    assert set(got) == set(truth_by_id(export_small))
    assert _compare(got, truth_by_id(export_small)) == []


def test_summary_counts_match_the_truth(export_small: Path, duck_run: ScreenRun) -> None:
    truth = truth_by_id(export_small)
    summary = json.loads(duck_run.summary_path.read_text())
    assert summary["patients"] == N
    assert "tramadol 0.2" in summary["mme_table"]
    assert summary["fhir_reading_version"] == READING_VERSION and summary["rules_left_out"] == []
    for col in FLAG_COLUMNS:
        n = sum(1 for r in truth.values() if r[col])
        assert summary["overall"]["counts"][col] == (None if 0 < n < 11 else n)  # small counts suppressed
    assert summary["suppression"]["min_cell"] == 11
    assert sum(b["patients"] or 0 for b in summary["by_age_band"].values()) <= N
    assert sum(b["patients"] or 0 for b in summary["by_sex"].values()) <= N
    assert duck_run.chart_path.stat().st_size > 10_000
    assert duck_run.malformed_path.read_text().strip() == "file,line,error"


def test_gzip_without_manifest(tmp_path: Path) -> None:
    from withdrawal.population.screen import run_screen
    from withdrawal.population.synth import synthesize

    export = tmp_path / "bulk"
    report = synthesize(export, 300, seed=11, as_of=AS_OF, compress=True, manifest=False)
    assert not (export / "manifest.json").exists()
    assert all(p.name.endswith(".ndjson.gz") for p in report.files)
    run = run_screen(export, tmp_path / "out", as_of=AS_OF)
    assert _compare(rows_by_id(run.patients_path), truth_by_id(export)) == []
    assert json.loads(run.summary_path.read_text())["manifest"] is False


def test_synth_is_seeded(tmp_path: Path) -> None:
    from withdrawal.population.synth import synthesize

    a = synthesize(tmp_path / "a", 200, seed=5, truth=False)
    b = synthesize(tmp_path / "b", 200, seed=5, truth=False)
    for fa, fb in zip(a.files, b.files, strict=True):
        assert fa.read_bytes() == fb.read_bytes()


def test_same_day_and_unknown_status_answers(tmp_path: Path) -> None:
    """Pregnancy (LOINC 82810-3) and breastfeeding (63895-7) status: the latest yes/no answer counts, an
    "unknown" (LA4489-6) is passed over, on the same day "yes" wins, and the answer is found after a local
    code: as in the per-patient mapper."""
    from withdrawal.population.screen import run_screen

    root = tmp_path / "bulk"
    root.mkdir()

    def obs(oid: str, pid: str, loinc: str, day: str, system: str, code: str) -> str:
        return json.dumps({"resourceType": "Observation", "id": oid, "status": "final",
                           "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": day,
                           "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                           "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}})

    loinc, sct = "http://loinc.org", "http://snomed.info/sct"
    patients = [json.dumps({"resourceType": "Patient", "id": f"w{i}", "gender": "female", "birthDate": "1995-01-01"})
                for i in range(1, 6)]
    local_first = json.loads(obs("o9", "w5", "63895-7", "2025-12-01", loinc, "LA29252-6"))
    local_first["valueCodeableConcept"]["coding"].insert(0, {"system": "urn:example:local", "code": "BF-Y"})
    (root / "Patient.ndjson").write_text("\n".join(patients) + "\n")
    (root / "Observation.ndjson").write_text("\n".join([
        obs("o1", "w1", "63895-7", "2025-12-01", loinc, "LA29252-6"),  # same day: yes and no
        obs("o2", "w1", "63895-7", "2025-12-01", loinc, "LA29253-4"),
        obs("o3", "w2", "82810-3", "2025-12-01", sct, "60001007"),  # same day: not pregnant and pregnant
        obs("o4", "w2", "82810-3", "2025-12-01", sct, "77386006"),
        obs("o5", "w3", "63895-7", "2025-11-01", loinc, "LA29252-6"),  # yes, then "unknown"
        obs("o6", "w3", "63895-7", "2025-12-01", loinc, "LA4489-6"),
        obs("o7", "w4", "63895-7", "2025-11-01", loinc, "LA29252-6"),  # yes, then no
        obs("o8", "w4", "63895-7", "2025-12-01", loinc, "LA29253-4"),
        json.dumps(local_first),  # a local code before the LOINC answer
    ]) + "\n")
    run = run_screen(root, tmp_path / "out", as_of=AS_OF)
    codes = {pid: set(row["codes"]) for pid, row in rows_by_id(run.patients_path).items()}
    assert "breastfeeding" in codes["w1"] and "pregnancy" in codes["w2"] and "breastfeeding" in codes["w3"]
    assert "breastfeeding" not in codes["w4"]
    assert "breastfeeding" in codes["w5"]
