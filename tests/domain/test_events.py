"""The envelope and its one codec: every payload type round-trips; old schemas are upcast."""

from __future__ import annotations

import enum
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blotter.domain.clock import ManualClock
from blotter.domain.events import (
    PAYLOAD_TYPES,
    ChildFill,
    Event,
    OrderCancelRequested,
    OrderCreated,
    OrderValidated,
    Payload,
    UnknownEventType,
    UnsupportedSchema,
    decode_event,
    decode_payload,
    encode_event,
    encode_payload,
    make_event,
    make_events,
    to_builtins,
)
from blotter.domain.ids import SequentialIds
from blotter.domain.values import Liquidity, OrderType, Side, TimeInForce

SAMPLES = Path(__file__).with_name("samples")

decimals = st.decimals(
    allow_nan=False,
    allow_infinity=False,
    places=6,
    min_value=Decimal("-1e9"),
    max_value=Decimal("1e9"),
)


def for_type(annotation: Any) -> st.SearchStrategy[Any]:
    """A strategy for a payload field, from its annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([for_type(a) for a in typing.get_args(annotation)])
    if origin is tuple:
        items = typing.get_args(annotation)
        if len(items) == 2 and items[1] is Ellipsis:
            return st.lists(for_type(items[0]), max_size=3).map(tuple)
        return st.tuples(*(for_type(item) for item in items))
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(list(annotation))
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return struct_of(annotation)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: st.text(max_size=20),
        int: st.integers(-(2**62), 2**62),
        bool: st.booleans(),
        float: st.floats(allow_nan=False, allow_infinity=False),
        Decimal: decimals,
    }
    return simple[annotation]


def struct_of(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    fields = {f.name: for_type(f.type) for f in msgspec.structs.fields(cls)}
    return st.builds(cls, **fields)


def envelopes(payload: st.SearchStrategy[Any]) -> st.SearchStrategy[Event]:
    return st.builds(
        lambda p, **kw: Event(
            type=type(p).__name__, schema_version=type(p).SCHEMA_VERSION, payload=p, **kw
        ),
        payload,
        event_id=st.text(min_size=1, max_size=32),
        stream_id=st.text(min_size=1, max_size=32),
        stream_version=st.integers(1, 10**6),
        occurred_at=st.integers(0, 2**63 - 1),
        recorded_at=st.integers(0, 2**63 - 1),
        actor=st.text(max_size=16),
        correlation_id=st.text(max_size=32),
        causation_id=st.none() | st.text(max_size=32),
        seq=st.integers(0, 2**62),
    )


@pytest.mark.parametrize("cls", PAYLOAD_TYPES.values(), ids=list(PAYLOAD_TYPES))
def test_every_payload_type_round_trips_through_the_one_codec(cls: type[Any]) -> None:
    @given(envelopes(struct_of(cls)))
    def round_trip(event: Event) -> None:
        assert decode_event(encode_event(event)) == event
        payload = decode_payload(event.type, event.schema_version, encode_payload(event.payload))
        assert payload == event.payload

    round_trip()


def _leaves(cls: type[Any]) -> set[type[Any]]:
    subclasses = cls.__subclasses__()
    return set().union(*(_leaves(s) for s in subclasses)) if subclasses else {cls}


def test_every_payload_type_is_registered_under_its_own_name() -> None:
    assert all(name == cls.__name__ for name, cls in PAYLOAD_TYPES.items())
    assert set(PAYLOAD_TYPES.values()) == _leaves(Payload)


def test_a_stored_v1_order_created_is_upcast_to_the_current_schema() -> None:
    stored = (SAMPLES / "order_created_v1.json").read_bytes()
    assert b'"schema_version":1' in stored
    assert b'"price"' in stored
    event = decode_event(stored)
    assert event.schema_version == OrderCreated.SCHEMA_VERSION == 2
    ticket = event.payload
    assert isinstance(ticket, OrderCreated)
    assert ticket.limit_price == Decimal("187.25")
    assert ticket.time_in_force is TimeInForce.DAY
    assert ticket.quantity == Decimal("300")
    assert event.event_id == "0f6c3a2e9b1d4e7f8a5b6c7d8e9f0a1b"


def test_a_stored_v1_payload_alone_is_upcast_by_decode_payload() -> None:
    stored = msgspec.json.decode((SAMPLES / "order_created_v1.json").read_bytes())
    assert "time_in_force" not in stored["payload"]
    payload = decode_payload("OrderCreated", 1, msgspec.json.encode(stored["payload"]))
    assert payload == OrderCreated(
        order_id="O-2025-000042",
        client_order_id="C-42",
        account="ACC-1",
        instrument="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(300),
        limit_price=Decimal("187.25"),
        time_in_force=TimeInForce.DAY,
    )


@pytest.mark.parametrize("damaged", [b"[1, 2]", b'"text"', b'{"order_id": 5}'])
def test_a_damaged_old_payload_is_a_decode_error_not_a_crash(damaged: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):  # the store names the event it cannot read
        decode_payload("OrderCreated", 1, damaged)


def test_a_v1_market_order_without_a_price_upcasts_to_no_limit_and_keeps_its_tif() -> None:
    v1 = {
        "order_id": "O-7",
        "client_order_id": "C-7",
        "account": "ACC-1",
        "instrument": "AAPL",
        "side": "SELL",
        "order_type": "MARKET",
        "quantity": "5",
        "time_in_force": "IOC",
    }
    payload = decode_payload("OrderCreated", 1, msgspec.json.encode(v1))
    assert isinstance(payload, OrderCreated)
    assert payload.limit_price is None
    assert payload.time_in_force is TimeInForce.IOC


def test_an_upcast_event_is_written_back_under_the_current_schema() -> None:
    upcast = decode_event((SAMPLES / "order_created_v1.json").read_bytes())
    rewritten = encode_event(upcast)
    assert b'"schema_version":2' in rewritten
    assert b'"limit_price":"187.25"' in rewritten
    assert b'"price"' not in rewritten
    assert decode_event(rewritten) == upcast


def test_an_unknown_event_type_is_refused_by_name() -> None:
    with pytest.raises(UnknownEventType, match="'OrderTeleported'") as refused:
        decode_payload("OrderTeleported", 1, b"{}")
    assert refused.value.type_name == "OrderTeleported"
    stored = (SAMPLES / "order_created_v1.json").read_bytes()
    with pytest.raises(UnknownEventType, match="'OrderTeleported'"):
        decode_event(stored.replace(b'"type":"OrderCreated"', b'"type":"OrderTeleported"'))


def test_an_event_from_a_newer_blotter_is_refused_with_both_versions() -> None:
    with pytest.raises(UnsupportedSchema, match="schema version 9; this blotter knows up to 2"):
        decode_payload("OrderCreated", 9, b"{}")
    with pytest.raises(UnsupportedSchema, match=r"OrderValidated has schema version 2; .* up to 1"):
        decode_payload("OrderValidated", 2, b"{}")


def test_make_event_wraps_a_payload_in_a_complete_envelope() -> None:
    clock, ids = ManualClock(start_ns=1_000), SequentialIds("ev")
    now = make_event(
        OrderValidated(),
        stream_id="O-1",
        stream_version=2,
        actor="risk",
        correlation_id="O-1",
        clock=clock,
        ids=ids,
        causation_id="cmd-9",
    )
    assert now == Event(
        event_id="ev-000001",
        stream_id="O-1",
        stream_version=2,
        type="OrderValidated",
        schema_version=1,
        occurred_at=1_000,
        recorded_at=1_000,
        actor="risk",
        correlation_id="O-1",
        causation_id="cmd-9",
        payload=OrderValidated(),
        seq=0,
    )
    clock.advance(500)
    late = make_event(
        OrderValidated(),
        stream_id="O-1",
        stream_version=3,
        actor="XNAS",
        correlation_id="O-1",
        clock=clock,
        ids=ids,
        occurred_at=900,  # the venue's own timestamp, earlier than when we recorded it
    )
    assert (late.event_id, late.occurred_at, late.recorded_at) == ("ev-000002", 900, 1_500)
    assert late.causation_id is None


def test_events_recorded_together_take_the_next_versions_and_one_instant() -> None:
    clock, ids = ManualClock(start_ns=7_000), SequentialIds("ev")
    validated, requested = make_events(
        [OrderValidated(), OrderCancelRequested(reason="done")],
        stream_id="O-1",
        after=4,
        actor="trader-1",
        correlation_id="O-1",
        clock=clock,
        ids=ids,
        causation_id="cmd-3",
    )
    assert [(e.event_id, e.stream_version, e.type) for e in (validated, requested)] == [
        ("ev-000001", 5, "OrderValidated"),
        ("ev-000002", 6, "OrderCancelRequested"),
    ]
    assert {(e.occurred_at, e.recorded_at, e.causation_id) for e in (validated, requested)} == {
        (7_000, 7_000, "cmd-3")
    }
    assert (
        make_events(
            [], stream_id="O-1", after=6, actor="a", correlation_id="O-1", clock=clock, ids=ids
        )
        == []
    )


def test_to_builtins_gives_json_ready_values_with_decimals_as_strings() -> None:
    fill = ChildFill(
        child_id="A",
        exec_id="X1",
        quantity=Decimal("0.001"),
        price=Decimal("60000.5"),
        fee=Decimal(0),
        liquidity=Liquidity.TAKER,
    )
    assert to_builtins(fill) == {
        "child_id": "A",
        "exec_id": "X1",
        "quantity": "0.001",
        "price": "60000.5",
        "fee": "0",
        "liquidity": Liquidity.TAKER.value,
    }


def test_a_payload_prints_as_plain_json_values() -> None:
    ticket = decode_event((SAMPLES / "order_created_v1.json").read_bytes()).payload
    plain = to_builtins(ticket)
    assert plain["limit_price"] == "187.25"
    assert plain["side"] == "BUY"


def test_an_old_schema_with_no_upcaster_is_refused_by_name() -> None:
    with pytest.raises(UnsupportedSchema, match="schema version 0; no upcaster leads from it"):
        decode_payload("OrderCreated", 0, b"{}")
