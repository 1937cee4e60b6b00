"""Hypothesis fuzzing of POST /assess (and the CDS endpoint): never a 5xx, whatever the body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import login, make_settings
from withdrawal.app import create_app

SCALARS = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=True) | st.text(max_size=30)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
KEYS = [
    "age_years",
    "sex",
    "weight_kg",
    "pregnant",
    "opioid",
    "conditions",
    "medications",
    "allergies",
    "creatinine_clearance_ml_min",
    "child_pugh",
    "cyp2d6_phenotype",
    "setting",
    "cows",
    "sows",
    "version",
]
MED = st.fixed_dictionaries(
    {},
    optional={
        "name": SCALARS,
        "rxnorm": SCALARS | st.just("10689"),
        "status": st.sampled_from(["active", "stopped", "x"]),
        "days_since_stopped": SCALARS,
        "dose_mg_per_day": SCALARS,
    },
)
PATIENTISH = st.fixed_dictionaries(
    {"age_years": st.integers(-5, 130) | SCALARS},
    optional=dict.fromkeys(KEYS[1:], JSON)
    | {"medications": st.lists(MED, max_size=3), "conditions": st.lists(st.text(max_size=10), max_size=3)},
)
FHIRISH = st.fixed_dictionaries(
    {
        "resourceType": st.just("Bundle"),
        "entry": st.lists(
            st.fixed_dictionaries(
                {
                    "resource": st.fixed_dictionaries(
                        {
                            "resourceType": st.sampled_from(
                                ["Patient", "Condition", "MedicationRequest", "Observation", "X"]
                            )
                        },
                        optional={
                            "birthDate": SCALARS | st.just("1970-01-01"),
                            "status": SCALARS,
                            "code": JSON,
                            "medicationCodeableConcept": JSON,
                            "valueQuantity": JSON,
                            "dosageInstruction": JSON,
                        },
                    )
                }
            ),
            max_size=5,
        ),
    }
)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from withdrawal.knowledge.loader import default_kb
    from withdrawal.service.demo import seed

    s = make_settings(tmp_path_factory.mktemp("fuzz"), cds_auth_required=False)
    app = create_app(s)
    seed(app.state.sessions, s, default_kb())
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers.update(login(c, "clinician"))
        yield c


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=JSON | PATIENTISH | FHIRISH)
def test_assess_never_500(fuzz_client: Any, body: Any) -> None:
    r = fuzz_client.post(
        "/assess", content=json.dumps(body, allow_nan=True), headers={"content-type": "application/json"}
    )
    assert r.status_code in (200, 400, 413, 422), (r.status_code, r.text[:300])
    assert "Traceback" not in r.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_assess_raw_bytes_never_500(fuzz_client: Any, raw: bytes) -> None:
    r = fuzz_client.post("/assess", content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (200, 400, 422)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    context=JSON,
    prefetch=JSON
    | st.dictionaries(st.sampled_from(["patient", "conditions", "medications"]), JSON | FHIRISH, max_size=3),
)
def test_cds_order_sign_never_500(fuzz_client: Any, context: Any, prefetch: Any) -> None:
    body = {"hook": "order-sign", "hookInstance": "x", "context": context, "prefetch": prefetch}
    r = fuzz_client.post(
        "/cds-services/withdrawal-order-sign",
        content=json.dumps(body, allow_nan=True),
        headers={"content-type": "application/json"},
    )
    assert r.status_code < 500, (r.status_code, r.text[:300])
