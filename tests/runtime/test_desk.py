"""The desk as the app opens it: reconciliation at startup and after a reconnect, and the
simulated venues' records kept between sessions."""

from __future__ import annotations

import asyncio
import hashlib
import os
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from blotter.domain.synthetic import synthetic_log
from blotter.domain.values import OrderType, Side, TimeInForce
from blotter.domain.workflows import OrderState, VenueHealth
from blotter.oms import manager
from blotter.oms.commands import NewOrder
from blotter.oms.reconciliation import PassReport
from blotter.runtime import desk as desk_module
from blotter.runtime.config import ConfigError
from blotter.runtime.desk import Desk, DeskConfig, venue_records_path
from blotter.runtime.driver import FlowDriver
from blotter.store.database import StoreError
from blotter.store.desk_lock import DatabaseInUse, DeskLock, LockLost, holder_name
from blotter.store.event_store import SqlEventStore
from blotter.store.schema import metadata

D = Decimal


async def until(condition: object, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def buy_at_market(number: int) -> NewOrder:
    return NewOrder(
        client_order_id=f"T-{number}",
        account="ACC-1",
        instrument="AAPL",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=D(10),
        time_in_force=TimeInForce.IOC,
        venue="XNAS",
    )


def resting_buy(number: int, price: Decimal) -> NewOrder:
    """A buy at ``price``, under the market: it rests, working, until canceled."""
    return NewOrder(
        client_order_id=f"R-{number}",
        account="ACC-1",
        instrument="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=D(10),
        limit_price=price,
        time_in_force=TimeInForce.GTC,
        venue="XNAS",
    )


async def test_a_reopened_desk_reconciles_at_startup_and_finds_the_venues_agree(
    tmp_path: Path,
) -> None:
    config = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    desk = await Desk.open(config)
    result = await desk.oms.submit(buy_at_market(1))
    await until(lambda: desk.oms.orders[result.order_id].state is OrderState.SETTLED)
    await desk.close()
    assert venue_records_path(config.db_url, "e1") == tmp_path / "desk.db.venues.json"
    assert (tmp_path / "desk.db.venues.json").exists()
    reopened = await Desk.open(config)
    try:
        await until(lambda: reopened.reconciler.last is not None)
        report = reopened.reconciler.last
        assert report is not None
        assert report.why == "startup"
        assert report.compared == 1
        assert report.opened == []
    finally:
        await reopened.close()


async def test_a_venue_that_reconnects_is_reconciled_again(tmp_path: Path) -> None:
    config = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    desk = await Desk.open(config)
    try:
        await until(lambda: desk.reconciler.last is not None)
        desk.venues["XNAS"].drop_connection("cable cut", outage=0.2)
        await until(lambda: desk.gateways["XNAS"].health is VenueHealth.DOWN)
        await until(lambda: desk.gateways["XNAS"].health is VenueHealth.UP)
        await until(lambda: desk.reconciler.last.why == "XNAS reconnected")  # type: ignore[union-attr]
    finally:
        await desk.close()


def test_an_in_memory_database_keeps_no_venue_records() -> None:
    assert venue_records_path("sqlite://", "e1") is None
    assert venue_records_path("sqlite:///:memory:", "e1") is None


def test_a_link_to_the_database_finds_the_same_venue_records(tmp_path: Path) -> None:
    (tmp_path / "desk.db").touch()
    (tmp_path / "link.db").symlink_to(tmp_path / "desk.db")
    linked = venue_records_path(f"sqlite:///{tmp_path / 'link.db'}", "e1")
    assert linked == venue_records_path(f"sqlite:///{tmp_path / 'desk.db'}", "e1")


async def test_a_reopened_desk_tells_how_far_its_recovery_is_page_by_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    heard: list[tuple[int, int]] = []
    desk = await Desk.open(config, progress=lambda done, total: heard.append((done, total)))
    assert heard == [(0, 0)]  # a new desk: nothing to recover
    results = [await desk.oms.submit(buy_at_market(n)) for n in range(3)]
    await until(lambda: all(desk.oms.orders[r.order_id].is_terminal for r in results))
    await desk.close()
    with SqlEventStore(config.db_url, create=False, appends=False) as store:
        logged = store.last_seq()
        assert logged == len(store.read_all())
    assert logged > 20

    monkeypatch.setattr(manager, "RECOVERY_PAGE", 7)
    heard.clear()
    reopened = await Desk.open(config, progress=lambda done, total: heard.append((done, total)))
    try:
        assert heard[0] == (0, logged)
        done = [d for d, _ in heard]
        assert done == sorted(done)
        assert done[1:-1] == list(range(7, logged, 7))  # after each page
        assert heard[-1] == (logged, logged)
        assert len(reopened.oms.orders) == 3
    finally:
        await reopened.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:////data/desk.db", "/data/desk.db"),
        ("sqlite:///desk.db", str(Path("desk.db").resolve())),
        ("sqlite://", "sqlite://"),
        (
            "postgresql+psycopg://desk:secret@db.example/blotter",
            "postgresql+psycopg://desk:***@db.example/blotter",
        ),
        (
            "postgresql://desk@db.example/blotter?password=secret",
            "postgresql+psycopg://desk@db.example/blotter",
        ),
    ],
)
def test_the_database_is_shown_without_its_password(url: str, shown: str) -> None:
    assert DeskConfig(db_url=url).database == shown


