"""Alembic environment: the connection is handed in by :func:`withdrawal.service.db.migrate`."""

from __future__ import annotations

from alembic import context

from withdrawal.service.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through the alembic CLI
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
