"""The composition root: store, simulated venues behind managed gateways, markets, the OMS.

The GUI, the headless runner and the tests all build the desk here, from one ``DeskConfig``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import msgspec
from sqlalchemy.engine import make_url

from blotter.domain.clock import Clock, SystemClock
from blotter.domain.escalation import EscalationRules
from blotter.domain.events import DESK_STREAM
from blotter.domain.ids import RandomIds
from blotter.domain.reconciliation import ReconciliationConfig
from blotter.domain.risk import DEFAULT_RISK, RiskConfig
from blotter.domain.values import Instrument
from blotter.oms.escalation import Escalator
from blotter.oms.manager import OmsConfig, OrderManager, RecoveryProgress
from blotter.oms.ports import VenueGateway
from blotter.oms.reconciliation import Reconciler
from blotter.oms.risk import RiskDesk
from blotter.oms.routing import RouterWeights, SmartRouter
from blotter.oms.routing.smart import DEFAULT_WEIGHTS
from blotter.oms.tasks import TaskSupervisor
from blotter.runtime import collector
from blotter.runtime.config import ConfigError
from blotter.runtime.venue_journal import (
    JournalHead,
    JournalUnreadable,
    VenueJournal,
    read_journal,
)
from blotter.store.database import data_dir, database_file, parse_url, shown
from blotter.store.desk_lock import DeskLock
from blotter.store.event_store import SqlEventStore
from blotter.venues.managed import BreakerSettings, ManagedGateway
from blotter.venues.sim.catalog import REFERENCE_PRICES, VENUES
from blotter.venues.sim.clearing import SimulatedClearing
from blotter.venues.sim.market import SyntheticMarket
from blotter.venues.sim.venue import SimulatedVenue, VenueProfile, VenueRecords

log = logging.getLogger(__name__)

# How often a desk on PostgreSQL checks that it still holds the database's lock; each check
# also keeps the lock's session from an idle timeout.
LOCK_CHECK_SECONDS = 2.0


class DeskConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a desk is built from; the defaults are the demo's simulated world."""

    db_url: str
    existing_store: bool = False  # a database that is not there is an error, not a new desk
    seed: int = 0
    venues: tuple[VenueProfile, ...] = VENUES
    random_disconnects: bool = True  # each venue's reliability profile; off for exact replays
    orders_per_second: float = 5_000.0  # per venue, submits and cancels
    burst: int = 500
    heartbeat_interval: float = 0.5
    request_timeout: float = 2.0
    settlement_failure_rate: float = 0.02
    breaker: BreakerSettings = msgspec.field(default_factory=BreakerSettings)
    oms: OmsConfig = msgspec.field(default_factory=OmsConfig)
    router_weights: RouterWeights = DEFAULT_WEIGHTS
    split_threshold: float = 0.8  # SPLIT spreads an order when no venue scores this well
    # ... in slices worth this much at least: a small order is not cut into tiny pieces
    min_slice_notional: Decimal = Decimal(5_000)
    risk: RiskConfig = DEFAULT_RISK
    reconciliation: ReconciliationConfig = msgspec.field(default_factory=ReconciliationConfig)
    escalation: EscalationRules = msgspec.field(default_factory=EscalationRules)
    # Seconds between marks of every instrument at the venues' mids (None: marked only at
    # start and by tickets, which keeps a lockstep headless run repeatable).
    mark_interval: float | None = 1.0

    @property
    def database(self) -> str:
        """The database as a user may be shown it (``StoreError`` if the URL is malformed)."""
        return shown(self.db_url)


GatewayWrapper = Callable[[SimulatedVenue], VenueGateway]


def instruments_of(venues: Sequence[SimulatedVenue]) -> dict[str, Instrument]:
    """Every instrument some venue lists, by symbol."""
    return {i.symbol: i for v in venues for i in v.profile.instruments}