def test_a_malformed_database_url_is_a_store_error_that_names_it() -> None:
    with pytest.raises(StoreError, match="'not a url' is malformed"):
        DeskConfig(db_url="not a url").database  # noqa: B018 - the property is the test


async def test_a_resting_order_is_still_working_when_the_desk_reopens(tmp_path: Path) -> None:
    """The venue kept it while the desk was closed: recovery finds it there, no anomaly."""
    config = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    desk = await Desk.open(config)
    far_below = (desk.mid("AAPL") * D("0.9")).quantize(D("0.01"))
    ticket = msgspec.structs.replace(
        buy_at_market(1),
        order_type=OrderType.LIMIT,
        limit_price=far_below,
        time_in_force=TimeInForce.GTC,
    )
    result = await desk.oms.submit(ticket)
    await until(lambda: desk.oms.orders[result.order_id].state is OrderState.ACKNOWLEDGED)
    await desk.close()

    reopened = await Desk.open(config)
    try:
        await until(lambda: reopened.oms.idle)
        order = reopened.oms.orders[result.order_id]
        assert order.state is OrderState.ACKNOWLEDGED
        assert order.anomalies == []
        canceled = await reopened.oms.cancel(result.order_id, actor="alice")
        assert canceled.accepted
        await until(lambda: order.state is OrderState.CANCELED)
    finally:
        await reopened.close()


async def test_a_second_desk_on_the_same_database_is_refused_and_the_first_trades_on(
    tmp_path: Path,
) -> None:
    config = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    desk = await Desk.open(config)
    try:
        with pytest.raises(DatabaseInUse, match="in use by blotter desk, pid"):
            await Desk.open(config)
        result = await desk.oms.submit(buy_at_market(1))
        await until(lambda: desk.oms.orders[result.order_id].state is OrderState.SETTLED)
        assert not desk.oms.orders[result.order_id].anomalies
    finally:
        await desk.close()
    reopened = await Desk.open(config)  # closed, the first lets the database go
    await reopened.close()


async def test_a_desk_that_cannot_open_leaves_no_lock_behind(tmp_path: Path) -> None:
    config = DeskConfig(db_url=f"sqlite:///{tmp_path / 'missing.db'}", existing_store=True)
    with pytest.raises(StoreError, match="no such database"):
        await Desk.open(config)
    assert os.listdir(tmp_path) == []  # neither a database nor a lock file


def test_a_server_database_s_venue_records_are_kept_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    first = venue_records_path("postgresql+psycopg://ops:secret@db.desk:5432/blotter", "e1")
    assert first == tmp_path / "blotter" / "venues" / "blotter-e1.venues.json"
    # any spelling of the server, anyone logging in: the same log, the same records
    assert venue_records_path("postgresql://ann@10.0.0.7/blotter", "e1") == first
    # a database made anew has another log, and venues of its own
    assert venue_records_path("postgresql+psycopg://ops@db.desk:5432/blotter", "e2") != first
    assert venue_records_path("postgresql+psycopg://ops@db.desk:5432/blotter", None) is None


def _drop_database_but_its_venue_records(folder: Path) -> None:
    for made in folder.glob("desk.db*"):
        if not made.name.endswith(".venues.json"):
            made.unlink()


async def settled_buy(desk: Desk) -> None:
    """10 AAPL bought at XNAS, and settled."""
    result = await desk.oms.submit(buy_at_market(1))
    await until(lambda: desk.oms.orders[result.order_id].state is OrderState.SETTLED)


