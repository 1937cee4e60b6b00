"""Hypothesis over the web pages' forms and query strings (not in the OpenAPI document, so
Schemathesis does not reach them), signed in as a clinician and anonymously, on SQLite and
PostgreSQL: never a 5xx, whatever the fields, ids or text (NUL, any Unicode, long values).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PASSWORDS, Keys, make_settings, pg_database

ALLOWED = {200, 303, 307, 401, 403, 404, 422, 429}  # 307: a trailing slash redirected
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40) | st.sampled_from(
    ["", "0", "-1", "1e309", "nan", "inf", "40", "4", "tramadol, 50", "a\x00b", "x" * 3000, "2147483648"]
)
PATIENT_KEYS = ["display_name", "age_years", "sex", "setting", "cyp2d6_phenotype", "child_pugh", "pregnant",
                "breastfeeding", "creatinine_clearance_ml_min", "substance", "hours_since_last_use", "conditions",
                "allergies", "current_medications", "stopped_medications"]
DOSE_KEYS = ["drug", "dose_mg", "kind", "hours_ago"]
IDS = st.integers(-(2**70), 2**70) | st.integers(0, 5)
FUZZ = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def _form(keys: list[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=8), TEXT, max_size=len(keys) + 2)


class Browser:
    """A TestClient signed in as a clinician through the login form: cookie and the pages' CSRF token."""

    def __init__(self, client: TestClient, role: str) -> None:
        self.c = client
        page = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        r = client.post("/login", data={"csrf": token.group(1), "username": role, "password": PASSWORDS[role]},
                        follow_redirects=False)
        assert r.status_code == 303, r.text[:300]
        self.csrf = self.token()

    def token(self) -> str:
        page = self.c.get("/app/patients/new")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text[:300]
        return found.group(1)

    def post(self, path: str, form: dict[str, str], *, csrf: bool = True) -> Any:
        data = {**form, **({"csrf": self.csrf} if csrf else {})}
        return self.c.post(path, data=data, follow_redirects=False)

    def get(self, path: str, **params: Any) -> Any:
        return self.c.get(path, params=params, follow_redirects=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def web(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[Browser]:
    from withdrawal.app import create_app
    from withdrawal.knowledge.loader import default_kb
    from withdrawal.web.demo import seed_web

    data: Path = tmp_path_factory.mktemp("form-fuzz")
    extra = {"database_url": pg_database(request.getfixturevalue("pg_server"))} if request.param == "postgresql" else {}
    s = make_settings(data, keys, **extra)
    app = create_app(s)
    seed_web(app.state.sessions, s, default_kb())
    with TestClient(app, raise_server_exceptions=False, base_url="http://testserver") as c:
        yield Browser(c, "clinician")
    app.state.engine.dispose()  # close the pool's connections (an open psycopg connection warns when collected)


def _ok(r: Any) -> None:
    assert r.status_code in ALLOWED, (r.request.method, r.request.url, r.status_code, r.text[:300])
    assert "Traceback" not in r.text


def test_new_patient_form(web: Browser) -> None:
    @FUZZ
    @given(form=_form(PATIENT_KEYS), csrf=st.booleans())
    def run(form: dict[str, str], csrf: bool) -> None:
        _ok(web.post("/app/patients/new", form, csrf=csrf))

    run()


def test_patient_forms_by_id(web: Browser) -> None:
    from withdrawal.knowledge.loader import default_kb

    kb = default_kb()
    cows = [i.id for i in kb.scales["cows"].items]
    sows = [i.id for i in kb.scales["sows"].items]

    @FUZZ
    @given(
        pid=IDS,
        which=st.sampled_from(["edit", "cows", "sows", "doses"]),
        form=st.data(),
    )
    def run(pid: int, which: str, form: st.DataObject) -> None:
        keys = {"edit": PATIENT_KEYS, "cows": cows, "sows": sows, "doses": DOSE_KEYS}[which]
        _ok(web.post(f"/app/patients/{pid}/{which}", form.draw(_form(keys))))

    run()


def test_pages_by_id_and_query(web: Browser) -> None:
    @FUZZ
    @given(
        pid=IDS | st.text(max_size=12),
        page=st.sampled_from(["", "/course", "/cows", "/sows", "/edit", "/simulator", "/pathway"]),
        query=st.dictionaries(st.sampled_from(["phenotype", "recorded", "next", "drugs"]), TEXT, max_size=3),
    )
    def run(pid: Any, page: str, query: dict[str, str]) -> None:
        _ok(web.get(f"/app/patients/{pid}{page}", **query))
        _ok(web.get("/app/interactions", drugs=query.get("drugs", "")))

    run()


def test_login_form(web: Browser) -> None:
    with TestClient(web.c.app, raise_server_exceptions=False) as anonymous:
        page = anonymous.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token

        @FUZZ
        @given(form=_form(["username", "password", "next"]), next_=TEXT)
        def run(form: dict[str, str], next_: str) -> None:
            r = anonymous.post("/login", data={**form, "csrf": token.group(1)}, follow_redirects=False)
            _ok(r)
            _ok(anonymous.get("/login", params={"next": next_}, follow_redirects=False))

        run()
