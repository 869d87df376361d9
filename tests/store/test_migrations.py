"""Migrations: the migrated schema is the one the code expects; a newer database is refused."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from blotter.domain.events import (
    AccountBlocked,
    AccountListed,
    DeskOpened,
    EscalationOpened,
    KillSwitchEngaged,
    VenueDown,
    VenueListed,
    VenueUp,
)
from blotter.store.database import MIGRATIONS, StoreError, migrate
from blotter.store.event_store import SqlEventStore
from blotter.store.replay import replay
from blotter.store.schema import metadata

from ..domain.builders import escalation_opened, stream


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
            assert MigrationContext.configure(conn).get_current_revision() == "0005"
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


def test_escalation_alerts_stored_before_0003_are_worded_as_the_fold_words_them(
    store_url: str,
) -> None:
    """So that an older database's replay check still matches, without a rebuild."""
    with SqlEventStore(store_url) as store:
        opened = stream("esc-1", escalation_opened("O-7", "the client asks"))
        store.submit("esc-1", 0, opened).result(timeout=10)
        quiet = stream("esc-2", EscalationOpened(order_id="O-8"))  # no reason: the type
        store.submit("esc-2", 0, quiet).result(timeout=10)
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:  # as revision 0002 left it
            conn.execute(
                text("UPDATE alerts SET message = 'the client asks' WHERE stream_id = 'esc-1'")
            )
            conn.execute(
                text("UPDATE alerts SET message = 'EscalationOpened' WHERE stream_id = 'esc-2'")
            )
            conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
        migrate(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT stream_id, message FROM alerts ORDER BY stream_id"))
            assert rows.all() == [
                ("esc-1", "order O-7: the client asks"),
                ("esc-2", "order O-8: EscalationOpened"),
            ]
    finally:
        engine.dispose()
    with SqlEventStore(store_url, appends=False) as store:
        report = replay(store, workers=1)
    assert report.mismatch_count == 0


def test_alerts_of_a_halt_a_block_or_a_venue_down_stored_before_0004_say_what_happened(
    store_url: str,
) -> None:
    """Worded as the fold words them, so that an older database's replay check matches."""
    halted = stream("desk", DeskOpened(), KillSwitchEngaged(reason="runaway algo"), actor="olga")
    blocked = stream(
        "account-ACC-1", AccountListed(account="ACC-1"), AccountBlocked(rule="order_rate")
    )
    down = stream("venue-XNAS", VenueListed(venue="XNAS"), VenueUp(), VenueDown(reason="cable cut"))
    with SqlEventStore(store_url) as store:
        for events in (halted, blocked, down):
            store.submit(events[0].stream_id, 0, events).result(timeout=10)
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:  # as revision 0003 left them
            for stream_id, said in (
                ("desk", "runaway algo"),
                ("account-ACC-1", "AccountBlocked"),
                ("venue-XNAS", "cable cut"),
            ):
                conn.execute(
                    text("UPDATE alerts SET message = :said WHERE stream_id = :stream_id"),
                    {"said": said, "stream_id": stream_id},
                )
            conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
        migrate(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT stream_id, message FROM alerts ORDER BY stream_id"))
            assert rows.all() == [
                ("account-ACC-1", "blocked by ops"),
                ("desk", "trading halted by olga: runaway algo"),
                ("venue-XNAS", "DOWN: cable cut"),
            ]
    finally:
        engine.dispose()
    with SqlEventStore(store_url, appends=False) as store:
        report = replay(store, workers=1)
    assert report.mismatch_count == 0


def test_a_reader_without_the_desk_s_lock_refuses_an_older_schema_and_leaves_it(
    store_url: str,
) -> None:
    """A migration writes, and a desk may be working on the database beside ``events``."""
    SqlEventStore(store_url).close()
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
        with pytest.raises(StoreError, match="revision 0002, older than this blotter's 0005"):
            SqlEventStore(store_url, appends=False, upgrade=False)
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == "0002"
    finally:
        engine.dispose()


_UNUSED_INDEXES = {"ix_events_type", "ix_orders_order_id", "ix_fills_order_id"}


def _index_names(store_url: str) -> set[str]:
    engine = create_engine(store_url)
    try:
        found = inspect(engine)
        return {i["name"] for t in ("events", "orders", "fills") for i in found.get_indexes(t)}
    finally:
        engine.dispose()


def test_0005_drops_the_indexes_no_query_uses_and_keeps_every_row(store_url: str) -> None:
    """A database of revision 0004 (made here by the downgrade, which must bring them back)."""
    halted = stream("desk", DeskOpened(), KillSwitchEngaged(reason="runaway algo"), actor="olga")
    with SqlEventStore(store_url) as store:
        store.submit("desk", 0, halted).result(timeout=10)
    assert not _index_names(store_url) & _UNUSED_INDEXES
    engine = create_engine(store_url)
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0004")
        assert _index_names(store_url) >= _UNUSED_INDEXES
        migrate(engine)
    finally:
        engine.dispose()
    assert not _index_names(store_url) & _UNUSED_INDEXES
    with SqlEventStore(store_url, appends=False) as store:
        assert [e.event_id for e in store.read_stream("desk")] == [e.event_id for e in halted]
        report = replay(store, workers=1)
    assert report.mismatch_count == 0