async def startup_pass(desk: Desk) -> PassReport:
    """The reconciliation pass the desk runs once it has opened."""
    await until(lambda: desk.reconciler.last is not None)
    report = desk.reconciler.last
    assert report is not None
    return report


def _generate(path: Path) -> None:
    """The session ``blotter generate --orders 30`` appends: the same event ids every time."""
    with SqlEventStore(f"sqlite:///{path}") as store:
        for event in synthetic_log(30, seed=0):
            store.submit(event.stream_id, event.stream_version - 1, [event]).result()


async def test_a_generated_database_made_anew_does_not_take_the_old_one_s_venue_records(
    tmp_path: Path,
) -> None:
    """Records are named by the log's first event, which a seeded generate repeats: when it
    was recorded tells the two logs apart."""
    path = tmp_path / "desk.db"
    config = DeskConfig(db_url=f"sqlite:///{path}", random_disconnects=False)
    _generate(path)
    desk = await Desk.open(config)  # the venues take the generated log's positions
    await settled_buy(desk)  # and 10 AAPL more at XNAS
    await desk.close()
    _drop_database_but_its_venue_records(tmp_path)
    _generate(path)
    anew = await Desk.open(config)
    try:
        ours = {k[1:]: q for k, q in anew.oms.venue_positions.items() if k[0] == "XNAS" and q}
        assert dict(((a, s), q) for a, s, q in anew.venues["XNAS"].held_positions()) == ours
        assert (await startup_pass(anew)).opened == []
    finally:
        await anew.close()


async def test_a_first_start_that_failed_on_a_generated_log_leaves_the_venues_to_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its close kept the empty venues' records, and the next desk took them for the
    venues' own: every generated position was a break again."""
    path = tmp_path / "desk.db"
    config = DeskConfig(db_url=f"sqlite:///{path}", random_disconnects=False)
    _generate(path)

    async def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C during a long first recovery, say

    with monkeypatch.context() as patched:
        patched.setattr(manager.OrderManager, "start", interrupted)
        with pytest.raises(KeyboardInterrupt):
            await Desk.open(config)
    desk = await Desk.open(config)
    try:
        assert (await startup_pass(desk)).opened == []
    finally:
        await desk.close()


async def test_venues_that_lost_their_records_take_our_corrected_positions(
    tmp_path: Path,
) -> None:
    """Seeded from the fills alone, they made every correction look explained by the
    venue, and the pass took it back out of our books."""
    path = tmp_path / "desk.db"
    config = DeskConfig(db_url=f"sqlite:///{path}", random_disconnects=False)
    desk = await Desk.open(config)
    await settled_buy(desk)
    desk.venues["XNAS"].inject_drift("ACC-1", "AAPL", D(1))
    [corrected] = (await desk.reconciler.run_pass()).opened
    await desk.close()
    (tmp_path / "desk.db.venues.json").unlink()  # kept on another machine, say
    anew = await Desk.open(config)
    try:
        report = await anew.reconciler.run_pass()
        assert (report.opened, report.explained) == ([], [])
        assert anew.oms.breaks.ours(anew.oms.venue_positions)[("XNAS", "ACC-1", "AAPL")] == 11
        assert corrected.break_id in anew.oms.breaks.cases
    finally:
        await anew.close()


async def test_a_database_made_anew_does_not_take_the_old_one_s_venue_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "desk.db"
    config = DeskConfig(db_url=f"sqlite:///{path}", random_disconnects=False)
    desk = await Desk.open(config)
    await settled_buy(desk)
    await desk.close()
    _drop_database_but_its_venue_records(tmp_path)
    anew = await Desk.open(config)
    try:
        assert anew.venues["XNAS"].held_positions() == []  # not the old log's 10 AAPL
        assert (await startup_pass(anew)).opened == []
    finally:
        await anew.close()
    kept = msgspec.json.decode((tmp_path / "desk.db.venues.json").read_bytes())
    assert kept["log"] == anew.store.first_event_id()


