"""Properties of every fold, on logs Hypothesis draws.

Conservation after every event; replay equals live application; an event applied twice changes
nothing; positions are exact against a rational reference; garbage never stops a fold.
"""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import msgspec
from hypothesis import event, example, given
from hypothesis import strategies as st

from blotter.domain.clock import ManualClock
from blotter.domain.events import (
    AnomalyKind,
    AnomalyRecorded,
    BreakResolved,
    ChildAcknowledged,
    ChildCanceled,
    ChildCancelRejected,
    ChildCancelRequested,
    ChildExpired,
    ChildFill,
    ChildRejected,
    ChildSlice,
    ChildStatusAnswered,
    ChildSubmitted,
    Event,
    OrderCanceled,
    OrderCancelRequested,
    OrderRejected,
    OrderRouted,
    OrderSettled,
    OrderSettlementFailed,
    OrderValidated,
    Payload,
    Severity,
    decode_event,
    encode_event,
    make_event,
)
from blotter.domain.ids import SequentialIds
from blotter.domain.ledger import Ledger
from blotter.domain.order import OrderAggregate, Outcome, hand_back, late_fill_shortfall
from blotter.domain.positions import Position
from blotter.domain.synthetic import synthetic_log
from blotter.domain.values import Liquidity, Side
from blotter.domain.workflows import ORDER
from blotter.domain.workflows import OrderState as S

from .builders import OrderStory, book, conserved, decisions, fold, snapshot, stream

D = Decimal

logs = st.builds(
    lambda n, seed, concurrency: list(synthetic_log(n, seed, concurrency=concurrency)),
    st.integers(1, 30),
    st.integers(0, 2**32 - 1),
    st.integers(1, 20),
)


def _signed_fills(ledger: Ledger) -> dict[tuple[str, str], Decimal]:
    """What each position's quantity must be: the signed sum of every order's fills."""
    held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for order in ledger.orders.values():
        if order.ticket is not None and order.filled:
            key = (order.ticket.account, order.ticket.instrument)
            held[key] += order.filled * order.ticket.side.sign
    return held


# --- (a) conservation ----------------------------------------------------------------------


@given(logs)
def test_every_order_and_child_conserves_its_quantity_after_every_event(log: list[Event]) -> None:
    ledger = Ledger()
    for e in log:
        ledger.apply(e)
        assert all(conserved(order) for order in ledger.orders.values())
    for order in ledger.orders.values():
        assert order.filled == sum((f.quantity for f in order.fills), D(0))
        assert order.notional == sum((f.quantity * f.price for f in order.fills), D(0))
        assert order.filled == sum((c.filled for c in order.children.values()), D(0))
    positions = {key: p.quantity for key, p in ledger.positions.items()}
    assert positions == _signed_fills(ledger)


@given(logs)
def test_a_synthetic_log_folds_cleanly_and_every_order_ends_closed(log: list[Event]) -> None:
    ledger = fold(log)
    for order in ledger.orders.values():
        assert order.state in ORDER.terminal, order.order_id
        # the only report that does not fit is the deliberate late duplicate cancel
        assert [a.detail for a in order.anomalies] in (
            [],
            [f"order {order.order_id}: event OrderCanceled is not allowed in state CANCELED"],
        )
    assert ledger.orphans == []
    assert ledger.duplicates == 0
    assert ledger.events == len(log)
    assert list(synthetic_log(3, 7)) == list(synthetic_log(3, 7))  # a seed is a log


@given(logs)
def test_a_late_too_late_to_cancel_changes_no_closed_order(log: list[Event]) -> None:
    ledger, clock, ids = fold(log), ManualClock(), SequentialIds("late")
    for order in ledger.orders.values():
        for child in [c for c in order.children.values() if c.state is S.FILLED]:
            before = (order.state, order.filled, order.canceled, len(order.anomalies))
            late = make_event(
                ChildCancelRejected(child_id=child.child_id, reason="too late to cancel"),
                stream_id=order.order_id,
                stream_version=order.version + 1,
                actor="XNAS",
                correlation_id=order.order_id,
                clock=clock,
                ids=ids,
            )
            assert ledger.apply(late) is Outcome.APPLIED
            assert (order.state, order.filled, order.canceled, len(order.anomalies)) == before
            assert child.state is S.FILLED


# --- (b) replay ----------------------------------------------------------------------------


def _copy(position: Position) -> Position:
    """A position as the store would load it: equal, but not the live object."""
    copy = Position(position.account, position.instrument)
    for name in ("quantity", "cost", "realized_pnl", "fees", "updated_at"):
        setattr(copy, name, getattr(position, name))
    return copy


