"""The SMART launch and the REST API give the same answer for the same record (one intake, one
assessment): records drawn by the FHIR record generator are put in the test EHR, launched from its
chart over real HTTP, and the page's verdict, findings, options and not-screened list are compared
with ``POST /assess`` on the same resources."""

from __future__ import annotations

import html
import random
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from ehr import App, Ehr

from withdrawal.fhir.generate import RecordGenerator
from withdrawal.knowledge.loader import KnowledgeBase

CLINICIAN = {"username": "clinician", "password": "clinician-demo-pass-1"}
N = 14


def ehr_launch(app: App, ehr: Ehr, pid: str) -> str:
    """An EHR launch from the test EHR's chart of ``pid``; the assessment page's HTML."""
    with httpx.Client(timeout=30) as http:
        chart = http.get(f"{ehr.base}/", params={"patient": pid})
        src = html.unescape(re.search(r"src='([^']+)'", chart.text).group(1))  # type: ignore[union-attr]
        launched = http.get(src)
        assert launched.status_code == 302, launched.text
        binder = launched.headers["set-cookie"].split(";", 1)[0]
        back = http.get(launched.headers["location"])
        assert back.status_code == 302, back.text
        page = http.get(back.headers["location"], headers={"cookie": binder})
    assert page.status_code == 200 and 'id="smart-patient"' in page.text, page.text[:3000]
    return page.text


def seen_on_page(page: str) -> dict[str, Any]:
    verdict = re.search(r'data-verdict="([a-z]+)"', page)
    options = re.search(r'<ol class="options-list" id="options">(.*?)</ol>', page, re.S)
    names = re.findall(r"<h3>\s*(.*?)\s*<span", options.group(1) if options else "", re.S)
    findings = re.search(r'<ul class="findings" id="findings">(.*?)</ul>', page, re.S)
    return {
        "verdict": verdict.group(1) if verdict else None,
        "findings": sorted(set(re.findall(r'data-code="([a-z0-9_]+)"', findings.group(1) if findings else ""))),
        "options": [html.unescape(n) for n in names],
        "incomplete": 'id="not-screened"' in page,
    }


def seen_by_api(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "verdict": answer["tramadol"]["verdict"],
        "findings": sorted({f["code"] for f in answer["tramadol"]["findings"]}),
        "options": [o["name"] for o in answer["options"]],
        "incomplete": bool(answer["not_screened"]),
    }


@pytest.fixture
def records(ehr: Ehr, kb: KnowledgeBase) -> Any:
    """Generated records, each served by the test EHR under its own patient id (removed afterwards)."""
    gen = RecordGenerator(kb, datetime.now(UTC).date(), random.Random(20261205))
    made: dict[str, list[dict[str, Any]]] = {}
    for i in range(N):
        pid = f"gen-{i}"
        made[pid] = gen.record(pid)
    ehr.records.update(made)
    yield made
    for pid in made:
        ehr.records.pop(pid, None)


def test_a_launch_and_the_api_answer_alike(app: App, ehr: Ehr, records: dict[str, list[dict[str, Any]]]) -> None:
    with httpx.Client(base_url=app.base_url, timeout=60) as api:
        token = api.post("/auth/token", json=CLINICIAN).json()["access_token"]
        differ: dict[str, tuple[Any, Any]] = {}
        verdicts: set[str] = set()
        for pid, resources in records.items():
            launched = seen_on_page(ehr_launch(app, ehr, pid))
            bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
            r = api.post("/assess", json=bundle, params={"simulate": "false"},
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert r.status_code == 200, (pid, r.text[:2000])
            answered = seen_by_api(r.json())
            verdicts.add(answered["verdict"])
            if launched != answered:
                differ[pid] = (launched, answered)
    assert not differ, "\n".join(f"{k}:\n  smart {a}\n  api   {b}" for k, (a, b) in differ.items())
    assert len(verdicts) >= 2  # the drawn records are not all alike


def test_a_medication_the_ehr_cannot_read_is_named_not_dropped(
    app: App, ehr: Ehr, records: dict[str, list[dict[str, Any]]]
) -> None:
    """A search answers the orders without the Medications they point to: the launch reads them, and one
    the server cannot answer is named as not screened (the verdict is caution or above), never dropped."""
    pid, target = next(
        (pid, r["medicationReference"]["reference"])
        for pid, resources in records.items()
        for r in resources
        if r["resourceType"] in {"MedicationRequest", "MedicationStatement"}
        and str(r.get("medicationReference", {}).get("reference", "")).startswith("Medication/")
        and r.get("status") in {"active", "intended", "on-hold", "stopped", "completed"}
        and any(m["resourceType"] == "Medication" and f"Medication/{m.get('id')}" == r["medicationReference"]["reference"]
                for m in resources)
    )
    mid = target.removeprefix("Medication/")
    ehr.events.clear()
    page = ehr_launch(app, ehr, pid)
    assert f"Medication/{mid}" in ehr.seen("fhir")  # read from the server by the launch
    ehr.controls.hidden_medications = frozenset({mid})
    page = ehr_launch(app, ehr, pid)
    assert 'id="not-screened"' in page and f"{target} not in the data" in html.unescape(page)
    assert seen_on_page(page)["verdict"] != "acceptable"
