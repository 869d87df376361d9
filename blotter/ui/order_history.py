"""An order's history in words: each event named as people say it ("Child acknowledged") and
what it says in one line, its numbers in the instrument's decimals. The envelope and the
payload as stored stay in each row's tooltip (``HistoryModel``)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

from blotter.domain.events import (
    AnomalyRecorded,
    ChildAcknowledged,
    ChildCanceled,
    ChildCancelRequested,
    ChildFill,
    ChildPayload,
    ChildStatusAnswered,
    Event,
    OrderCreated,
    OrderRejected,
    OrderRouted,
    OrderSettlementFailed,
    Payload,
    RoutingDecision,
)
from blotter.domain.risk import format_number
from blotter.domain.values import Instrument
from blotter.ui.models import FEE_PLACES, places_of
from blotter.ui.panels import sentence, severity_text
from blotter.ui.risk_panel import rule_label

_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])")


def spoken(event_type: str) -> str:
    """``ChildAcknowledged`` -> ``Child acknowledged``: an event's type as a person says it."""
    first, *rest = _WORD_START.split(event_type)
    return " ".join([first, *(word.lower() for word in rest)])


def slice_label(child_id: str) -> str:
    """``.2``: a child by its number within its order, as the details' slices name it."""
    return f".{child_id.rsplit('.', 1)[-1]}"


def refusal_text(refused: OrderRejected, *, rich: bool = False) -> str:
    """What stopped an order, with its numbers: the risk rule, or the field, or the reason;
    ``rich``: as HTML, the rule's name in bold (the details' line), the rest as written."""
    text = html.escape if rich else str
    if refused.rule:
        rule = text(rule_label(refused.rule))
        limit = f" ({refused.expected})" if refused.expected else ""
        return f"Refused by risk rule {f'<b>{rule}</b>' if rich else rule}: " + text(
            f"value {refused.value}{limit}. {sentence(refused.reason)}"
        )
    if refused.field:
        return text(
            f"Refused ({refused.source}): {refused.field} = {refused.value}, "
            f"expected {refused.expected}"
        )
    return text(f"Refused ({refused.source}): {refused.reason}")


class OrderEventText:
    """What an order's event says, in one line (``HistoryModel``'s details): numbers in the
    decimals of the order's instrument, which ``follow`` takes from the history shown."""

    def __init__(self, instruments: Mapping[str, Instrument]) -> None:
        self._instruments = instruments
        self._price_places, self._quantity_places = 2, 0

    def follow(self, history: Sequence[Event]) -> None:
        created = next((e.payload for e in history if isinstance(e.payload, OrderCreated)), None)
        if created is not None:
            places = places_of(self._instruments, created.instrument)
            self._price_places, self._quantity_places = places

    def __call__(self, event: Event) -> str:
        payload = event.payload
        said = self._facts(payload)
        if isinstance(payload, ChildPayload):
            said = [slice_label(payload.child_id), *said]
        return " · ".join(part for part in said if part)

    def _facts(self, payload: Payload) -> list[str]:
        reason = str(getattr(payload, "reason", ""))
        if isinstance(payload, OrderCreated):
            return self._ticket(payload)
        if isinstance(payload, OrderRejected):
            return [refusal_text(payload)]
        if isinstance(payload, RoutingDecision):
            again = f"re-route {payload.attempt}" if payload.attempt else ""
            return [again, self._quantity(payload.quantity), reason]  # its reason names its way
        if isinstance(payload, OrderRouted):
            slices = (
                f"{slice_label(s.child_id)} {s.venue} {self._quantity(s.quantity)}"
                for s in payload.slices
            )
            return [", ".join(slices), reason]
        if isinstance(payload, ChildFill):
            return self._fill(payload)
        if isinstance(payload, ChildAcknowledged):
            return [f"venue id {payload.venue_order_id}"]
        if isinstance(payload, ChildCancelRequested) and payload.returning:
            return [reason, "its leaves go back to the order"]
        if isinstance(payload, ChildCanceled) and payload.returned:
            return [reason, "by the venue: its leaves go back to the order"]
        if isinstance(payload, ChildStatusAnswered):
            return [f"the venue says: {payload.answer}"]
        if isinstance(payload, OrderSettlementFailed):
            gave_up = "no retry: a person must step in" if payload.gave_up else ""
            return [f"attempt {payload.attempt}", reason, gave_up]
        if isinstance(payload, AnomalyRecorded):
            kind = payload.kind.value.replace("_", " ")
            return [f"{severity_text(payload.severity)} {kind}", payload.detail]
        return [reason]

    def _ticket(self, ticket: OrderCreated) -> list[str]:
        price = "" if ticket.limit_price is None else f" @ {self._price(ticket.limit_price)}"
        kind = f"{ticket.order_type.value} {ticket.time_in_force.value}"
        venue = ticket.venue or f"router: {ticket.strategy.value}"
        return [
            f"{ticket.side.value} {self._quantity(ticket.quantity)} {ticket.instrument}{price}",
            kind,
            ticket.account,
            venue,
        ]

    def _fill(self, fill: ChildFill) -> list[str]:
        return [
            f"{self._quantity(fill.quantity)} @ {self._price(fill.price)}",
            f"fee {format_number(fill.fee, FEE_PLACES)}",
            fill.liquidity.value,
            f"exec {fill.exec_id}",
            "late: the slice was closed" if fill.late else "",
        ]

    def _price(self, value: Decimal) -> str:
        return format_number(value, self._price_places)

    def _quantity(self, value: Decimal) -> str:
        return format_number(value, self._quantity_places)
