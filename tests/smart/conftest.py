"""The test EHR (in a thread, http://localhost:<port>) and the service (a subprocess, http://127.0.0.1:<port>).

The two are different sites (localhost and 127.0.0.1), so the app in the EHR's iframe is a
cross-site frame, as in a real EHR; the browser blocks third-party cookies
(``--test-third-party-cookie-phaseout``), so only what the app does without them works.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ehr import CLIENT_ID, App, Ehr  # noqa: E402

from tests_support import chromium_path, demo_server, free_port  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--test-third-party-cookie-phaseout"]


@pytest.fixture(scope="session")
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture(scope="session")
def ehr_server(ports: tuple[int, int]) -> Iterator[Ehr]:
    ehr_port, app_port = ports
    ehr = Ehr(base=f"http://localhost:{ehr_port}", app_launch=f"http://127.0.0.1:{app_port}/smart/launch",
              redirect_uris=(f"http://127.0.0.1:{app_port}/smart/callback",))
    server = uvicorn.Server(uvicorn.Config(ehr.app(), host="127.0.0.1", port=ehr_port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test EHR did not start")
        time.sleep(0.05)
    yield ehr
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def ehr(ehr_server: Ehr) -> Iterator[Ehr]:
    ehr_server.controls.reset()
    ehr_server.events.clear()
    yield ehr_server
    ehr_server.controls.reset()


@pytest.fixture(scope="session")
def app(ports: tuple[int, int], ehr_server: Ehr, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    ehr_port, app_port = ports
    data = tmp_path_factory.mktemp("smart-app")
    env = {**os.environ, "WITHDRAWAL_DATA_DIR": str(data), "WITHDRAWAL_ENVIRONMENT": "test",
           "WITHDRAWAL_DEMO_CLINICIAN_PASSWORD": "clinician-demo-pass-1",
           "WITHDRAWAL_DEMO_PATIENT_PASSWORD": "patient-demo-pass-12",
           "WITHDRAWAL_SMART_CLIENT_ID": CLIENT_ID, "WITHDRAWAL_SMART_ISSUERS": ehr_server.fhir,
           "WITHDRAWAL_SMART_FRAME_ANCESTORS": ehr_server.base, "WITHDRAWAL_SMART_TOKEN_LEEWAY_S": "30",
           "WITHDRAWAL_CDS_AUTH_REQUIRED": "false"}  # CDS JWTs are tested in tests/service
    env.pop("WITHDRAWAL_DATABASE_URL", None)
    with demo_server(data, env, log_level="info", port=app_port) as base:
        yield App(base, data)


@pytest.fixture(scope="session")
def browser(playwright_sync: Any) -> Iterator[Any]:
    exe = chromium_path()
    if exe is None:
        why = "no Chromium: install Debian's chromium (apt-get install chromium) or set $CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    b = playwright_sync.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    p = context.new_page()
    yield p
    context.close()
