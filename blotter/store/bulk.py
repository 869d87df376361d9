"""Executemany with statements compiled once: the writer's hot path, kept off the ORM-level cost.

SQLAlchemy Core builds a parameter dict per row on each execute; with several rows per event
that dominated an append. Here each table's statement is compiled once per dialect with
positional parameters, and rows arrive as tuples in column order, already in the driver's
types (decimals as text), so the driver's own ``executemany`` does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg

DriverRow = tuple[Any, ...]

# How a table takes new rows: the log refuses a clash, append-only projections ignore a
# replayed row, the rest are overwritten by their newest state.
_IGNORE_CONFLICT = frozenset({"fills"})  # alerts upsert: an acknowledgement updates one
_PLAIN_INSERT = frozenset({"events"})


class BulkWriter:
    def __init__(self, backend: str) -> None:
        self._dialect: Dialect = (
            psycopg.dialect(paramstyle="format")  # type: ignore[no-untyped-call]
            if backend == "postgresql"
            else sqlite.dialect()
        )
        self._module: Any = postgresql if backend == "postgresql" else sqlite
        self._sql: dict[str, str] = {}

    def write(self, connection: Connection, table: Table, rows: Sequence[DriverRow]) -> None:
        """Insert or upsert ``rows`` (tuples in ``table``'s column order)."""
        if rows:
            connection.exec_driver_sql(self.statement(table), list(rows))

    def statement(self, table: Table) -> str:
        """The driver-level SQL that inserts or upserts one row of ``table``."""
        sql = self._sql.get(table.name)
        if sql is None:
            sql = self._sql[table.name] = self._compile(table)
        return sql

    def _compile(self, table: Table) -> str:
        statement = self._module.insert(table)
        keys = [c.name for c in table.primary_key.columns]
        if table.name in _IGNORE_CONFLICT:
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        elif table.name not in _PLAIN_INSERT:
            updates = {
                c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys
            }
            statement = statement.on_conflict_do_update(index_elements=keys, set_=updates)
        compiled = statement.compile(dialect=self._dialect)
        if list(compiled.positiontup or []) != [c.name for c in table.columns]:
            raise AssertionError(f"{table.name}: parameters do not follow the column order")
        return str(compiled)
