"""Schemathesis over the service's own OpenAPI document, through the ASGI app on real SQLite.

Every operation is called with generated data, valid and invalid (schemathesis' positive
and negative modes), authenticated: the REST API with a demo clinician's bearer token,
the CDS Hooks endpoints with a freshly signed JWT (new ``jti``) per call. Checks: no 5xx,
a documented status code and content type, and a body that matches the documented schema.

Runs on SQLite and on PostgreSQL (where a NUL in text or an out-of-range number fails
differently). Date-time values reach the limits: year 1 and year 9999 with offsets that
push them past the range in UTC, the service's own bounds, around now, and any time in
between with offsets from -12:00 to +14:00.

Bounded for CI: a few examples per operation and mode, no deadline, a fixed seed, no
shrinking (the first failure of each operation is reported as found).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import Keys, login, make_settings, pg_database

CDS_AUDIENCE = "https://withdrawal.test/cds-services"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 12


LIMIT_TIMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:59:59.999999+14:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59.999999-12:00",
    "1999-12-31T23:59:59Z",
    "2000-01-01T00:00:00Z",
    "2000-01-01T00:30:00+01:00",
    "2099-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
]
OFFSETS = st.sampled_from([timezone(timedelta(minutes=m)) for m in (-720, -150, -60, 0, 60, 330, 840)])


def _near_now(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


DATE_TIMES = st.one_of(
    st.sampled_from(LIMIT_TIMES),
    st.integers(-(10**8), 10**5).map(_near_now),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=OFFSETS)
    .map(lambda d: d.isoformat()),
)
schemathesis.openapi.format("date-time", DATE_TIMES)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, keys: Keys
) -> Iterator[dict[str, Any]]:
    from fastapi.testclient import TestClient

    from withdrawal.app import create_app
    from withdrawal.knowledge.loader import default_kb
    from withdrawal.service.demo import seed

    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    extra: dict[str, Any] = {}
    if request.param == "postgresql":
        extra["database_url"] = pg_database(request.getfixturevalue("pg_server"))
    s = make_settings(data_dir, keys, cds_audiences=(CDS_AUDIENCE,), **extra)
    app = create_app(s)
    seed(app.state.sessions, s, default_kb())
    with TestClient(app) as c:
        clinician = login(c, "clinician")
    yield {"app": app, "clinician": clinician}
    app.state.engine.dispose()  # close the pool's connections (an open psycopg connection warns when collected)


def _fresh_token(app: Any) -> dict[str, str]:
    from datetime import timedelta

    from sqlalchemy import select

    from withdrawal.service.models import User, utcnow
    from withdrawal.service.security import issue_token

    with app.state.sessions() as s:
        user = s.scalar(select(User).where(User.username == "clinician"))
        token, _ = issue_token(s, user, timedelta(minutes=5), utcnow())
        s.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_api_conforms_to_its_openapi(mode: GenerationMode, service: dict[str, Any], keys: Keys) -> None:
    # NOTE: each operation is driven by hand (as_strategy + given) rather than with
    # schema.parametrize(): the lazy fixture loader of schemathesis 4.32 fails on pytest 9
    # ('Function' object has no attribute '_nodeid'), and an eager schema would build the
    # app at collection time.
    schema = schemathesis.openapi.from_asgi("/openapi.json", service["app"])
    seq = itertools.count()
    failures: dict[str, str] = {}
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 20

    for op in operations:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any) -> None:
            if case.path.startswith("/cds-services"):
                headers = {"Authorization": f"Bearer {keys.token(CDS_AUDIENCE, jti=f'st-{mode.value}-{next(seq)}')}"}
            elif case.path == "/auth/logout":  # revokes its token: never the one the other operations use
                headers = _fresh_token(service["app"])
            else:
                headers = dict(service["clinician"])
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to make invalid (no parameters, no body)
        except BaseException as exc:  # collect every operation's failure (an exception group), then report them
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            failures[f"{op.method.upper()} {op.path}"] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
