"""FHIR R4 to the patient model: codes, statuses, dates, and a messy Synthea-style Bundle."""

from __future__ import annotations

import json
from datetime import date

import pytest
from svc_synthea import LOINC, RX, SCT, bundle, condition, medication_request, q6h

from withdrawal.assess import assess_patient
from withdrawal.errors import InputError
from withdrawal.fhir import age_on, daily_dose_mg, is_fhir, strengths_mg, to_patient
from withdrawal.knowledge.loader import KnowledgeBase

AS_OF = date(2026, 11, 27)


def test_synthea_bundle_assesses_without_error(kb: KnowledgeBase) -> None:
    b, _ = bundle(noise=600)
    assert len(b["entry"]) > 600
    mapped = to_patient(b, kb, as_of=AS_OF)
    p = mapped.patient
    assert p.age_years == 55 and p.sex == "female"
    assert p.weight_kg is not None
    # refuted epilepsy and resolved sinusitis are not conditions; obesity finding is reported as unrecognised
    assert "seizure_disorder" not in p.conditions
    assert not any("sinusitis" in c for c in p.conditions)
    answer = assess_patient(p, kb).to_dict()
    assert any("162864005" in u for u in answer["unrecognised"])
    assert answer["tramadol"]["verdict"] in {"acceptable", "caution", "avoid", "contraindicated"}
    # combination product resolved to both ingredients, as stopped
    combo = next(m for m in p.medications if "oxyCODONE" in (m.name or ""))
    assert combo.status == "stopped" and combo.days_since_stopped is not None
    assert answer["recognised"][combo.name] == ["acetaminophen", "oxycodone"]
    # entered-in-error order is dropped, malformed resources never crash
    assert not any("Ibuprofen" in (m.name or "") for m in p.medications)


def test_bundle_is_detected_and_json_round_trips(kb: KnowledgeBase) -> None:
    b, _ = bundle(noise=10)
    assert is_fhir(b) and is_fhir(b["entry"][0:1]) is False
    again = json.loads(json.dumps(b))
    assert to_patient(again, kb, as_of=AS_OF).patient == to_patient(b, kb, as_of=AS_OF).patient


def test_active_tramadol_with_dose_and_icd10_seizure_gives_avoid(kb: KnowledgeBase) -> None:
    import random

    rng = random.Random(1)
    b, pid = bundle(
        noise=5,
        extra=[
            medication_request(rng, "x", "835603", "tramadol hydrochloride 50 MG Oral Tablet", "active", dosage=q6h(2)),
            condition(rng, "x", "G40.909", "Epilepsy, unspecified", system="http://hl7.org/fhir/sid/icd-10-cm"),
        ],
    )
    for e in b["entry"]:
        r = e.get("resource") if isinstance(e, dict) else None
        if isinstance(r, dict) and r.get("subject", {}).get("reference") == "urn:uuid:x":
            r["subject"] = {"reference": f"urn:uuid:{pid}"}
    p = to_patient(b, kb, as_of=AS_OF).patient
    tram = next(m for m in p.medications if "tramadol" in (m.name or ""))
    assert tram.dose_mg_per_day == 400 and tram.status == "active"
    assert "seizure_disorder" in p.conditions
    a = assess_patient(p, kb)
    assert "seizure_risk" in a.screen.codes


def test_maoi_stopped_within_14_days_is_contraindicated(kb: KnowledgeBase) -> None:
    res = [
        {"resourceType": "Patient", "id": "p", "birthDate": "1980-01-01", "gender": "male"},
        {
            "resourceType": "MedicationStatement",
            "status": "stopped",
            "subject": {"reference": "Patient/p"},
            "medicationCodeableConcept": {"coding": [{"system": RX, "code": "8123"}]},
            "effectivePeriod": {"start": "2026-10-01", "end": "2026-11-20"},
        },
    ]
    p = to_patient(res, kb, as_of=AS_OF).patient
    assert p.medications[0].days_since_stopped == 7
    assert assess_patient(p, kb).screen.verdict == "contraindicated"


def test_stopped_order_without_end_date_counts_as_stopped_today(kb: KnowledgeBase) -> None:
    res = [
        {"resourceType": "Patient", "birthDate": "1980-01-01"},
        {
            "resourceType": "MedicationRequest",
            "status": "stopped",
            "medicationCodeableConcept": {"text": "Nardil 15 MG Oral Tablet"},
        },
    ]
    p = to_patient(res, kb, as_of=AS_OF).patient
    assert p.medications[0].status == "stopped" and p.medications[0].days_since_stopped is None
    assert "maoi" in assess_patient(p, kb).screen.codes