def _interleaved(log: list[Event], rng: random.Random) -> list[Event]:
    """Another interleaving of the same streams, each stream's own order kept."""
    queues: dict[str, list[Event]] = defaultdict(list)
    for e in log:
        queues[e.stream_id].append(e)
    turns = [e.stream_id for e in log]
    rng.shuffle(turns)
    return [queues[stream_id].pop(0) for stream_id in turns]


@given(logs, st.data())
def test_replaying_a_log_rebuilds_exactly_the_state_built_live(
    log: list[Event], data: st.DataObject
) -> None:
    live = Ledger()
    batches = data.draw(st.lists(st.integers(1, 50), min_size=1, max_size=5))
    for i, e in enumerate(log):
        live.apply(e)
        if i % batches[i % len(batches)] == 0:
            live.take_changes()  # as the store's writer does, batch by batch
    expected = book(live)
    assert book(fold(log, Ledger(track_changes=False))) == expected
    assert book(fold(decode_event(encode_event(e)) for e in log)) == expected

    # an order depends on its own stream only; a position's quantity and fees do not depend
    # on how the streams interleave (its cost and realized P&L do: average cost is path-bound)
    other = fold(_interleaved(log, data.draw(st.randoms(use_true_random=False))))
    assert {oid: snapshot(o) for oid, o in other.orders.items()} == expected[0]
    assert {k: (p.quantity, p.fees) for k, p in other.positions.items()} == {
        k: (p.quantity, p.fees) for k, p in live.positions.items()
    }
    assert {a.alert_id for a in other.alerts} == {a.alert_id for a in live.alerts}

    # restored after a restart: streams back in memory, positions as they were, nothing twice
    restored = Ledger()
    for position in live.positions.values():
        restored.restore_position(_copy(position))
    streams: dict[str, list[Event]] = defaultdict(list)
    for e in log:
        streams[e.stream_id].append(e)
    for events in streams.values():
        restored.restore_stream(events)
    assert book(restored)[:3] == expected[:3]


# --- (c) idempotency -----------------------------------------------------------------------


GHOST = "O-GHOST"


def _strays() -> list[Event]:
    """Events the ledger refuses: for an order never created, for a break never opened."""
    ghost = OrderStory(order_id=GHOST)
    ghost.routed(("A", "XNAS", "100"))
    ghost.live("A")
    fill = ghost.fill("A", "10")
    return [fill, *stream("BRK-GHOST", BreakResolved(reason="never opened"))]


def _resent(e: Event, how: int) -> Event:
    """The same event again: as is, through the codec, or a fill re-sent under a new event id.

    (A fill for an order the ledger never saw has no order to remember its execution id; re-sent
    under a new event id it is a new orphan, so it is only ever re-sent as is.)
    """
    if how == 1:
        return decode_event(encode_event(e))
    if how == 2 and isinstance(e.payload, ChildFill) and e.stream_id != GHOST:
        return msgspec.structs.replace(e, event_id=f"{e.event_id}-resent")
    return e


@given(logs, st.data())
def test_applying_any_event_twice_changes_nothing(log: list[Event], data: st.DataObject) -> None:
    log = list(log)
    for stray in _strays():
        log.insert(data.draw(st.integers(0, len(log)), label="stray at"), stray)
    repeats = data.draw(st.lists(st.integers(0, len(log) - 1), max_size=12), label="repeats")
    noisy = list(log)
    for index in sorted(repeats, reverse=True):
        # a repeat may come at once or much later, as a re-sent report does
        at = data.draw(st.integers(index + 1, len(noisy)))
        noisy.insert(at, _resent(log[index], data.draw(st.integers(0, 2))))
    clean, repeated = fold(log), fold(noisy)
    assert book(repeated) == book(clean)
    assert repeated.duplicates == len(repeats)
    assert repeated.anomaly_count == clean.anomaly_count


# --- (d) exact positions -------------------------------------------------------------------


