"""``withdrawal serve``: the REST API and CDS Hooks services under uvicorn."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from withdrawal.cli.app import app, err_console, fail
from withdrawal.errors import WithdrawalError


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(envvar="WITHDRAWAL_DATABASE_URL", help="SQLAlchemy URL; default SQLite in the data dir."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(envvar="WITHDRAWAL_DATA_DIR", help="Where the embedded SQLite database lives.")
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            help="Seed a demo clinician, a demo patient account, demo patients (loopback host only, never in "
            "production; existing accounts are kept as they are)."
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes, each with its own copy of the app (PostgreSQL in production; "
            "on SQLite they share the file, one writer at a time).",
        ),
    ] = 1,
) -> None:
    """Start the service; the database is created and migrated on first start."""
    import uvicorn
    from pydantic import ValidationError
    from sqlalchemy.engine import make_url

    from withdrawal.app import create_app
    from withdrawal.knowledge.loader import default_kb
    from withdrawal.service import Settings
    from withdrawal.service.workers import LOG_FORMAT, NoDelayH11, freeze_start_up_heap
    from withdrawal.smart import SmartSettings
    from withdrawal.web.demo import seed_web

    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = database_url
    if data_dir:
        overrides["data_dir"] = data_dir
    if demo and not _loopback(host):
        err_console.print("[bold red]error:[/] --demo: demo accounts on a non-loopback --host would be reachable "
                          "by others; use 127.0.0.1", highlight=False)
        raise typer.Exit(2)
    try:
        settings = Settings(**overrides)
        if demo and settings.environment == "production":
            err_console.print("[bold red]error:[/] --demo is refused in production mode", highlight=False)
            raise typer.Exit(2)
        url = make_url(settings.db_url)
        if workers > 1 and url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            err_console.print("[bold red]error:[/] --workers: an in-memory SQLite database cannot be shared "
                              "between worker processes; use a file or PostgreSQL", highlight=False)
            raise typer.Exit(2)
        if workers > 1 and SmartSettings().enabled:
            err_console.print("[bold red]error:[/] --workers: SMART launches (WITHDRAWAL_SMART_*) are held in one "
                              "process's memory; use --workers 1 (docs/smart.md)", highlight=False)
            raise typer.Exit(2)
        application = create_app(settings)
    except ValidationError as exc:
        err_console.print(f"[bold red]error:[/] invalid settings: {exc.errors()[0]['msg']}", highlight=False)
        raise typer.Exit(2) from exc
    except WithdrawalError as exc:
        raise fail(exc) from exc
    if demo:
        creds = seed_web(application.state.sessions, settings, default_kb())
        err_console.print(
            f"demo clinician: [bold]{creds.clinician[0]}[/] / {creds.clinician[1]}\n"
            f"demo patient:   [bold]{creds.patient[0]}[/] / {creds.patient[1]}",
            highlight=False,
        )
    if settings.environment == "production":
        err_console.print("production mode enforces:\n" + "\n".join(f"  - {line}" for line in settings.enforced()),
                          highlight=False)
    where = settings.database_url and "database from URL" or f"SQLite in {settings.data_dir}"
    procs = f", {workers} workers" if workers > 1 else ""
    err_console.print(
        f"withdrawal service on http://{host}:{port} ({where}{procs})"
        + ("; API docs at /docs" if settings.docs_enabled else "; API docs off"),
        highlight=False,
    )
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if workers == 1:
        freeze_start_up_heap()
        uvicorn.run(application, host=host, port=port, access_log=False, log_level="info")
        return
    # The database is migrated (and seeded) above, once; each worker builds its own app from
    # the environment, so the options given here go there (only now: this process becomes the
    # workers' supervisor and builds no app of its own any more).
    application.state.engine.dispose()
    if database_url:
        os.environ["WITHDRAWAL_DATABASE_URL"] = database_url
    if data_dir:
        os.environ["WITHDRAWAL_DATA_DIR"] = str(data_dir)
    uvicorn.run(
        "withdrawal.app:worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        http=NoDelayH11,
        access_log=False,
        log_level="info",
    )
