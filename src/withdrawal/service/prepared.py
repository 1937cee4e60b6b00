"""Statements compiled once and run on the driver connection, for the CDS hot path.

A CDS call ends in one short write transaction: the JWT id and the audit row.
Through SQLAlchemy's ``Connection`` (pool reset, execution context, result set up)
that transaction cost as much as the clinical logic of the call. Here a fixed
statement is compiled once for the engine's dialect, each value goes through the
same bind processor SQLAlchemy would apply (so the row reads back identically
through the ORM), and the driver runs it. Only for statements whose every value is
given: column defaults are not applied, so compiling one that would need them fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.engine.interfaces import DBAPICursor, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class Prepared:
    """One statement for one dialect: its SQL text and how to turn values into driver parameters."""

    def __init__(self, stmt: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        assert isinstance(compiled, SQLCompiler)
        names = list(compiled.binds)
        if column_keys is not None and set(names) != set(column_keys):
            needed = sorted(set(names) - set(column_keys))
            unknown = sorted(set(column_keys) - set(names))
            raise ValueError(
                f"statement needs values not given (column defaults?): {needed}; given but not columns: {unknown}"
            )
        self.sql = compiled.string
        self.order = list(compiled.positiontup or ()) if compiled.positional else None
        self.processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()
        }

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        converted = {}
        for name, proc in self.processors.items():
            value = values[name]
            converted[name] = proc(value) if proc is not None else value
        if self.order is not None:
            return tuple(converted[n] for n in self.order)
        return converted

    def run(self, cursor: DBAPICursor | Connection, values: Mapping[str, Any]) -> None:
        """Execute on a driver cursor, or inside an open SQLAlchemy connection's transaction."""
        if isinstance(cursor, Connection):
            cursor.exec_driver_sql(self.sql, self.params(values))
        else:
            cursor.execute(self.sql, self.params(values))


def prepared_insert(entity: type[Any], dialect: Dialect, columns: Sequence[str]) -> Prepared:
    """An INSERT of one row into a mapped class's table, every column in ``columns`` given."""
    return Prepared(insert(entity), dialect, columns)


@contextmanager
def driver_transaction(engine: Engine) -> Iterator[DBAPICursor]:
    """A cursor in a transaction on a pooled driver connection: committed on success, else rolled back."""
    raw = engine.raw_connection()
    cursor = raw.cursor()
    try:
        yield cursor
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        cursor.close()
        raw.close()


def integrity_errors(engine: Engine) -> tuple[type[BaseException], ...]:
    """The driver's IntegrityError (raised on the driver path) and SQLAlchemy's (on a Connection)."""
    from sqlalchemy.exc import IntegrityError

    dbapi_error = getattr(engine.dialect.loaded_dbapi, "IntegrityError", IntegrityError)
    return (IntegrityError, dbapi_error)
