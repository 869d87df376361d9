"""Migrations: the migrated schema is the one the code expects; a newer database is refused."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from blotter.store.database import StoreError, migrate
from blotter.store.event_store import SqlEventStore
from blotter.store.schema import metadata


def test_the_migrated_schema_equals_the_metadata_the_code_uses(store_url: str) -> None:
    SqlEventStore(store_url).close()
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_opening_a_migrated_database_again_changes_nothing(store_url: str) -> None:
    SqlEventStore(store_url).close()
    engine = create_engine(store_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == "0002"
    finally:
        engine.dispose()


def test_a_database_from_a_newer_blotter_is_refused_with_a_clear_message(store_url: str) -> None:
    SqlEventStore(store_url).close()
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match="schema revision 0099_future, written by a newer"):
        SqlEventStore(store_url)
