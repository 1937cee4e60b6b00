"""Engine, sessions and migrations (Alembic, run programmatically at start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = "0006_user_language"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, ``synchronous=NORMAL`` and foreign keys on.

    In WAL mode ``synchronous=NORMAL`` still makes every committed transaction
    survive the process being killed (the WAL is written before COMMIT returns; the
    tests kill the server with SIGKILL mid-stream); only an operating-system crash
    or power cut can lose the last transactions, never corrupt the database. FULL
    would add an fsync to every commit, which was the largest single cost of a CDS
    call. Set ``synchronous=FULL`` in the URL's query (``?synchronous=full``) to keep
    it.

    ``hide_parameters``: a database error's text never carries the statement's values
    (patient data), wherever it ends up.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        sync = str(parsed.query.get("synchronous", "normal")).upper()
        if sync not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError("sqlite synchronous must be normal, full or extra")
        url = parsed.difference_update_query(["synchronous"]).render_as_string(hide_password=False)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (from empty on first start)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema down to ``revision`` (``base``: empty); for operators and tests."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
