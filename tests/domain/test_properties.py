"""Properties of every fold, on logs Hypothesis draws.

Conservation after every event; replay equals live application; an event applied twice changes
nothing; positions are exact against a rational reference; garbage never stops a fold.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from blotter.domain.events import (
    ChildAcknowledged,
    ChildCanceled,
    ChildCancelRejected,
    ChildCancelRequested,
    ChildExpired,
    ChildFill,
    ChildRejected,
    ChildSubmitted,
    Event,
    decode_event,
    encode_event,
)
from blotter.domain.ledger import Ledger
from blotter.domain.order import OrderAggregate
from blotter.domain.positions import Position
from blotter.domain.synthetic import synthetic_log
from blotter.domain.values import Side

from .builders import OrderStory, snapshot

logs = st.builds(
    lambda n, seed: list(synthetic_log(n, seed, concurrency=5)),
    st.integers(1, 25),
    st.integers(0, 2**32),
)


def _conserved(order: OrderAggregate) -> bool:
    parts = [(order.quantity, order.filled, order.leaves, order.canceled)]
    parts += [(c.quantity, c.filled, c.leaves, c.canceled) for c in order.children.values()]
    return all(q == f + lv + c and min(f, lv, c) >= 0 for q, f, lv, c in parts)


def _book(ledger: Ledger) -> tuple[object, ...]:
    return (
        {oid: snapshot(order) for oid, order in ledger.orders.items()},
        {key: (p.quantity, p.cost, p.realized_pnl, p.fees) for key, p in ledger.positions.items()},
        [a.alert_id for a in ledger.alerts],
    )


def _fold(events: list[Event]) -> Ledger:
    ledger = Ledger()
    for event in events:
        ledger.apply(event)
    return ledger


@given(logs)
def test_every_order_conserves_its_quantity_after_every_event(log: list[Event]) -> None:
    ledger = Ledger()
    for event in log:
        ledger.apply(event)
        assert _conserved(ledger.orders[event.stream_id])


@given(logs)
def test_replaying_a_log_rebuilds_exactly_the_state_built_live(log: list[Event]) -> None:
    live = Ledger()
    for event in log:
        live.apply(event)
        live.take_changes()  # as the store's writer does, batch by batch
    replayed = _fold([decode_event(encode_event(e)) for e in log])
    assert _book(replayed) == _book(live)


@given(logs, st.data())
def test_applying_events_twice_changes_nothing(log: list[Event], data: st.DataObject) -> None:
    repeats = data.draw(st.lists(st.integers(0, len(log) - 1), max_size=10))
    noisy = list(log)
    for index in sorted(repeats, reverse=True):
        # a repeat may come at once or much later, as a re-sent report does
        at = data.draw(st.integers(index + 1, len(noisy)))
        noisy.insert(at, log[index])
    clean, repeated = _fold(log), _fold(noisy)
    assert _book(repeated) == _book(clean)
    assert repeated.duplicates == len(repeats)


def _reference(fills: list[tuple[Side, int, int]]) -> tuple[Fraction, Fraction, Fraction]:
    """Average-cost position in exact rationals: quantity, cost, realized."""
    quantity = cost = realized = Fraction(0)
    for side, lots, ticks in fills:
        signed = Fraction(lots if side is Side.BUY else -lots)
        price = Fraction(ticks, 100)
        if quantity == 0 or (quantity > 0) == (signed > 0):
            quantity, cost = quantity + signed, cost + signed * price
            continue
        avg = cost / quantity
        closing = min(abs(signed), abs(quantity))
        realized += (price - avg) * closing * (1 if quantity > 0 else -1)
        new = quantity + signed
        if new == 0:
            cost = Fraction(0)
        elif (new > 0) == (quantity > 0):
            cost = avg * new
        else:
            cost = new * price
        quantity = new
    return quantity, cost, realized


def _close(value: Decimal, exact: Fraction) -> bool:
    return abs(Fraction(value) - exact) <= Fraction(1, 10**18) * max(1, abs(exact))


fills = st.lists(
    st.tuples(st.sampled_from(Side), st.integers(1, 500), st.integers(1, 50_000)), max_size=40
)


@given(fills)
def test_positions_match_an_exact_rational_reference(drawn: list[tuple[Side, int, int]]) -> None:
    position = Position("ACC-1", "AAPL")
    for side, lots, ticks in drawn:
        position.apply_fill(side, Decimal(lots), Decimal(ticks) / 100, Decimal(0))
    quantity, cost, realized = _reference(drawn)
    assert position.quantity == quantity  # quantities are always exact
    assert _close(position.cost, cost)
    assert _close(position.realized_pnl, realized)


CHILD_EVENTS = st.one_of(
    st.builds(ChildSubmitted, child_id=st.sampled_from(["A", "B", "Z"])),
    st.builds(
        ChildAcknowledged, child_id=st.sampled_from(["A", "B", "Z"]), venue_order_id=st.just("V")
    ),
    st.builds(ChildRejected, child_id=st.sampled_from(["A", "B"]), reason=st.just("no")),
    st.builds(ChildCancelRequested, child_id=st.sampled_from(["A", "B"])),
    st.builds(ChildCanceled, child_id=st.sampled_from(["A", "B"])),
    st.builds(ChildCancelRejected, child_id=st.sampled_from(["A", "B"]), reason=st.just("no")),
    st.builds(ChildExpired, child_id=st.sampled_from(["A", "B"])),
    st.builds(
        ChildFill,
        child_id=st.sampled_from(["A", "B", "Z"]),
        exec_id=st.sampled_from(["X1", "X2", "X3", "X4", "X5", "X6"]),
        quantity=st.integers(-5, 80).map(Decimal),
        price=st.integers(0, 20).map(Decimal),
    ),
)


@given(st.lists(CHILD_EVENTS, max_size=40))
def test_no_report_however_wrong_stops_the_fold_or_breaks_conservation(
    reports: list[object],
) -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "60"), ("B", "ARCX", "40"))
    for payload in reports:
        story.add(payload)  # type: ignore[arg-type]
        assert _conserved(story.order)
    assert story.order.filled <= story.order.quantity
