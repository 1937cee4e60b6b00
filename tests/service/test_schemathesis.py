"""Schemathesis over the service's own OpenAPI document, through the ASGI app on real SQLite.

Every operation is called with generated data, valid and invalid (schemathesis' positive
and negative modes), authenticated: the REST API with a demo clinician's bearer token,
the CDS Hooks endpoints with a freshly signed JWT (new ``jti``) per call. Checks: no 5xx,
a documented status code and content type, and a body that matches the documented schema.

Bounded for CI: a few examples per operation and mode, no deadline, a fixed seed, no
shrinking (the first failure of each operation is reported as found).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import Keys, login, make_settings

CDS_AUDIENCE = "https://withdrawal.test/cds-services"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from withdrawal.knowledge.loader import default_kb
    from withdrawal.service import create_app
    from withdrawal.service.demo import seed

    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    s = make_settings(data_dir, keys, cds_audiences=(CDS_AUDIENCE,))
    app = create_app(s)
    seed(app.state.sessions, s, default_kb())
    with TestClient(app) as c:
        clinician = login(c, "clinician")
    return {"app": app, "clinician": clinician}


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