class Desk:
    """A running desk. Build it with ``await Desk.open(config)``; ``await close()`` it."""

    def __init__(
        self,
        config: DeskConfig,
        store: SqlEventStore,
        venues: Sequence[SimulatedVenue],
        gateways: Sequence[ManagedGateway],
        oms: OrderManager,
        clock: Clock,
        lock: DeskLock,
    ) -> None:
        self.config = config
        self._lock = lock  # no other desk on this database while this one is open
        self.lock_lost: str | None = None  # why, if the close found the lock gone
        self._records_restored = False  # the venues' records of the last session, read back
        # Venues that have not yet taken the log's positions (``_take_logged_positions``):
        # records kept meanwhile (a start that failed) would tell the next desk they had.
        self._seeding_due = False
        self._log: str | None = None  # the log's first event id, once it has one
        # The id of the log's DeskOpened, once a desk has opened it: random, where a seeded
        # generated log's first event is not.
        self._opened: str | None = None
        self.store = store
        self.venues = {v.name: v for v in venues}
        self._journal = VenueJournal(self.venues)  # their changes, from the session's start
        self.gateways = {g.name: g for g in gateways}
        self.oms = oms
        self.clock = clock
        self.reconciler = Reconciler(oms, RandomIds(), config.reconciliation)
        self.escalator = Escalator(oms, RandomIds(), config.escalation)
        self._tasks = TaskSupervisor("desk")
        self.markets = [
            SyntheticMarket(
                venue,
                instrument.symbol,
                REFERENCE_PRICES[instrument.symbol],
                seed=config.seed * 1_000 + number,
            )
            for number, (venue, instrument) in enumerate(
                (v, i) for v in venues for i in v.profile.instruments
            )
        ]
        self._quoting: dict[str, SyntheticMarket] = {}  # each symbol's first market
        for market in self.markets:
            self._quoting.setdefault(market.symbol, market)
        self.instruments = instruments_of(venues)

    @classmethod
    async def claim(cls, config: DeskConfig, purpose: str = "desk") -> DeskLock:
        """The database for this desk alone, or ``DatabaseInUse`` naming who has it: taken
        before anything is opened, or shown (the window asks first). ``purpose`` is what
        another one refused is told holds it (``headless``, say)."""
        create = not config.existing_store
        await asyncio.to_thread(_check_records_readable, config.db_url)
        return await asyncio.to_thread(DeskLock.take, config.db_url, purpose, create=create)

    @classmethod
    async def open(
        cls,
        config: DeskConfig,
        *,
        clock: Clock | None = None,
        wrap: GatewayWrapper | None = None,
        progress: RecoveryProgress | None = None,
        lock: DeskLock | None = None,
        purpose: str = "desk",
    ) -> Desk:
        """Open the store, connect every venue, recover the OMS from the log.

        ``wrap`` puts something between a venue and its managed gateway (the fault injector);
        ``progress`` hears how far the OMS's recovery is (``OrderManager.start``); ``lock``
        is the database's, from ``claim`` (taken here for ``purpose`` if not), and goes if
        the desk does not open.
        """
        create = not config.existing_store
        if lock is None:
            lock = await cls.claim(config, purpose)
        try:
            store = await asyncio.to_thread(
                SqlEventStore, config.db_url, create=create, fence=lock.fence
            )
        except BaseException:
            lock.release()
            raise
        try:
            desk = cls._assemble(config, store, lock, clock or SystemClock(), wrap)
        except BaseException:
            await asyncio.to_thread(store.close)
            lock.release()
            raise
        try:
            await desk._start(progress)
        except BaseException:
            try:
                await desk.close()  # what started stops; the store closes; the lock goes
            except Exception as also:  # the reason it did not open is the one to tell
                log.warning("closing the desk that failed to open failed too: %s", also)
            raise
        return desk

    @classmethod
    def _assemble(
        cls,
        config: DeskConfig,
        store: SqlEventStore,
        lock: DeskLock,
        clock: Clock,
        wrap: GatewayWrapper | None,
    ) -> Desk:
        venues = [
            SimulatedVenue(_profile(profile, config), clock, seed=config.seed * 100 + number)
            for number, profile in enumerate(config.venues)
        ]
        gateways = [
            ManagedGateway(
                wrap(venue) if wrap else venue,
                clock,
                orders_per_second=config.orders_per_second,
                burst=config.burst,
                heartbeat_interval=config.heartbeat_interval,
                request_timeout=config.request_timeout,
                breaker=config.breaker,
                seed=config.seed * 100 + number,
            )
            for number, venue in enumerate(venues)
        ]
        instruments = instruments_of(venues)
        router = SmartRouter(
            instruments,
            weights=config.router_weights,
            split_threshold=config.split_threshold,
            min_slice_notional=config.min_slice_notional,
        )
        oms = OrderManager(
            store=store,
            venues=gateways,
            instruments=instruments,
            router=router,
            risk=RiskDesk(config.risk),
            clock=clock,
            ids=RandomIds(),
            clearing=SimulatedClearing(
                failure_rate=config.settlement_failure_rate, seed=config.seed
            ),
            config=config.oms,
        )
        return cls(config, store, venues, gateways, oms, clock, lock)

    async def _start(self, progress: RecoveryProgress | None) -> None:
        """The venues' records back, the markets' books filled, the venues connected, the OMS
        recovered, then the desk's own tasks."""
        strangers = self._seeding_due = await asyncio.to_thread(self._restore_venue_records)
        if self._log is not None and not strangers:  # kept as restored, before the venues
            await self._start_journal()  # change and the OMS writes what it learns of them
        for market in self.markets:  # the books have depth before the first order
            market.step()
        await asyncio.gather(*(g.start() for g in self.gateways.values()))
        oms = self.oms
        await oms.start(progress)
        if strangers:
            self._take_logged_positions()
        new_log = self._log is None
        if new_log:  # its id for the venues' records is read now (at the close the database
            # may be gone), once its first events (the venues) are durable
            await oms.durable()
            self._log = await asyncio.to_thread(self.store.first_event_id)
        if self._opened is None:  # the first desk on this log has just opened it
            await oms.durable()
            self._opened = await asyncio.to_thread(self.store.stream_start_id, DESK_STREAM)
        if new_log or strangers:
            await self._start_journal()
        if self.config.mark_interval is not None:
            self._tasks.spawn("marks", self._mark_every(self.config.mark_interval))
        if self._lock.can_be_lost:
            self._tasks.spawn("desk lock", self._keep_lock())
        self._tasks.spawn("reconciliation", self.reconciler.watch())
        self._tasks.spawn("escalation rules", self.escalator.watch())
        self.reconciler.request("startup")
        collector.tune()
        self._tasks.spawn(
            "garbage collector", collector.collect_when_quiet(lambda: oms.events_recorded)
        )

    async def _keep_lock(self) -> None:
        """Stop the OMS once the database's lock is lost: another desk may take the database."""
        while True:
            await asyncio.sleep(LOCK_CHECK_SECONDS)
            lost = await asyncio.to_thread(self._lock.lost)
            if lost is not None:
                self.oms.stop(f"{lost}; another desk may work on the database now")
                return

    async def _mark_every(self, seconds: float) -> None:
        """The positions' marks follow the markets, traded or not."""
        while True:
            await asyncio.sleep(seconds)
            self.oms.refresh_marks()

    def step_markets(self, symbol: str | None = None) -> None:
        """One tick of the synthetic markets (of one instrument, or all of them)."""
        for market in self.markets:
            if symbol is None or market.symbol == symbol:
                market.step()

    def mid(self, symbol: str) -> Decimal:
        """The instrument's mid on the first venue that lists it."""
        return self._quoting[symbol].mid

    def end_session(self) -> None:
        """The close at every venue: DAY orders expire."""
        for venue in self.venues.values():
            venue.end_session()

    async def close(self, *, release: bool = True) -> None:
        """Stop the OMS (its events all durable), the gateways, then the store; the simulated
        venues keep their records for the next session, unless the database's lock was lost
        (``lock_lost``): the desk that took it has its own. ``release=False`` keeps the lock
        until ``release_lock``, for a check of what this desk wrote."""
        try:
            await self._tasks.shutdown()
            await self.oms.close()
            await asyncio.gather(*(g.close() for g in self.gateways.values()))
            self._journal.close()
            self.lock_lost = await asyncio.to_thread(self._lock.lost)
            if self.lock_lost is None:
                records = self._venue_records()
                if records is not None and await asyncio.to_thread(self._keep, records):
                    _forget(_journal_path(records.path))
            else:
                log.warning("the venues' records are not kept: %s", self.lock_lost)
        finally:
            try:
                await asyncio.to_thread(self.store.close)
            finally:
                if release or self.lock_lost is not None:
                    self._lock.release()  # whatever failed above, the database is free again

    def release_lock(self) -> None:
        """Let the database go after ``close(release=False)``."""
        self._lock.release()

    def _restore_venue_records(self) -> bool:
        """The venues' records of this log's last session, if it had one, with what its
        journal kept after them. Records kept for another log (a database made anew where an
        old one was) are left: venues holding orders this log never sent would raise a break
        and an alert for each. Whether the venues meet a log they have no records of at all
        (see ``_take_logged_positions``)."""
        first = self._log = self.store.first_event_id()
        self._opened = self.store.stream_start_id(DESK_STREAM)
        path = venue_records_path(self.config.db_url, first)
        if path is not None and not path.exists():
            path = _before_named_by_log(self.config.db_url) or path
        kept = _read_records(path) if path is not None and path.exists() else None
        if kept is not None and not self._of_this_log(kept):
            log.warning("%s: the records of another database's venues; not taken", path)
            kept = None
        strangers = kept is None and first is not None
        if kept is None:
            kept = KeptVenues(log=first or "", venues={})
        if path is not None and first is not None:
            kept = _journaled(kept, path, JournalHead(log=first, follows=kept.token))
            strangers = strangers and not kept.venues  # the journal of a first session
        for name, records in kept.venues.items():
            if name in self.venues:
                self.venues[name].restore(records)
        self._records_restored = True
        return strangers

    def _of_this_log(self, kept: KeptVenues) -> bool:
        """Whether records are this log's: named by its first event, and by its DeskOpened
        (a seeded generated log repeats its first event in a database made anew; records
        kept before they named it take the first event alone)."""
        if self._log is None or kept.log not in (self._log, LEGACY_RECORDS):
            return False
        return kept.opened in ("", self._opened)

    def _take_logged_positions(self) -> None:
        """Venues with no record of a log's trades (a generated log, or records kept on
        another machine) take the positions its fills booked at each as their own: else
        every one of them would be a break, which says nothing about the venues."""
        log.info("the simulated venues have no records of this log: they take its positions")
        held: dict[str, list[tuple[str, str, Decimal]]] = {}
        oms = self.oms
        # ours as reconciliation counts it: the fills and what breaks adjusted, which would
        # otherwise look explained by the venues and be taken back
        for (venue, account, instrument), quantity in oms.breaks.ours(oms.venue_positions).items():
            held.setdefault(venue, []).append((account, instrument, quantity))
        for venue, positions in held.items():
            if venue in self.venues:
                self.venues[venue].take_positions(positions)
        self._seeding_due = False

    async def _start_journal(self) -> None:
        """Keep the venues' records as they stand now, then their changes in a new journal
        that follows them."""
        records = self._venue_records()
        if records is None or not await asyncio.to_thread(self._keep, records):
            self._journal.abandon()
            return
        head = JournalHead(log=records.kept.log, follows=records.kept.token)
        try:
            self._journal.open(_journal_path(records.path), head)
        except OSError as error:
            self._journal.abandon()
            log.warning(
                "the simulated venues' journal cannot be started in %s (%s): a desk killed "
                "before its close will find its venues as they were when this session started",
                records.path.parent,
                error.strerror or error,
            )

    def _venue_records(self) -> _Records | None:
        """The venues' records now, with where to keep them (not over ones that could not be
        read: a desk that failed to open with them must not leave fresh, empty venues in
        their place); None when there is nowhere."""
        first = self._log
        path = venue_records_path(self.config.db_url, first)
        if first is None or path is None or not self._records_restored or self._seeding_due:
            return None
        venues = {name: venue.records() for name, venue in self.venues.items()}
        kept = KeptVenues(
            log=first, opened=self._opened or "", venues=venues, token=secrets.token_hex(8)
        )
        return _Records(path, kept)

    def _keep(self, records: _Records) -> bool:
        """Write the records, whole or not at all; whether they were written."""
        path = records.path
        # a process killed while writing leaves the last records
        written = path.with_name(path.name + ".new")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            written.write_bytes(msgspec.json.encode(records.kept))
            os.replace(written, path)
            before = _before_named_by_log(self.config.db_url)
            if before is not None:  # taken up now, and kept under the log's name
                before.unlink()
        except OSError as error:  # the session's events are durable: only the venues forget
            log.warning(
                "the simulated venues' records could not be kept in %s (%s): they start "
                "afresh next time, and reconciliation will find their positions gone",
                path,
                error.strerror or error,
            )
            return False
        return True