def _fits(x: Fraction) -> bool:
    """True if ``x`` is a decimal of at most 28 significant digits, held exactly by Decimal."""
    den, twos, fives = x.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    if den != 1:
        return False
    places = max(twos, fives)
    digits = str(abs(x.numerator * 10**places // x.denominator)).rstrip("0")
    return len(digits) <= 28


class Reference:
    """Average-cost position in exact rationals; ``exact`` says whether Decimal can keep up."""

    def __init__(self) -> None:
        self.quantity = self.cost = self.realized = self.fees = self.notional = Fraction(0)
        self.exact = True

    def _held(self, *values: Fraction) -> None:
        self.exact = self.exact and all(_fits(v) for v in values)

    def fill(self, side: Side, quantity: Fraction, price: Fraction, fee: Fraction) -> None:
        signed = quantity * side.sign
        held = self.quantity
        self.fees += fee
        self.notional += quantity * price
        if held == 0 or (held > 0) == (signed > 0):
            self.quantity, self.cost = held + signed, self.cost + signed * price
            self._held(signed * price, self.cost)
            return
        avg = self.cost / held
        closing = min(quantity, abs(held))
        gain = (price - avg) * closing * (1 if held > 0 else -1)
        self.realized += gain
        self.quantity = held + signed
        if self.quantity == 0:
            self.cost = Fraction(0)
        elif (self.quantity > 0) == (held > 0):
            self.cost = avg * self.quantity
        else:
            self.cost = self.quantity * price
        self._held(avg, price - avg, gain, self.realized, self.cost)


def _agrees(value: Decimal | None, exact: Fraction, reference: Reference) -> bool:
    """Equal when Decimal can hold every step exactly; else within 1e-20 of the notional."""
    assert value is not None
    if reference.exact and _fits(exact):
        return Fraction(value) == exact
    scale = max(abs(exact), reference.notional)
    return abs(Fraction(value) - exact) <= scale / 10**20


FILLS = st.lists(
    st.tuples(
        st.sampled_from(Side), st.integers(1, 500), st.integers(1, 50_000), st.integers(0, 99)
    ),
    max_size=40,
)


TICKS = st.sampled_from(["0.01", "0.5", "0.0001", "5"])
LOTS = st.sampled_from(["1", "0.001", "100"])


@given(TICKS, LOTS, FILLS)
@example("0.01", "1", [(Side.BUY, 2, 1000, 0), (Side.BUY, 2, 1100, 0), (Side.SELL, 3, 1200, 0)])
@example("0.01", "1", [(Side.BUY, 1, 1000, 0), (Side.BUY, 2, 1001, 0), (Side.SELL, 3, 1002, 0)])
def test_positions_match_an_exact_rational_reference(
    tick: str, lot: str, fills: list[tuple[Side, int, int, int]]
) -> None:
    position, reference = Position("ACC-1", "X"), Reference()
    for side, lots, ticks, cents in fills:
        quantity, price, fee = lots * D(lot), ticks * D(tick), cents * D("0.01")
        position.apply_fill(side, quantity, price, fee)
        reference.fill(side, Fraction(quantity), Fraction(price), Fraction(fee))
        assert position.quantity == reference.quantity  # quantities are always exact
    assert position.fees == reference.fees
    event("exact" if reference.exact else "rounded")
    assert _agrees(position.cost, reference.cost, reference)
    assert _agrees(position.realized_pnl, reference.realized, reference)
    if reference.quantity:
        assert _agrees(position.avg_cost, reference.cost / reference.quantity, reference)
        mark = Fraction(fills[-1][2]) * Fraction(D(tick))
        unrealized = mark * reference.quantity - reference.cost
        assert _agrees(position.unrealized_pnl(D(fills[-1][2]) * D(tick)), unrealized, reference)
    else:
        assert position.avg_cost is None
        assert position.cost == 0


# --- (e) garbage ---------------------------------------------------------------------------

CHILDREN = st.sampled_from(["A", "B", "C", "Z"])  # A and B are routed; C may be; Z never is
QUANTITIES = st.one_of(st.sampled_from([40, 60, 100]), st.integers(-5, 120)).map(Decimal)
GARBAGE: st.SearchStrategy[Payload] = st.one_of(
    st.builds(ChildSubmitted, child_id=CHILDREN),
    st.builds(ChildAcknowledged, child_id=CHILDREN, venue_order_id=st.just("V")),
    st.builds(ChildRejected, child_id=CHILDREN, reason=st.just("no")),
    st.builds(ChildCancelRequested, child_id=CHILDREN, returning=st.booleans()),
    st.builds(ChildCanceled, child_id=CHILDREN, returned=st.booleans()),
    st.builds(ChildCancelRejected, child_id=CHILDREN, reason=st.just("no")),
    st.builds(ChildExpired, child_id=CHILDREN),
    st.builds(ChildStatusAnswered, child_id=CHILDREN, answer=st.just("CANCELED")),
    st.builds(
        ChildFill,
        child_id=CHILDREN,
        exec_id=st.sampled_from(["X1", "X2", "X3", "X4", "X5", "X6", "X7", "X8"]),
        quantity=QUANTITIES,
        price=st.integers(-1, 20).map(Decimal),
        fee=st.just(Decimal(0)),
        liquidity=st.sampled_from(Liquidity),
        late=st.booleans(),
    ),
    st.builds(
        OrderRouted,
        slices=st.lists(
            st.builds(
                ChildSlice,
                child_id=CHILDREN,
                client_order_id=st.just("c"),
                venue=st.sampled_from(["XNAS", "ARCX"]),
                quantity=QUANTITIES,
            ),
            max_size=2,
        ).map(tuple),
    ),
    st.sampled_from(
        [
            OrderValidated(),
            OrderCancelRequested(),
            OrderCanceled(),
            OrderRejected(reason="no"),
            OrderSettled(),
            OrderSettlementFailed(attempt=1, reason="timeout"),
            AnomalyRecorded(kind=AnomalyKind.STALE_REPORT, severity=Severity.INFO, detail="old"),
        ]
    ),
)


@given(
    st.sampled_from(["created", "routed", "live"]),
    st.lists(st.tuples(GARBAGE, st.integers(0, 9)), max_size=50),
)
def test_no_report_however_wrong_stops_the_fold_or_breaks_conservation(
    setup: str, reports: list[tuple[Payload, int]]
) -> None:
    """Whatever arrives: no exception, conservation, and exactly one anomaly per refusal."""
    story = OrderStory(quantity="100")
    if setup != "created":
        story.routed(("A", "XNAS", "60"), ("B", "ARCX", "40"))
    if setup == "live":
        story.live("A", "B")
    ledger = fold(story.events)
    order = ledger.orders["O-1"]
    for payload, resend in reports:
        if resend == 9:  # as the OMS records a late fill: what makes room for it first
            shortfall = late_fill_shortfall(order, [payload])
            for request in hand_back(order, shortfall, "room"):
                story.events.append(story.event(request))
                assert ledger.apply(story.events[-1]) is Outcome.APPLIED
                assert conserved(order)
        # now and then the venue re-sends an earlier event instead
        e = story.events[-1] if resend == 0 else story.event(payload)
        story.events.append(e)
        before, anomalies = decisions(order), len(order.anomalies)
        outcome = ledger.apply(e)
        assert conserved(order)
        recorded = len(order.anomalies) - anomalies
        if outcome is Outcome.DUPLICATE:
            assert decisions(order) == before
        elif outcome is Outcome.ANOMALY:  # kept and alerted, never silently dropped
            assert recorded == 1
        else:  # an applied event fits, so it raises no alert of its own
            assert recorded == isinstance(e.payload, AnomalyRecorded)
    assert order.filled <= order.quantity
    assert order.filled == sum((f.quantity for f in order.fills), D(0))
    held = ledger.positions.get(("ACC-1", "AAPL"))
    assert (held.quantity if held else 0) == order.filled
    assert len(ledger.alerts) == len(order.anomalies)


@given(st.lists(GARBAGE, max_size=20))
def test_an_aggregate_never_raises_even_before_it_is_created(reports: list[Payload]) -> None:
    story = OrderStory(quantity="100")
    order = OrderAggregate("O-1")
    for payload in reports:
        assert order.apply(story.event(payload)) is Outcome.ANOMALY
    assert [a.detail.endswith("before OrderCreated") for a in order.anomalies] == [True] * len(
        reports
    )
    created = story.events[0]
    assert order.apply(created) is Outcome.APPLIED
    assert order.apply(created) is Outcome.DUPLICATE
    assert (order.quantity, order.leaves, order.state) == (D(100), D(100), ORDER.initial)


# --- (e) packed closed orders ----------------------------------------------------------------


@given(logs, st.data())
def test_a_packed_closed_order_reads_and_folds_as_an_unpacked_one(
    log: list[Event], data: st.DataObject
) -> None:
    packed, unpacked = fold(log), fold(log, Ledger(pack_closed=False))
    assert book(packed) == book(unpacked)
    closed = [o for o in packed.orders.values() if o.is_terminal and not o.live_children]
    assert closed
    assert all(o.is_packed for o in closed)
    assert not any(o.is_packed for o in unpacked.orders.values())
    for order in closed:
        booked = unpacked.orders[order.order_id].fills
        assert order.fill_count == len(booked)
        assert all(order.knows_exec(f.exec_id) for f in booked)
        assert not order.knows_exec("X-never")
    # the whole log again, in any order: every event is a duplicate, and the orders pack again
    for e in data.draw(st.permutations(log)):
        assert packed.apply(e) is Outcome.DUPLICATE
    assert book(packed) == book(unpacked)
    assert all(o.is_packed for o in closed)
