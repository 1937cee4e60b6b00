"""COWS and SOWS as FHIR: the Questionnaires, reading a QuestionnaireResponse or scored
Observations (and the hours since the last opioid) from a Bundle, and writing the results back
as a transaction Bundle validated with fhir.resources' R4B models."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from withdrawal.assess import assess_patient
from withdrawal.cli import app
from withdrawal.errors import InputError
from withdrawal.fhir.questionnaire import (
    CODE_SYSTEM,
    QUESTIONNAIRE_URL,
    questionnaire,
    read_bedside,
    to_patient_at_bedside,
)
from withdrawal.fhir.writeback import InvalidFhir, system_actions, validate_r4, writeback_bundle
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.pathway import build_pathway

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
COWS = json.loads((EXAMPLES / "patient.json").read_text())["cows"]  # total 17


def _answer(q: dict[str, Any], link: str, score: int) -> dict[str, Any]:
    """The answer a form would store: the Questionnaire's own answerOption coding."""
    item = next(i for i in q["item"] if i["linkId"] == link)
    coding = next(o["valueCoding"] for o in item["answerOption"] if o["valueCoding"]["code"] == f"{link}-{score}")
    return {"valueCoding": coding}


def _response(kb: KnowledgeBase, scores: dict[str, int], *, hours: float | None = None,
              substance: str | None = None, authored: str = "2026-12-04T10:00:00Z") -> dict[str, Any]:  # fmt: skip
    q = questionnaire(kb.scales["cows"], kb.version)
    items: list[dict[str, Any]] = [{"linkId": k, "answer": [_answer(q, k, v)]} for k, v in scores.items()]
    if substance:
        items.append({"linkId": "last_opioid_substance", "answer": [{"valueCoding": {
            "system": "urn:withdrawal:fhir:CodeSystem:substance", "code": substance}}]})  # fmt: skip
    if hours is not None:
        items.append({"linkId": "hours_since_last_opioid_use", "answer": [{"valueDecimal": hours}]})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "qr1",
        "questionnaire": QUESTIONNAIRE_URL.format(scale="cows"),
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "authored": authored,
        "item": items,
    }


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1994-03-01", "gender": "female"}
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in (patient, *resources)]}  # fmt: skip


def test_questionnaires_are_valid_r4_with_every_score(kb: KnowledgeBase) -> None:
    for sid in ("cows", "sows"):
        scale = kb.scales[sid]
        q = questionnaire(scale, kb.version)
        validate_r4(q)
        by_link = {i["linkId"]: i for i in q["item"]}
        for it in scale.items:
            scores = [o["valueCoding"]["extension"][0]["valueDecimal"] for o in by_link[it.id]["answerOption"]]
            assert scores == list(it.allowed_scores)
            assert by_link[it.id]["required"] is True
        assert by_link["hours_since_last_opioid_use"]["type"] == "decimal"
        assert q["url"] == QUESTIONNAIRE_URL.format(scale=sid)
        assert q["code"][0]["system"] == CODE_SYSTEM  # no LOINC code was verified for COWS or SOWS
    assert len(questionnaire(kb.scales["cows"], kb.version)["item"]) == 11 + 2


