"""The commands the OMS takes, their answers, and the checks a new order's ticket must pass.

A check failure is a ``Rejection`` that names the field, the value and what was expected, in
words a trader can act on; the OMS records it on the order as ``OrderRejected``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import StrEnum

import msgspec

from blotter.domain.values import (
    MAX_ID,
    Instrument,
    InvalidValue,
    OrderType,
    RoutingStrategy,
    Side,
    TimeInForce,
    check_account,
    check_name,
    storable,
)
from blotter.domain.workflows import OrderState


class NewOrder(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A trader's ticket. ``venue`` None lets the router choose ("auto") by ``strategy``; a
    named venue means the FIXED strategy whatever ``strategy`` says."""

    client_order_id: str
    account: str
    instrument: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    venue: str | None = None
    strategy: RoutingStrategy = RoutingStrategy.SPLIT
    actor: str = "trader"


class Rejection(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Why a command was refused; ``field`` is None when no single field is to blame."""

    reason: str
    field: str | None = None
    value: str | None = None
    expected: str | None = None
    source: str = "validation"
    rule: str | None = None  # the risk rule, when ``source`` is "risk"
    limit: str | None = None  # the risk rule's limit, as the risk panel lists it

    @classmethod
    def of_invalid(cls, invalid: InvalidValue) -> Rejection:
        return cls(
            reason=str(invalid),
            field=invalid.field,
            value=str(invalid.value),
            expected=invalid.expected,
        )


class SubmitResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The answer to a ticket; the same ticket sent again gets the same answer."""

    order_id: str
    client_order_id: str
    rejection: Rejection | None = None

    @property
    def accepted(self) -> bool:
        return self.rejection is None


class CancelResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    order_id: str
    state: OrderState
    rejection: Rejection | None = None

    @property
    def accepted(self) -> bool:
        return self.rejection is None


class CancelScope(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Which live orders a cancel-all reaches; an empty scope reaches every one."""

    account: str | None = None
    instrument: str | None = None
    venue: str | None = None

    def describe(self) -> str:
        parts = [
            f"{name} {value}"
            for name, value in (
                ("account", self.account),
                ("instrument", self.instrument),
                ("venue", self.venue),
            )
            if value
        ]
        return ", ".join(parts) or "every account, instrument and venue"


def _one_of(kind: type[StrEnum]) -> str:
    return f"one of {', '.join(member.value for member in kind)}"


_TEXT, _DECIMAL = "a text", "a Decimal"
# Each field of a ticket, the type it must have, and what that is in words.
_TICKET_TYPES: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("client_order_id", str, _TEXT),
    ("account", str, _TEXT),
    ("instrument", str, _TEXT),
    ("side", Side, _one_of(Side)),
    ("order_type", OrderType, _one_of(OrderType)),
    ("quantity", Decimal, _DECIMAL),
    ("limit_price", (Decimal, type(None)), f"{_DECIMAL} or none"),
    ("time_in_force", TimeInForce, _one_of(TimeInForce)),
    ("venue", (str, type(None)), f"{_TEXT} or none"),
    ("strategy", RoutingStrategy, _one_of(RoutingStrategy)),
    ("actor", str, _TEXT),
)


def check_ticket_types(ticket: NewOrder) -> Rejection | None:
    """The first field of ``ticket`` that is not of its type, or None. A caller's mistake
    (decoded tickets are typed already) that no event could record: the OMS answers it and
    creates no order for it."""
    for field, kind, expected in _TICKET_TYPES:
        value = getattr(ticket, field)
        if not isinstance(value, kind):
            return Rejection.of_invalid(InvalidValue(field, value, expected))
    return None


def check_acting(actor: str, reason: str) -> None:
    """Who gives a command and why, as the store can keep them, or ``InvalidValue``: a name
    of printable characters within the store's width, a reason it can write (``storable``)."""
    check_name("actor", actor)
    if not storable(reason):
        raise InvalidValue("reason", reason, "a text without a NUL character or a lone surrogate")


def check_ticket(
    ticket: NewOrder,
    instruments: Mapping[str, Instrument],
    venue_lists: Callable[[str, str], bool | None],
) -> Rejection | None:
    """The first thing wrong with ``ticket``, or None when it may be routed.

    ``venue_lists(venue, symbol)`` says whether a venue lists the symbol, None for an unknown
    venue.
    """
    try:
        _check_ticket(ticket, instruments, venue_lists)
    except InvalidValue as invalid:
        return Rejection.of_invalid(invalid)
    return None


def _check_ticket(
    ticket: NewOrder,
    instruments: Mapping[str, Instrument],
    venue_lists: Callable[[str, str], bool | None],
) -> None:
    coid = ticket.client_order_id
    if not coid.strip() or len(coid) > MAX_ID or not storable(coid):
        raise InvalidValue(
            "client_order_id", ticket.client_order_id, f"an id of 1 to {MAX_ID} characters"
        )
    check_account("account", ticket.account)
    check_name("actor", ticket.actor)
    instrument = instruments.get(ticket.instrument)
    if instrument is None:
        raise InvalidValue(
            "instrument", ticket.instrument, f"one of {', '.join(sorted(instruments))}"
        )
    instrument.check_quantity(ticket.quantity)
    if ticket.order_type is OrderType.LIMIT:
        if ticket.limit_price is None:
            raise InvalidValue("limit_price", None, "a price for a limit order")
        instrument.check_price(ticket.limit_price)
    elif ticket.limit_price is not None:
        raise InvalidValue("limit_price", ticket.limit_price, "no price for a market order")
    if ticket.order_type is OrderType.MARKET and ticket.time_in_force is TimeInForce.GTC:
        raise InvalidValue(
            "time_in_force", ticket.time_in_force.value, "DAY or IOC for a market order"
        )
    if ticket.venue is None and ticket.strategy is RoutingStrategy.FIXED:
        raise InvalidValue("venue", "auto", "a venue for the fixed strategy")
    if ticket.venue is not None:
        listed = venue_lists(ticket.venue, ticket.instrument)
        if listed is None:
            raise InvalidValue("venue", ticket.venue, "a configured venue or auto")
        if not listed:
            raise InvalidValue("venue", ticket.venue, f"a venue that lists {ticket.instrument}")