async def test_a_reopened_desk_keeps_its_venues_records_before_the_oms_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery learns what the venues did (fills by status, acknowledgements): the records
    they were restored from, and a journal after them, are on disk before, so a desk killed
    while it recovers finds the venues as the log does."""
    config = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    desk = await Desk.open(config)
    await desk.oms.submit(buy_at_market(1))
    await desk.close()
    records = tmp_path / "desk.db.venues.json"
    closed_with = msgspec.json.decode(records.read_bytes())["token"]
    recover = manager.OrderManager.start
    found: list[tuple[str, bytes]] = []

    async def recovering(oms: manager.OrderManager, *args: object) -> None:
        token = msgspec.json.decode(records.read_bytes())["token"]
        found.append((token, (tmp_path / "desk.db.venues.journal").read_bytes()))
        await recover(oms, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(manager.OrderManager, "start", recovering)
    reopened = await Desk.open(config)
    await reopened.close()
    [(token, journal)] = found
    assert token != closed_with  # written anew by this session
    assert token.encode() in journal  # the journal's head: it follows them


async def test_a_desk_that_fails_to_recover_stops_what_it_started_and_frees_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)

    async def broken(*_args: object) -> None:
        raise StoreError("the log cannot be read")

    monkeypatch.setattr(manager.OrderManager, "start", broken)
    before = asyncio.all_tasks()
    with pytest.raises(StoreError, match="cannot be read"):
        await Desk.open(config)
    assert asyncio.all_tasks() == before  # the venues' connections stopped with it
    monkeypatch.undo()
    reopened = await Desk.open(config)  # the lock went with the failed desk
    await reopened.close()


async def test_a_desk_refused_by_the_lock_never_opens_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with DeskLock.take(url, "desk", create=True), pytest.raises(DatabaseInUse):
        await Desk.open(DeskConfig(db_url=url))
    assert not (tmp_path / "new.db").exists()  # not created, so not migrated either


async def test_every_instrument_is_marked_at_open_and_follows_its_market(tmp_path: Path) -> None:
    config = DeskConfig(
        db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False, mark_interval=0.05
    )
    desk = await Desk.open(config)
    try:
        # before any ticket: a reopened desk values its recovered positions at once
        assert set(desk.oms.marks) == set(desk.instruments)
        assert abs(desk.oms.marks["AAPL"] - desk.mid("AAPL")) < 1  # the venues' mean mid
        before = desk.oms.marks["AAPL"]
        desk.oms.refresh_marks()
        assert desk.oms.marks["AAPL"] == before  # nothing moved yet
        for _ in range(50):
            desk.step_markets("AAPL")
        await until(lambda: desk.oms.marks["AAPL"] != before)  # the timer marked the move
    finally:
        await desk.close()


async def test_venue_records_that_cannot_be_read_are_not_written_over(tmp_path: Path) -> None:
    config = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    records = tmp_path / "desk.db.venues.json"
    records.write_text("{ not json")
    with pytest.raises(ConfigError, match=r"records cannot be read .*move the file away"):
        await Desk.open(config)
    assert records.read_text() == "{ not json"  # left for a person to look at
    # said before anything was made: no database, no lock beside it
    assert sorted(os.listdir(tmp_path)) == ["desk.db.venues.json"]


class _LostLock(DeskLock):
    """A PostgreSQL lock whose session ends once the desk is open (at its ``held``-th check
    and after)."""

    def __init__(self, path: Path, held: int = 1) -> None:
        super().__init__(None, None)
        self._file = DeskLock.take(f"sqlite:///{path}", "desk", create=True)
        self.checks = 0
        self._held = held

    @property
    def can_be_lost(self) -> bool:
        return True

    def lost(self) -> str | None:
        self.checks += 1
        return None if self.checks <= self._held else "the session holding the desk's lock ended"

    def release(self) -> None:
        self._file.release()


async def test_a_desk_that_lost_its_lock_stops_taking_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk_module, "LOCK_CHECK_SECONDS", 0.01)
    path = tmp_path / "desk.db"
    lock = _LostLock(path)
    desk = await Desk.open(DeskConfig(db_url=f"sqlite:///{path}"), lock=lock)
    try:
        await until(lambda: desk.oms.failed is not None)
        assert desk.oms.failed == (
            "the session holding the desk's lock ended; another desk may work on the database now"
        )
        refused = await desk.oms.submit(buy_at_market(1))
        assert refused.rejection is not None
        assert "another desk may work on the database" in refused.rejection.reason
    finally:
        await desk.close()


async def test_a_server_desk_stops_at_its_first_write_after_its_lock_session_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before its next check of the lock: another desk may already have the database."""
    monkeypatch.setattr(desk_module, "LOCK_CHECK_SECONDS", 3600.0)
    url = _empty_server_database(tmp_path, monkeypatch)
    desk = await Desk.open(DeskConfig(db_url=url, random_disconnects=False))
    try:
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :holder"
                ),
                {"holder": holder_name("desk")},
            )
        admin.dispose()
        before = desk.store.last_seq()
        with pytest.raises(LockLost):  # the command's write-ahead append, refused
            await desk.oms.submit(buy_at_market(1))
        assert "the desk's lock on the database is no longer held" in (desk.oms.failed or "")
        assert desk.store.last_seq() == before  # nothing of it reached the log
        assert all(not venue.held_positions() for venue in desk.venues.values())  # nor a venue
    finally:
        await desk.close()