def test_questionnaire_response_round_trip(kb: KnowledgeBase) -> None:
    """Read from a Bundle, scored, written back, validated."""
    qr = _response(kb, COWS, hours=6, substance="fentanyl")
    bundle = _bundle(qr, {"resourceType": "MedicationStatement", "status": "active", "subject": {"reference": "Patient/p1"},
                          "medicationCodeableConcept": {"text": "alprazolam"}})  # fmt: skip
    mapped = to_patient_at_bedside(bundle, kb, as_of=NOW.date(), now=NOW)
    data = mapped.patient
    assert data.cows == COWS
    assert data.opioid is not None and data.opioid.substance == "fentanyl"
    assert data.opioid.hours_since_last_use == 8.0  # 6 h when recorded at 10:00, counted on to 12:00
    a = assess_patient(data, kb)
    assert a.cows is not None and a.cows.total == 17
    pathway = build_pathway(a)
    assert pathway.starts[0].id == "low_dose"
    reading = read_bedside([qr], kb)
    out = writeback_bundle(a, pathway, patient_ref="Patient/p1", now=NOW, derived_from=reading.sources)
    validate_r4(out)
    assert out["type"] == "transaction"
    kinds = [e["resource"]["resourceType"] for e in out["entry"]]
    assert kinds == ["Observation", *["DetectedIssue"] * len(a.screen.findings), "CarePlan"]
    obs = out["entry"][0]["resource"]
    assert obs["valueInteger"] == 17
    assert obs["derivedFrom"] == [{"reference": "QuestionnaireResponse/qr1"}]
    assert {c["code"]["coding"][0]["code"]: c["valueInteger"] for c in obs["component"]} == {
        f"cows.{k}": v for k, v in COWS.items()
    }
    issues = [e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    assert {i["code"]["coding"][0]["code"] for i in issues} == {f.code for f in a.screen.findings}
    assert all(i["patient"] == {"reference": "Patient/p1"} and i["reference"].startswith("http") for i in issues)
    plan = out["entry"][-1]["resource"]
    assert plan["intent"] == "proposal" and plan["subject"] == {"reference": "Patient/p1"}
    assert "Day 1: buprenorphine 0.5 mg once daily" in plan["activity"][0]["detail"]["description"]
    assert plan["description"] == pathway.chart_note
    assert [s["reference"] for s in plan["supportingInfo"]] == [e["fullUrl"] for e in out["entry"][:-1]]
    assert all(e["request"] == {"method": "POST", "url": e["resource"]["resourceType"]} for e in out["entry"])
    # read back what was written: the score Observation gives the same items
    again = read_bedside([obs], kb)
    assert again.cows == COWS
    actions = system_actions(out)
    assert [x["resource"]["resourceType"] for x in actions] == kinds
    assert "supportingInfo" not in actions[-1]["resource"]  # urn:uuid references resolve only in the Bundle
    for x in actions:
        validate_r4(x["resource"])
    assert {x["type"] for x in actions} == {"create"}


def test_scored_observation_and_hours_observation(kb: KnowledgeBase) -> None:
    comps = [{"code": {"coding": [{"system": CODE_SYSTEM, "code": f"cows.{k}"}]}, "valueInteger": v}
             for k, v in COWS.items()]  # fmt: skip
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "effectiveDateTime": "2026-12-04T11:00:00Z",
           "code": {"coding": [{"system": CODE_SYSTEM, "code": "cows-total"}]}, "valueInteger": 17,
           "component": comps}  # fmt: skip
    hours = {"resourceType": "Observation", "id": "o2", "status": "final", "effectiveDateTime": "2026-12-04T09:00:00Z",
             "code": {"coding": [{"system": CODE_SYSTEM, "code": "hours-since-last-opioid-use"}]},
             "valueQuantity": {"value": 20, "unit": "h", "code": "h"},
             "component": [{"code": {"coding": [{"system": CODE_SYSTEM, "code": "last-opioid-substance"}]},
                            "valueCodeableConcept": {"coding": [{"system": "urn:withdrawal:fhir:CodeSystem:substance",
                                                                 "code": "heroin"}]}}]}  # fmt: skip
    r = read_bedside([obs, hours], kb, now=NOW)
    assert r.cows == COWS and r.sources == {"cows": "Observation/o1"}
    assert (r.substance, r.hours_since_last_use) == ("heroin", 23.0)
    bad = copy.deepcopy(obs)
    bad["valueInteger"] = 20
    with pytest.raises(InputError, match=r"Observation/o1.valueInteger: total 20 differs"):
        read_bedside([bad], kb)
    partial = copy.deepcopy(obs)
    partial["component"] = comps[:5]
    assert read_bedside([partial], kb).cows is None
    assert "without every item score" in read_bedside([partial], kb).skipped[0]


def test_the_latest_response_wins_and_drafts_are_skipped(kb: KnowledgeBase) -> None:
    low = dict.fromkeys(COWS, 0)
    old = _response(kb, COWS, authored="2026-12-04T08:00:00Z")
    new = _response(kb, low, authored="2026-12-04T11:00:00Z")
    new["id"] = "qr2"
    draft = _response(kb, COWS, authored="2026-12-04T11:30:00Z")
    draft["status"] = "in-progress"
    r = read_bedside([old, new, draft], kb)
    assert r.cows == low and r.sources == {"cows": "QuestionnaireResponse/qr2"}
    assert any("in-progress" in s for s in r.skipped)