class _Records(msgspec.Struct, frozen=True):
    path: Path
    kept: KeptVenues


class KeptVenues(msgspec.Struct, frozen=True, kw_only=True):
    """The simulated venues' records, the log they belong to (its first event's id), and
    their own id, which the journal of the changes made after them names."""

    log: str
    venues: dict[str, VenueRecords]
    token: str = ""
    opened: str = ""  # the log's DeskOpened id; "" in records kept before they named it


def _journal_path(records: Path) -> Path:
    return records.with_name(records.name.removesuffix(".json") + ".journal")


def _journaled(kept: KeptVenues, records: Path, head: JournalHead) -> KeptVenues:
    """The records with the changes their journal kept after them."""
    path = _journal_path(records)
    try:
        frames = read_journal(path, head)
    except (JournalUnreadable, OSError) as error:
        raise _unreadable(path, error) from None
    changes: dict[str, list[VenueRecords]] = {}
    for frame in frames:
        for name, change in frame.items():
            changes.setdefault(name, []).append(change)
    venues = dict(kept.venues)
    for name, changed in changes.items():
        venues[name] = venues.get(name, VenueRecords()).merged(changed)
    return msgspec.structs.replace(kept, venues=venues)


def _forget(path: Path) -> None:
    """Remove a journal the records written since have taken in (left, it is not read)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        log.warning("%s could not be removed (%s); it is not read again", path, error)


LEGACY_RECORDS = ""  # records kept before they named their log: taken as this log's


def _read_records(path: Path) -> KeptVenues:
    """The venues' records in ``path``; ``ConfigError`` if they cannot be read. Those kept
    before records named their log are taken as this log's."""
    try:
        raw = msgspec.json.decode(path.read_bytes())
        if isinstance(raw, dict) and "log" not in raw:
            venues = msgspec.convert(raw, dict[str, VenueRecords])
            return KeptVenues(log=LEGACY_RECORDS, venues=venues)
        return msgspec.convert(raw, KeptVenues)
    except (msgspec.DecodeError, OSError) as error:  # a ValidationError is a DecodeError
        raise _unreadable(path, error) from None


