"""Issue 17: the patient pages in Spanish. The language switch (a cookie, and the account's choice when
signed in), every marked text translated, the Spanish content with the English content's sources, the
crisis resources in Spanish; and in Chromium, axe on the Spanish pages at two widths."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests_support import follow, kb_with
from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.loader import default_kb, load_kb
from withdrawal.web import i18n

TEMPLATES = Path(i18n.__file__).resolve().parent / "templates"
MARKED = re.compile(r"""_\((?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\)""")
SPANISH_PUBLIC = ["/", "/info", "/info/withdrawal", "/info/self-care", "/info/tramadol", "/info/risks",
                  "/info/help", "/info/questions"]
SERIOUS = {"serious", "critical"}


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found
    return found.group(1)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from withdrawal.app import create_app
    from withdrawal.service import Settings
    from withdrawal.service.demo import seed

    settings = Settings(environment="test", data_dir=tmp_path_factory.mktemp("spanish"),
                        demo_clinician_password="clinician-demo-pass-1", demo_patient_password="patient-demo-pass-12")
    made = create_app(settings)
    seed(made.state.sessions, settings, made.state.kb)
    return made


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _switch(client: TestClient, lang: str, nxt: str = "/info") -> Any:
    token = _csrf(client.get(nxt).text)
    return client.post("/language", data={"csrf": token, "lang": lang, "next": nxt}, follow_redirects=False)


def test_every_marked_text_has_a_spanish_translation() -> None:
    marked = {m.group(1) or m.group(2) for f in TEMPLATES.glob("*.html") for m in MARKED.finditer(f.read_text())}
    assert len(marked) > 50
    cat = i18n.catalogue("es")
    missing = sorted(t for t in marked if cat.gettext(t) == t)
    assert not missing, missing


def test_the_switch_sets_the_language_and_keeps_the_page(client: TestClient) -> None:
    english = client.get("/info/help").text
    assert '<html lang="en">' in english and "SAMHSA National Helpline" in english
    r = _switch(client, "es", "/info/help")
    assert r.status_code == 303 and r.headers["location"] == "/info/help"
    spanish = client.get("/info/help").text
    assert '<html lang="es">' in spanish and "Cuándo buscar ayuda ya" in spanish
    # the crisis resources, in Spanish, with the same public numbers
    for text in ("Línea Nacional de Ayuda de SAMHSA", "en inglés y en español", "1-800-662-HELP (4357)",
                 "988 Línea de Prevención del Suicidio y Crisis", "FindTreatment.gov", "Servicios de emergencia",
                 'href="tel:911"', 'href="tel:988"', 'href="sms:988"', "Llamar al 911"):
        assert text in spanish, text
    assert '<button type="submit" class="link-button" lang="en">English</button>' in spanish
    assert _switch(client, "en", "/info/help").status_code == 303
    assert '<html lang="en">' in client.get("/info/help").text


def test_a_malformed_switch_is_refused_without_a_500(client: TestClient) -> None:
    token = _csrf(client.get("/info").text)
    for data in ({"csrf": token, "lang": "xx"}, {"csrf": token}, {"csrf": token, "lang": "es" * 500},
                 {"lang": "es"}):
        r = client.post("/language", data=data, follow_redirects=False)
        assert r.status_code in (403, 422), (data, r.status_code)
    r = client.post("/language", data={"csrf": token, "lang": "es", "next": "//evil.example/"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_signed_in_account_remembers_its_language(app: Any) -> None:
    with TestClient(app) as first:
        token = _csrf(first.get("/login").text)
        r = first.post("/login", data={"csrf": token, "username": "patient", "password": "patient-demo-pass-12"},
                       follow_redirects=False)
        assert r.status_code == 303
        home = r.headers["location"]
        assert _switch(first, "es", home).status_code == 303
        diary = first.get(home).text
        assert "Mi diario de abstinencia" in diary and "Anotar cómo me siento hoy" in diary
    with TestClient(app) as second:  # a new browser: no cookie, the account's choice
        token = _csrf(second.get("/login").text)
        second.post("/login", data={"csrf": token, "username": "patient", "password": "patient-demo-pass-12"},
                    follow_redirects=False)
        assert second.cookies.get(i18n.COOKIE) is None
        assert '<html lang="es">' in second.get(home).text
        assert "¿Cómo se siente ahora?" in second.get(home + "/sows").text
        assert _switch(second, "en", home).status_code == 303
    with TestClient(app) as third:
        token = _csrf(third.get("/login").text)
        third.post("/login", data={"csrf": token, "username": "patient", "password": "patient-demo-pass-12"},
                   follow_redirects=False)
        assert "My withdrawal diary" in third.get(home).text


def test_the_spanish_content_keeps_every_paragraphs_sources(tmp_path: Path) -> None:
    en, es = default_kb().patient_info["en"], default_kb().patient_info["es"]
    assert [p.sources for _, p in en.paragraphs()] == [p.sources for _, p in es.paragraphs()]
    assert all(f.lead[0] == "Respuesta de las guías:" for f in es.faqs)
    def change(raw: Any) -> None:
        raw["sections"][0]["points"][0]["sources"] = ["asam_2020"]

    with pytest.raises(KnowledgeBaseError, match="sources"):
        load_kb(kb_with(tmp_path, "patient_info.es.yaml", change))


# --- in Chromium ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1280, 390])
def test_spanish_pages_have_no_serious_axe_violations(make_page: Any, server: Any, creds: Any, signin: Any,
                                                      axe: Any, describe_violations: Any, width: int) -> None:
    problems: list[str] = []
    anon = make_page(width=width, height=844, bypass_csp=True)
    anon.goto("/info")
    follow(anon, anon.locator("form.lang-switch button"))
    anon.wait_for_load_state()
    assert anon.evaluate("document.documentElement.lang") == "es"
    pat = make_page(width=width, height=844, bypass_csp=True)
    signin(pat, creds["patient"])
    pat.goto("/info")
    follow(pat, pat.locator("form.lang-switch button"))  # remembered by the account
    pat.wait_for_load_state()
    own = server.patient_id("demo-a")
    try:
        for page, paths in ((anon, SPANISH_PUBLIC), (pat, [f"/app/patients/{own}", f"/app/patients/{own}/sows"])):
            for path in paths:
                assert page.goto(path).status == 200, path
                assert page.evaluate("document.documentElement.lang") == "es", path
                bad = [v for v in axe(page) if v["impact"] in SERIOUS]
                if bad:
                    problems.append(f"{path} ({width}px):\n{describe_violations(bad)}")
        pat.goto(f"/app/patients/{own}")
        assert pat.locator("h1").inner_text() == "Mi diario de abstinencia"
        overflow = anon.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1
    finally:
        pat.goto("/info")
        follow(pat, pat.locator("form.lang-switch button"))  # back to English for the other tests
        pat.wait_for_load_state()
    assert pat.evaluate("document.documentElement.lang") == "en"
    assert not problems, "\n\n".join(problems)
