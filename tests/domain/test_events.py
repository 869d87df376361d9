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

from blotter.domain.events import (
    PAYLOAD_TYPES,
    Event,
    OrderCreated,
    Payload,
    UnknownEventType,
    UnsupportedSchema,
    decode_event,
    decode_payload,
    encode_event,
    encode_payload,
)
from blotter.domain.values import TimeInForce

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
        return st.lists(for_type(typing.get_args(annotation)[0]), max_size=3).map(tuple)
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(list(annotation))
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return struct_of(annotation)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: st.text(max_size=20),
        int: st.integers(-(2**62), 2**62),
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


def test_an_unknown_event_type_is_refused_by_name() -> None:
    with pytest.raises(UnknownEventType, match="'OrderTeleported'"):
        decode_payload("OrderTeleported", 1, b"{}")


def test_an_event_from_a_newer_blotter_is_refused_with_both_versions() -> None:
    with pytest.raises(UnsupportedSchema, match="schema version 9; this blotter knows up to 2"):
        decode_payload("OrderCreated", 9, b"{}")