def test_bad_answers_name_the_field_and_the_allowed_values(kb: KnowledgeBase) -> None:
    qr = _response(kb, COWS)
    qr["item"][0]["answer"] = [{"valueInteger": 3}]  # resting pulse has no 3
    with pytest.raises(
        InputError, match=r"item\[0\] \(resting_pulse_rate\).answer: score not allowed .*allowed: 0, 1, 2, 4"
    ):
        read_bedside([qr], kb)
    qr = _response(kb, COWS)
    qr["item"][1]["linkId"] = "sweaty"
    with pytest.raises(InputError, match="sweaty.*allowed: resting_pulse_rate"):
        read_bedside([qr], kb)
    qr = _response(kb, dict(list(COWS.items())[:10]))
    with pytest.raises(InputError, match="completed' but has no answer for gooseflesh_skin"):
        read_bedside([qr], kb)
    qr = _response(kb, COWS, substance="kratom")
    with pytest.raises(InputError, match="unknown substance.*allowed: heroin"):
        read_bedside([qr], kb)


def test_not_strict_names_a_bad_record_and_goes_on(kb: KnowledgeBase) -> None:
    bad = _response(kb, COWS)
    bad["item"][0]["answer"] = [{"valueInteger": 3}]
    good = _response(kb, COWS, authored="2026-12-04T07:00:00Z")
    good["id"] = "qr0"
    r = read_bedside([bad, good], kb, strict=False)
    assert r.cows == COWS and r.sources == {"cows": "QuestionnaireResponse/qr0"}
    assert r.skipped[0].startswith("QuestionnaireResponse/qr1: ") and "score not allowed" in r.skipped[0]


def test_read_as_of_a_time_leaves_out_what_came_later(kb: KnowledgeBase) -> None:
    early = _response(kb, COWS, hours=10, substance="heroin", authored="2026-12-04T09:00:00Z")
    late = _response(kb, dict.fromkeys(COWS, 0), hours=1, authored="2026-12-04T13:00:00Z")
    late["id"] = "qr-late"
    r = read_bedside([early, late], kb, now=NOW)  # 12:00
    assert r.cows == COWS and r.hours_since_last_use == 13.0
    assert r.skipped == ("QuestionnaireResponse/qr-late: authored after the time read as of",)


def test_another_patients_response_is_not_read(kb: KnowledgeBase) -> None:
    qr = _response(kb, COWS)
    qr["subject"] = {"reference": "Patient/someone-else"}
    assert read_bedside([qr], kb, patient_id="p1").cows is None


def test_a_bundle_reads_only_its_own_patients_scores(kb: KnowledgeBase) -> None:
    """A Bundle's one Patient is the patient read: another patient's COWS response is never scored as
    theirs (it is named as left out), and the reading the record was made with comes with it."""
    mine = _response(kb, COWS, hours=6, substance="heroin")
    theirs = _response(kb, dict.fromkeys(COWS, 0), authored="2026-12-04T11:00:00Z")
    theirs["id"], theirs["subject"] = "qr-other", {"reference": "Patient/someone-else"}
    record = to_patient_at_bedside(_bundle(mine, theirs), kb, as_of=NOW.date(), now=NOW)
    assert record.patient.cows == COWS and record.reading.cows == COWS
    assert record.reading.sources == {"cows": "QuestionnaireResponse/qr1"}
    assert any(s.startswith("QuestionnaireResponse/qr-other") and "another patient" in s for s in record.skipped)
    alone = to_patient_at_bedside(_bundle(theirs), kb, as_of=NOW.date(), now=NOW)
    assert alone.patient.cows is None and alone.reading.cows is None


def test_validation_refuses_what_r4_does_not_allow() -> None:
    with pytest.raises(InvalidFhir, match="code"):
        validate_r4({"resourceType": "Observation", "status": "final"})
    with pytest.raises(InvalidFhir, match="severity"):
        validate_r4({"resourceType": "DetectedIssue", "status": "final", "severity": "severe"})
    with pytest.raises(InvalidFhir, match=r"entry\[0\]"):
        validate_r4({"resourceType": "Bundle", "type": "transaction",
                     "entry": [{"resource": {"resourceType": "CarePlan", "status": "draft", "intent": "wish",
                                             "subject": {"reference": "Patient/1"}}}]})  # fmt: skip