def _check_records_readable(db_url: str) -> None:
    """Records beside a SQLite database that cannot be read refuse the desk's start (see
    ``_restore_venue_records``): said before the lock and the database are made, so that the
    refused start leaves nothing new behind."""
    parse_url(db_url)  # a malformed URL is said as the lock would say it
    path = venue_records_path(db_url, None)
    if path is not None and path.exists():
        _read_records(path)


def _unreadable(path: Path, error: Exception) -> ConfigError:
    why = (error.strerror if isinstance(error, OSError) else None) or str(error)
    return ConfigError(
        f"{path}: the simulated venues' records cannot be read ({why}); move the file away to "
        "start the venues afresh"
    )


def venue_records_path(db_url: str, log: str | None) -> Path | None:
    """Where the simulated venues keep their records between sessions of the log whose
    first event is ``log``: beside a SQLite database file; for a server database, in the
    user's data directory under the database's name and ``log``, so that any spelling of the
    server finds them, and a database made anew starts with venues of its own. Nowhere for
    an in-memory database, or a server database whose log is empty."""
    url = make_url(db_url)
    if url.drivername.startswith("sqlite"):
        if url.database in (None, "", ":memory:"):
            return None
        database = database_file(url)  # a link to the database finds the same records
        return database.with_name(database.name + ".venues.json")
    if log is None:
        return None
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{url.database}-{log}")
    return data_dir() / "venues" / f"{readable}.venues.json"


def _before_named_by_log(db_url: str) -> Path | None:
    """A server database's venue records as blotter kept them before they were named by
    their log (by server and database), if they are there: taken up once, as this log's."""
    url = make_url(db_url)
    if url.drivername.startswith("sqlite"):
        return None
    where = f"{url.host or 'local'}:{url.port or 5432}/{url.database}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{url.host or 'local'}-{url.database}")
    path = data_dir() / "venues" / f"{readable}-{digest}.venues.json"
    return path if path.exists() else None


def _profile(profile: VenueProfile, config: DeskConfig) -> VenueProfile:
    if config.random_disconnects:
        return profile
    return msgspec.structs.replace(profile, mean_seconds_between_disconnects=None)
