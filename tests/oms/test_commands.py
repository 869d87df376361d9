"""A ticket's checks: each names the field, the value and what was expected."""

from __future__ import annotations

from decimal import Decimal

import pytest

from blotter.domain.values import OrderType, Side, TimeInForce
from blotter.oms.commands import CancelScope, NewOrder, check_ticket
from blotter.venues.sim.catalog import INSTRUMENTS

D = Decimal
LISTINGS = {"XNAS": {"AAPL", "MSFT"}, "CBSE": {"BTC-USD"}}


def venue_lists(venue: str, symbol: str) -> bool | None:
    listed = LISTINGS.get(venue)
    return None if listed is None else symbol in listed


def ticket(**fields: object) -> NewOrder:
    values: dict[str, object] = {
        "client_order_id": "T-1",
        "account": "ACC-1",
        "instrument": "AAPL",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": D(100),
        "limit_price": D("187.25"),
    }
    values.update(fields)
    return NewOrder(**values)  # type: ignore[arg-type]


def check(**fields: object) -> tuple[str | None, str | None, str | None] | None:
    rejection = check_ticket(ticket(**fields), {i.symbol: i for i in INSTRUMENTS}, venue_lists)
    return None if rejection is None else (rejection.field, rejection.value, rejection.expected)


def test_a_good_ticket_passes_with_or_without_a_venue() -> None:
    assert check() is None
    assert check(venue="XNAS") is None
    assert (
        check(order_type=OrderType.MARKET, limit_price=None, time_in_force=TimeInForce.IOC) is None
    )


@pytest.mark.parametrize(
    ("fields", "field", "value", "expected_part"),
    [
        ({"client_order_id": " "}, "client_order_id", " ", "1 to 64 characters"),
        ({"client_order_id": "C" * 65}, "client_order_id", "C" * 65, "1 to 64 characters"),
        # PostgreSQL keeps no NUL in a text: the refusal's record would stop the store
        ({"client_order_id": "C\x00"}, "client_order_id", "C\x00", "1 to 64 characters"),
        # nor does UTF-8 spell a lone surrogate (a name decoded with surrogateescape)
        ({"client_order_id": "C\udcff"}, "client_order_id", "C\udcff", "1 to 64 characters"),
        ({"account": ""}, "account", "", "like ACC-ALPHA"),
        # one spelling per account: another would escape the limits set for ACC-1
        ({"account": "acc-1"}, "account", "acc-1", "capitals"),
        ({"account": "ACC-1 "}, "account", "ACC-1 ", "capitals"),
        ({"account": "ACC 1"}, "account", "ACC 1", "capitals"),
        ({"account": "A" * 57}, "account", "A" * 57, "at most 56 characters"),
        # who acts is recorded with every event: the store keeps 128 characters of it
        ({"actor": "a" * 129}, "actor", "a" * 129, "a name of 1 to 128 characters"),
        # a line break would split every row that names who acted
        ({"actor": "bob\nsmith"}, "actor", "bob\nsmith", "none of them a control character"),
        ({"instrument": "FOO"}, "instrument", "FOO", "AAPL"),
        ({"quantity": D(0)}, "quantity", "0", "positive quantity"),
        ({"quantity": D(-5)}, "quantity", "-5", "positive quantity"),
        ({"quantity": D("NaN")}, "quantity", "NaN", "positive quantity"),
        ({"quantity": D("10.5")}, "quantity", "10.5", "lot size 1"),
        ({"limit_price": None}, "limit_price", "None", "a price for a limit order"),
        ({"limit_price": D("187.253")}, "limit_price", "187.253", "tick size 0.01"),
        ({"limit_price": D(0)}, "limit_price", "0", "positive price"),
        (
            {"order_type": OrderType.MARKET},
            "limit_price",
            "187.25",
            "no price for a market order",
        ),
        (
            {"order_type": OrderType.MARKET, "limit_price": None, "time_in_force": TimeInForce.GTC},
            "time_in_force",
            "GTC",
            "DAY or IOC",
        ),
        ({"venue": "NOPE"}, "venue", "NOPE", "a configured venue or auto"),
        ({"venue": "CBSE"}, "venue", "CBSE", "lists AAPL"),
    ],
)
def test_each_bad_field_is_named_with_its_value_and_what_was_expected(
    fields: dict[str, object], field: str, value: str, expected_part: str
) -> None:
    found = check(**fields)
    assert found is not None
    assert found[:2] == (field, value)
    assert expected_part in (found[2] or "")


def test_a_cancel_scope_describes_itself() -> None:
    assert CancelScope().describe() == "every account, instrument and venue"
    assert CancelScope(account="ACC-1", venue="XNAS").describe() == "account ACC-1, venue XNAS"