def test_excluded_buprenorphine_writes_no_start(kb: KnowledgeBase) -> None:
    qr = _response(kb, COWS, hours=20, substance="heroin")
    bundle = _bundle(qr, {"resourceType": "MedicationStatement", "status": "active", "subject": {"reference": "Patient/p1"},
                          "medicationCodeableConcept": {"text": "naltrexone"}})  # fmt: skip
    a = assess_patient(to_patient_at_bedside(bundle, kb, as_of=date(2026, 12, 4)).patient, kb)
    out = writeback_bundle(a, build_pathway(a), patient_ref="Patient/p1", now=NOW)
    plan = out["entry"][-1]["resource"]
    codes = [x["detail"]["code"]["coding"][0]["code"] for x in plan["activity"]]
    assert "buprenorphine-start" not in codes and "option-buprenorphine" not in codes
    excluded = next(x for x in plan["activity"] if x["detail"]["code"]["coding"][0]["code"] == "excluded-buprenorphine")
    assert excluded["detail"]["status"] == "cancelled"


def test_cli_reads_the_response_from_a_bundle(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "bundle.json"
    # authored long ago and without hours: the test does not depend on the machine's clock
    path.write_text(json.dumps(_bundle(_response(kb, COWS, substance="heroin", authored="2020-01-01T10:00:00Z"))))
    result = CliRunner().invoke(app, ["assess", str(path), "-f", "json", "--no-simulate", "--pathway", "buprenorphine"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["cows"]["total"] == 17
    assert out["pathway"]["starts"][0]["id"] == "standard"


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["resting_pulse_rate", "resting_pulse_rate-2", "cows-total", CODE_SYSTEM,
                                              "hours_since_last_opioid_use", "2026-12-04T10:00:00Z", "²", "completed"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["item", "linkId", "answer", "valueCoding", "valueInteger", "valueDecimal", "code", "system",
                         "coding", "component", "extension", "url", "status", "authored", "valueQuantity", "value"]),
        inner, max_size=5),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=150, deadline=None, derandomize=True)
@given(body=_json, kind=st.sampled_from(["QuestionnaireResponse", "Observation"]))
def test_malformed_records_raise_only_input_errors(body: Any, kind: str) -> None:
    kb = default_kb()
    res: dict[str, Any] = dict(body) if isinstance(body, dict) else {"item": body}
    res["resourceType"] = kind
    if kind == "QuestionnaireResponse":
        res["questionnaire"] = QUESTIONNAIRE_URL.format(scale="cows")
        res.setdefault("status", "completed")
    else:
        res["status"] = "final"
        res.setdefault("code", {"coding": [{"system": CODE_SYSTEM, "code": "cows-total"}]})
    try:
        read_bedside([res], kb, now=NOW)
    except InputError:
        pass
    assert read_bedside([res], kb, now=NOW, strict=False) is not None


@pytest.mark.parametrize("subject", ["urn:uuid:p1", "Patient/p1/_history/2", "https://ehr.example/fhir/Patient/p1"])
def test_a_response_names_its_patient_as_the_mapper_reads_a_reference(kb: KnowledgeBase, subject: str) -> None:
    """A transaction Bundle's urn:uuid subject, a versioned or an absolute one is the Bundle's patient: the
    bedside reading uses the mapper's reading of a reference (its own copy skipped these responses)."""
    qr = _response(kb, COWS)
    qr["subject"] = {"reference": subject}
    record = to_patient_at_bedside(_bundle(qr), kb, as_of=NOW.date(), now=NOW)
    assert record.patient.cows == COWS and record.reading.sources == {"cows": "QuestionnaireResponse/qr1"}
    padded = _bundle(_response(kb, COWS))
    padded["entry"][0]["resource"]["id"] = " p1 "  # an id with spaces, as _pick_patient reads it
    assert to_patient_at_bedside(padded, kb, as_of=NOW.date(), now=NOW).patient.cows == COWS