@pytest.mark.parametrize(
    ("obs", "field", "value"),
    [
        (
            {
                "code": {"coding": [{"system": LOINC, "code": "82810-3"}]},
                "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA15173-0"}]},
            },
            "pregnant",
            True,
        ),
        (
            # LOINC 63895-7 Breastfeeding status, LA29252-6 Currently breastfeeding (https://loinc.org/63895-7/)
            {
                "code": {"coding": [{"system": LOINC, "code": "63895-7"}]},
                "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA29252-6"}]},
            },
            "breastfeeding",
            True,
        ),
        (
            {"code": {"coding": [{"system": LOINC, "code": "63895-7"}]}, "valueBoolean": True},
            "breastfeeding",
            True,
        ),
        (
            {"code": {"coding": [{"system": LOINC, "code": "2164-2"}]}, "valueQuantity": {"value": 22}},
            "creatinine_clearance_ml_min",
            22.0,
        ),
        (
            {"code": {"coding": [{"system": LOINC, "code": "33914-3"}]}, "valueQuantity": {"value": 45}},
            "creatinine_clearance_ml_min",
            45.0,
        ),
        (
            {
                "code": {"coding": [{"system": LOINC, "code": "79714-9"}], "text": "CYP2D6 phenotype"},
                "valueCodeableConcept": {"text": "Ultrarapid metabolizer"},
            },
            "cyp2d6_phenotype",
            "ultrarapid",
        ),
        (
            {"code": {"text": "CYP2D6 metabolizer status"}, "valueCodeableConcept": {"text": "Poor metabolizer"}},
            "cyp2d6_phenotype",
            "poor",
        ),
        (
            {
                "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
                "valueQuantity": {"value": 154, "code": "[lb_av]"},
            },
            "weight_kg",
            69.85,
        ),
    ],
)
def test_observations_map_to_fields(kb: KnowledgeBase, obs: dict, field: str, value: object) -> None:
    res = [
        {"resourceType": "Patient", "birthDate": "1990-02-03", "gender": "female"},
        {"resourceType": "Observation", "status": "final", "effectiveDateTime": "2026-09-01", **obs},
    ]
    assert getattr(to_patient(res, kb, as_of=AS_OF).patient, field) == value


def test_latest_observation_wins_and_the_more_recent_of_clearance_and_egfr(kb: KnowledgeBase) -> None:
    """The renal value is the more recent of the latest clearance and the latest eGFR (the clearance won
    whenever there was one: an old clearance hid a recent eGFR; tests/core/test_fhir_start_and_renal.py)."""

    def obs(code: str, v: float, when: str) -> dict:
        return {
            "resourceType": "Observation",
            "status": "final",
            "effectiveDateTime": when,
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": v},
        }

    res = [
        {"resourceType": "Patient", "birthDate": "1950-01-01"},
        obs("2164-2", 80, "2020-01-01"),
        obs("2164-2", 25, "2025-01-01"),
        obs("33914-3", 90, "2026-01-01"),
        {**obs("2164-2", 5, "2026-02-01"), "status": "entered-in-error"},
    ]
    p = to_patient(res, kb, as_of=AS_OF).patient
    assert (p.creatinine_clearance_ml_min, p.renal_measure) == (90, "egfr")
    p = to_patient(res[:3] + res[4:], kb, as_of=AS_OF).patient
    assert (p.creatinine_clearance_ml_min, p.renal_measure) == (25, "creatinine_clearance")


def test_allergy_by_rxnorm_and_text(kb: KnowledgeBase) -> None:
    res = [
        {"resourceType": "Patient", "birthDate": "1990-01-01"},
        {"resourceType": "AllergyIntolerance", "code": {"coding": [{"system": RX, "code": "10689"}]}},
        {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "code": {"text": "codeine"},
        },
    ]
    p = to_patient(res, kb, as_of=AS_OF).patient
    assert p.allergies == ("tramadol",)
    assert "hypersensitivity" in assess_patient(p, kb).screen.codes


def test_snomed_condition_and_provisional_status_count(kb: KnowledgeBase) -> None:
    code = next(iter(kb.conditions["seizure_disorder"].snomed))
    res = [
        {"resourceType": "Patient", "birthDate": "1990-01-01"},
        {
            "resourceType": "Condition",
            "verificationStatus": {"coding": [{"code": "provisional"}]},
            "code": {"coding": [{"system": SCT, "code": code}]},
        },
    ]
    assert to_patient(res, kb, as_of=AS_OF).patient.conditions == ("seizure_disorder",)


def test_missing_birth_date_and_several_patients_are_refused(kb: KnowledgeBase) -> None:
    with pytest.raises(InputError, match="birthDate"):
        to_patient([{"resourceType": "Patient"}], kb, as_of=AS_OF)
    two = [
        {"resourceType": "Patient", "id": "a", "birthDate": "1990-01-01"},
        {"resourceType": "Patient", "id": "b", "birthDate": "1991-01-01"},
    ]
    with pytest.raises(InputError, match="more than one Patient"):
        to_patient(two, kb, as_of=AS_OF)
    assert to_patient(two, kb, as_of=AS_OF, patient_id="b").patient.age_years == 35


def test_other_patients_resources_are_skipped(kb: KnowledgeBase) -> None:
    res = [
        {"resourceType": "Patient", "id": "a", "birthDate": "1990-01-01"},
        {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/zzz"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G40.909"}]},
        },
    ]
    mapped = to_patient(res, kb, as_of=AS_OF)
    assert mapped.patient.conditions == () and mapped.skipped == ("Condition/?: another patient",)