async def test_venues_whose_records_cannot_be_written_keep_no_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nowhere to keep the records, so no journal after them: nothing piles up for one."""
    (tmp_path / "desk.db.venues.json.new").mkdir()  # where they would be written first
    config = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    desk = await Desk.open(config)
    try:
        result = await desk.oms.submit(buy_at_market(1))
        await until(lambda: desk.oms.orders[result.order_id].filled == 10)
        assert all(venue.changes() is None for venue in desk.venues.values())
        assert not (tmp_path / "desk.db.venues.journal").exists()
        assert "the simulated venues' records could not be kept" in caplog.text
    finally:
        await desk.close()


async def test_a_desk_that_lost_its_lock_does_not_write_over_the_venues_records(
    tmp_path: Path,
) -> None:
    """The desk that took the database keeps its venues' records in the same file."""
    path = tmp_path / "desk.db"
    desk = await Desk.open(DeskConfig(db_url=f"sqlite:///{path}"), lock=_LostLock(path, held=0))
    records = tmp_path / "desk.db.venues.json"
    at_start = records.read_bytes()  # as the session found them
    await desk.oms.submit(buy_at_market(1))
    await desk.close()
    assert desk.lock_lost == "the session holding the desk's lock ended"
    assert records.read_bytes() == at_start


def _as_kept_before_logs_named_them(records: Path, server_url: str) -> Path:
    """Move a server database's records to the name and shape blotter kept them in before."""
    url = make_url(server_url)
    where = f"{url.host or 'local'}:{url.port or 5432}/{url.database}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]
    before = records.with_name(f"{url.host}-{url.database}-{digest}.venues.json")
    kept = msgspec.json.decode(records.read_bytes())
    before.write_bytes(msgspec.json.encode(kept["venues"]))
    records.unlink()
    return before


def _empty_server_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test server's database, emptied, with the desk's files under ``tmp_path``."""
    url = os.environ.get("BLOTTER_TEST_PG_URL")
    if not url:
        pytest.skip("BLOTTER_TEST_PG_URL is not set: PostgreSQL desk test skipped")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    engine = create_engine(url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return url


async def test_a_server_database_s_records_kept_before_they_named_their_log_are_taken_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _empty_server_database(tmp_path, monkeypatch)
    config = DeskConfig(db_url=url, random_disconnects=False)
    desk = await Desk.open(config)
    await settled_buy(desk)
    held = desk.venues["XNAS"].held_positions()
    log = desk.store.first_event_id()
    await desk.close()
    records = venue_records_path(url, log)
    assert records is not None
    before = _as_kept_before_logs_named_them(records, url)
    reopened = await Desk.open(config)
    try:
        assert reopened.venues["XNAS"].held_positions() == held  # taken up
    finally:
        await reopened.close()
    assert records.exists()
    assert not before.exists()  # kept under the log's name from now on


async def test_the_demo_operator_escalates_the_order_working_longest_once(tmp_path: Path) -> None:
    desk = await Desk.open(DeskConfig(db_url=f"sqlite:///{tmp_path / 'd.db'}"))
    try:
        driver = FlowDriver(desk, seed=1)
        assert driver.escalate_oldest() is None  # nothing is working
        under = (desk.mid("AAPL") * D("0.97")).quantize(D("0.01"))  # inside the price collar
        first = await desk.oms.submit(resting_buy(1, under))
        second = await desk.oms.submit(resting_buy(2, under))
        await until(lambda: desk.oms.working_count == 2)
        escalation = driver.escalate_oldest()
        assert escalation is not None
        opened = desk.oms.escalations.opened[escalation]
        assert opened.order_id == first.order_id
        assert driver.escalate_oldest() is not None  # then the next: the first is in hand
        assert desk.oms.escalations.of_order(second.order_id) != []
        assert driver.escalate_oldest() is None
    finally:
        await desk.close()
