"""PostgreSQL databases blotter cannot keep its log in are refused when opened, in one line."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from blotter.store.database import StoreError
from blotter.store.event_store import SqlEventStore

from .conftest import PG_ENV

MakeDatabase = Callable[..., str]


@pytest.fixture
def new_database() -> Iterator[MakeDatabase]:
    """A function that makes an empty database on the test server with the options given
    (dropped after the test) and returns its URL."""
    server = os.environ.get(PG_ENV)
    if not server:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL server tests skipped")
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make(name: str, options: str = "") -> str:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            try:
                connection.execute(text(f"CREATE DATABASE {name} {options}"))
            except Exception as refused:  # a role without CREATEDB: nothing to test here
                pytest.skip(f"cannot create a database on the test server: {refused}")
        made.append(name)
        return make_url(server).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as connection:
        for name in made:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def _tables(url: str) -> list[str]:
    engine = create_engine(url, connect_args={"client_encoding": "utf8"})  # SQL_ASCII: bytes
    try:
        with engine.connect() as connection:
            return inspect(connection).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize("encoding", ["SQL_ASCII", "LATIN1"])
def test_a_database_not_in_utf8_is_refused_before_anything_is_written(
    new_database: MakeDatabase, encoding: str
) -> None:
    """SQL_ASCII's text came back as bytes (a traceback in SQLAlchemy's first look at the
    server); LATIN1 took the log until a name it cannot spell stopped the OMS."""
    url = new_database(
        f"blotter_test_{encoding.lower()}",
        f"ENCODING '{encoding}' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'",
    )
    for appends in (True, False):
        with pytest.raises(StoreError, match=f"keeps text in {encoding}; blotter needs a UTF8"):
            SqlEventStore(url, appends=appends)
    assert _tables(url) == []


def test_a_read_only_database_is_refused_to_writers_and_read_by_readers(
    new_database: MakeDatabase,
) -> None:
    url = new_database("blotter_test_read_only")
    SqlEventStore(url).close()  # the schema, made while it could be written
    name = make_url(url).database
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"ALTER DATABASE {name} SET default_transaction_read_only = on"))
    engine.dispose()
    for writer in ({}, {"appends": False, "rewrites": True}):  # appends, or a rebuild
        with pytest.raises(StoreError, match=r"is read-only .* blotter writes to it"):
            SqlEventStore(url, create=False, **writer)  # type: ignore[arg-type]
    with SqlEventStore(url, create=False, appends=False) as reader:
        assert reader.last_seq() == 0