def test_helpers(kb: KnowledgeBase) -> None:
    assert age_on(date(2000, 2, 29), date(2026, 2, 28)) == 25
    assert (
        daily_dose_mg(
            [
                {
                    "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": {"value": 100, "unit": "mg"}}],
                }
            ],
            None,
            kb,
        )
        == 200
    )
    assert daily_dose_mg([{"timing": {}}], 50, kb) is None


def test_strengths_of_combination_products(kb: KnowledgeBase) -> None:
    s = strengths_mg("Acetaminophen 325 MG / traMADol Hydrochloride 37.5 MG Oral Tablet", kb)
    assert s == {"acetaminophen": 325.0, "tramadol": 37.5}


def test_cli_assess_accepts_a_bundle(tmp_path, kb: KnowledgeBase) -> None:
    from typer.testing import CliRunner

    from withdrawal.cli import app

    b, _ = bundle(noise=50)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(b))
    out = CliRunner().invoke(app, ["assess", str(path), "--format", "json", "--no-simulate"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["tramadol"]["verdict"]


def test_latest_breastfeeding_status_wins_and_reaches_the_screen(kb: KnowledgeBase) -> None:
    """Breastfeeding is a reason against tramadol (label 8.2); the newest recorded status counts."""

    def status(day: str, answer: str) -> dict:
        return {
            "resourceType": "Observation",
            "status": "final",
            "effectiveDateTime": day,
            "code": {"coding": [{"system": LOINC, "code": "63895-7"}]},
            "valueCodeableConcept": {"coding": [{"system": LOINC, "code": answer}]},
        }

    patient = {"resourceType": "Patient", "birthDate": "1995-05-05", "gender": "female"}
    feeding = to_patient([patient, status("2026-10-01", "LA29253-4"), status("2026-11-20", "LA29252-6")], kb,
                         as_of=AS_OF).patient
    assert feeding.breastfeeding is True
    assert "breastfeeding" in assess_patient(feeding, kb).screen.codes
    weaned = to_patient([patient, status("2026-10-01", "LA29252-6"), status("2026-11-20", "LA29253-4")], kb,
                        as_of=AS_OF).patient
    assert weaned.breastfeeding is False
    assert "breastfeeding" not in assess_patient(weaned, kb).screen.codes
    unknown = to_patient([patient, status("2026-11-20", "LA4489-6")], kb, as_of=AS_OF).patient
    assert unknown.breastfeeding is False  # not recorded: the default


def test_same_day_status_answers_prefer_yes(kb: KnowledgeBase) -> None:
    """Two pregnancy statuses on one day, "pregnant" first: the stricter reading holds whatever the order."""
    patient = {"resourceType": "Patient", "birthDate": "1995-05-05", "gender": "female"}

    def status(answer: str) -> dict:
        return {
            "resourceType": "Observation",
            "status": "final",
            "effectiveDateTime": "2026-11-20",
            "code": {"coding": [{"system": LOINC, "code": "82810-3"}]},
            "valueCodeableConcept": {"coding": [{"system": SCT, "code": answer}]},
        }

    for order in (["77386006", "60001007"], ["60001007", "77386006"]):
        p = to_patient([patient, *(status(a) for a in order)], kb, as_of=AS_OF).patient
        assert p.pregnant is True, order


def test_a_medication_that_cannot_be_identified_is_named_not_dropped(kb: KnowledgeBase) -> None:
    """An active order pointing to a Medication the data does not hold (a FHIR search answers orders
    without them), or with an empty concept, is named as not screened and keeps the verdict at caution;
    with the Medication in the Bundle it is read."""
    from withdrawal.fhir.mapping import unresolved_medication_references

    patient = {"resourceType": "Patient", "id": "p", "birthDate": "1980-01-01"}
    order = {"resourceType": "MedicationRequest", "id": "o1", "status": "active", "intent": "order",
             "subject": {"reference": "Patient/p"}, "medicationReference": {"reference": "Medication/m1"}}
    empty = {"resourceType": "MedicationStatement", "id": "s1", "status": "active",
             "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": {}}  # fmt: skip
    tramadol = {"resourceType": "Medication", "id": "m1",
                "code": {"coding": [{"system": RX, "code": "10689", "display": "tramadol"}]}}  # fmt: skip
    assert unresolved_medication_references([patient, order]) == ["Medication/m1"]
    assert unresolved_medication_references([patient, order, tramadol]) == []
    a = assess_patient(to_patient([patient, order, empty], kb, as_of=date(2026, 12, 5)).patient, kb)
    assert a.screen.verdict == "caution" and a.patient.unresolved
    named = " ".join(a.to_dict()["not_screened"])
    assert "MedicationRequest/o1: medication not identified (Medication/m1 not in the data)" in named
    assert "MedicationStatement/s1: medication not identified (no code or name)" in named
    read = to_patient([patient, order, tramadol], kb, as_of=date(2026, 12, 5)).patient
    assert [m.rxnorm for m in read.medications] == ["10689"]
