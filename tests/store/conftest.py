"""Store fixtures: every contract test runs on SQLite and, when a server is given, PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from blotter.store.event_store import SqlEventStore
from blotter.store.schema import metadata

PG_ENV = "BLOTTER_TEST_PG_URL"


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL store tests skipped")
    _reset_postgres(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlEventStore]:
    opened = SqlEventStore(store_url)
    yield opened
    opened.close()
