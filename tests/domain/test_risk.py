"""Risk rules: each at, just under and just over its limit, with the numbers in the reason."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blotter.domain.risk import (
    DEFAULT_RISK,
    PRE_TRADE_ORDER,
    RULE_LABELS,
    Exposure,
    LimitUsage,
    OrderIntent,
    RiskBreach,
    RiskConfig,
    RiskLimits,
    Rule,
    WorkingOrder,
    check_after_fill,
    check_order,
    format_number,
    money_text,
    not_reducing,
    usage,
)
from blotter.domain.values import AssetClass, Instrument, InvalidValue, OrderType, Side
from blotter.domain.workflows import AccountState

D = Decimal
S = 1_000_000_000  # one second in nanoseconds
T0 = 1_700_000_000 * S
ACTIVE = AccountState.ACTIVE
BUY, SELL = Side.BUY, Side.SELL


def _instrument(symbol: str, tick: str, lot: str, asset_class: AssetClass) -> Instrument:
    return Instrument(
        symbol=symbol, asset_class=asset_class, tick_size=D(tick), lot_size=D(lot), currency="USD"
    )


AAPL = _instrument("AAPL", "0.01", "1", AssetClass.EQUITY)
MSFT = _instrument("MSFT", "0.01", "1", AssetClass.EQUITY)
BTC = _instrument("BTC-USD", "0.5", "0.0001", AssetClass.CRYPTO)


def intent(
    quantity: str = "100",
    price: str | None = "100.00",
    *,
    side: Side = BUY,
    instrument: Instrument = AAPL,
    at_ns: int = T0,
) -> OrderIntent:
    """A limit order, or a market order when ``price`` is None."""
    return OrderIntent(
        account="ACC-1",
        instrument=instrument,
        side=side,
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        quantity=D(quantity),
        limit_price=None if price is None else D(price),
        at_ns=at_ns,
    )


def check(
    order: OrderIntent,
    limits: RiskLimits,
    exposure: Exposure | None = None,
    *,
    reference: str | None = "100.00",
    state: AccountState = ACTIVE,
) -> RiskBreach | None:
    return check_order(
        order,
        limits,
        exposure or Exposure("ACC-1"),
        reference=None if reference is None else D(reference),
        state=state,
    )


def holding(quantity: str, price: str = "100.00", instrument: str = "AAPL") -> Exposure:
    """An account that bought (or, negative, sold) ``quantity`` at ``price``."""
    exposure = Exposure("ACC-1")
    amount = D(quantity)
    side = BUY if amount > 0 else SELL
    exposure.fill(instrument, side, abs(amount), D(price), D(0), T0 - S)
    return exposure


def breach(rule: Rule, limit: str, value: str, reason: str, **flags: bool) -> RiskBreach:
    return RiskBreach(rule=rule, limit=limit, value=value, reason=reason, **flags)


# --- names and numbers --------------------------------------------------------------------


def test_every_rule_has_a_label_and_every_pre_trade_rule_a_place() -> None:
    assert set(RULE_LABELS) == set(Rule)
    assert Rule.CREDIT.label == "Credit limit"
    assert set(PRE_TRADE_ORDER) == set(Rule) - {Rule.MAX_LOSS}
    assert len(PRE_TRADE_ORDER) == len(set(PRE_TRADE_ORDER))


@pytest.mark.parametrize(
    ("value", "min_decimals", "text"),
    [
        ("125000", 2, "125,000.00"),
        ("1234567.5", 2, "1,234,567.50"),
        ("12.345", 2, "12.345"),
        ("0.0015", 0, "0.0015"),
        ("1E+3", 0, "1,000"),
        ("-1234.5", 0, "-1,234.5"),
        ("0", 2, "0.00"),
    ],
)
def test_numbers_have_separators_and_keep_their_decimals(
    value: str, min_decimals: int, text: str
) -> None:
    assert format_number(D(value), min_decimals) == text


@pytest.mark.parametrize(
    ("limit", "used", "fraction"),
    [("200", "50", 0.25), ("100", "150", 1.5), ("0", "0", 0.0), ("0", "1", math.inf)],
)
def test_a_gauge_fraction_is_used_over_limit(limit: str, used: str, fraction: float) -> None:
    gauge = LimitUsage(rule=Rule.CREDIT, limit=D(limit), used=D(used))
    assert gauge.fraction == fraction


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("max_order_quantity", D(-1), "Decimal('-1')"),
        ("max_order_notional", D("NaN"), "Decimal('NaN')"),
        ("price_collar_percent", D("-0.5"), "Decimal('-0.5')"),
        ("credit_limit", D("Infinity"), "Decimal('Infinity')"),
        ("position_limit", D("-0.0001"), "Decimal('-0.0001')"),
        ("max_loss", D(-1), "Decimal('-1')"),
        ("price_collar_ticks", -1, "-1"),
        ("max_orders_per_window", 0, "0"),
        ("duplicate_window_seconds", 0.0, "0.0"),
        ("rate_window_seconds", -1.0, "-1.0"),
        ("rate_window_seconds", math.nan, "nan"),
        ("restricted", frozenset({" AAPL"}), "' AAPL'"),
    ],
)
def test_invalid_limits_are_refused_naming_the_field(field: str, value: Any, shown: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        RiskLimits(**{field: value})
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: {shown} is invalid; expected ")


def test_a_negative_per_instrument_position_limit_is_refused_naming_the_instrument() -> None:
    with pytest.raises(InvalidValue) as refused:
        RiskLimits(position_limits={"BTC-USD": D(-1)})
    assert refused.value.field == "position_limits[BTC-USD]"


def test_zero_limits_are_allowed_and_mean_nothing_is() -> None:
    limits = RiskLimits(max_order_quantity=D(0), price_collar_ticks=0, position_limit=D(0))
    assert check(intent("1"), limits) == breach(
        Rule.MAX_QUANTITY, "0", "1", "order quantity 1 is over the account's limit of 0"
    )


def test_an_account_override_falls_back_to_the_desk_field_by_field() -> None:
    desk = RiskLimits(
        max_order_quantity=D(1000),
        max_order_notional=D(1_000_000),
        price_collar_percent=D(10),
        max_orders_per_window=100,
        rate_window_seconds=2.0,
        restricted=frozenset({"GME"}),
        position_limit=D(500),
        position_limits={"BTC-USD": D(5), "ETH-USD": D(50)},
    )
    account = RiskLimits(
        max_order_quantity=D(50),
        price_collar_ticks=20,
        max_orders_per_window=10,  # its own count brings its own (default) window
        restricted=frozenset({"AMC"}),
        position_limits={"ETH-USD": D(20)},
    )
    config = RiskConfig(default=desk, accounts={"ACC-1": account})
    assert config.limits_for("ACC-1") == RiskLimits(
        max_order_quantity=D(50),
        max_order_notional=D(1_000_000),
        price_collar_percent=D(10),
        price_collar_ticks=20,
        max_orders_per_window=10,
        rate_window_seconds=1.0,
        restricted=frozenset({"GME", "AMC"}),
        position_limit=D(500),
        position_limits={"BTC-USD": D(5), "ETH-USD": D(20)},
    )
    assert config.limits_for("ACC-2") is desk
    assert config.limits_for("ACC-1") is config.limits_for("ACC-1")  # merged once, then cached


def test_an_override_without_a_rate_count_keeps_the_desk_rate_and_window() -> None:
    desk = RiskLimits(max_orders_per_window=100, rate_window_seconds=2.0)
    config = RiskConfig(default=desk, accounts={"ACC-1": RiskLimits(max_loss=D(10))})
    merged = config.limits_for("ACC-1")
    assert (merged.max_orders_per_window, merged.rate_window_seconds) == (100, 2.0)
    assert merged.max_loss == D(10)


def test_a_config_is_decoded_from_plain_toml_like_values() -> None:
    raw: dict[str, Any] = {
        "default": {
            "max_order_notional": 1_000_000,
            "price_collar_percent": 10,
            "duplicate_window_seconds": 2,
            "restricted": ["GME"],
            "position_limits": {"BTC-USD": "50"},
            "max_loss": "250000.50",
        },
        "accounts": {"ACC-1": {"max_order_notional": "50000", "restricted": ["AMC"]}},
    }
    config = msgspec.convert(raw, RiskConfig)
    assert config.default == RiskLimits(
        max_order_notional=D(1_000_000),
        price_collar_percent=D(10),
        duplicate_window_seconds=2.0,
        restricted=frozenset({"GME"}),
        position_limits={"BTC-USD": D(50)},
        max_loss=D("250000.50"),
    )
    merged = config.limits_for("ACC-1")
    assert merged.max_order_notional == D(50000)
    assert merged.restricted == frozenset({"GME", "AMC"})
    assert merged.max_loss == D("250000.50")


def test_a_config_refuses_an_invalid_limit_when_decoded_naming_the_field() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"credit_limit: Decimal\('-5'\)"):
        msgspec.convert({"accounts": {"ACC-1": {"credit_limit": "-5"}}}, RiskConfig)


def test_the_cache_of_merged_limits_is_not_part_of_the_config() -> None:
    DEFAULT_RISK.limits_for("ACC-1")
    encoded = msgspec.json.encode(DEFAULT_RISK)
    assert b"_merged" not in encoded
    assert msgspec.json.decode(encoded, type=RiskConfig) == DEFAULT_RISK


def test_the_demo_desk_passes_its_normal_flow_and_stops_a_fat_finger() -> None:
    limits = DEFAULT_RISK.limits_for("ACC-ALPHA")
    normal = [
        (intent("500", "412.35", instrument=MSFT), "412.30"),
        (intent("50", None, side=SELL, instrument=MSFT), "412.30"),
        (intent("0.0050", "63990.0", instrument=BTC), "64000.0"),
    ]
    for order, reference in normal:
        assert check(order, limits, reference=reference) is None
    fat_finger = check(intent("5000", "412.30", instrument=MSFT), limits, reference="412.30")
    assert fat_finger is not None
    assert (fat_finger.rule, fat_finger.value) == (Rule.MAX_NOTIONAL, "2,061,500.00")
    assert limits.duplicate_window_seconds is None
    assert limits.max_orders_per_window is None


# --- pre-trade: each rule at, under and over its limit ------------------------------------


@pytest.mark.parametrize("state", [AccountState.BLOCKED, AccountState.BLOCKED_REDUCE_ONLY])
def test_a_blocked_account_refuses_everything(state: AccountState) -> None:
    assert check(intent("1"), RiskLimits(), state=state) == breach(
        Rule.ACCOUNT_BLOCKED,
        "ACTIVE",
        state.value,
        "the account is blocked: no new order until an operator unblocks it",
    )


def test_a_restricted_instrument_is_refused_and_others_pass() -> None:
    limits = RiskLimits(restricted=frozenset({"AAPL"}))
    assert check(intent(), limits) == breach(
        Rule.RESTRICTED, "not restricted", "AAPL", "AAPL is on the account's restricted list"
    )
    assert check(intent(instrument=MSFT), limits) is None


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("999", None),
        ("1000", None),
        (
            "1001",
            breach(
                Rule.MAX_QUANTITY,
                "1,000",
                "1,001",
                "order quantity 1,001 is over the account's limit of 1,000",
            ),
        ),
    ],
)
def test_max_order_quantity(quantity: str, expected: RiskBreach | None) -> None:
    assert check(intent(quantity), RiskLimits(max_order_quantity=D(1000))) == expected


def _notional_breach(value: str) -> RiskBreach:
    return breach(
        Rule.MAX_NOTIONAL,
        "100,000.00",
        value,
        f"order notional {value} USD is over the account's limit of 100,000.00 USD",
    )


@pytest.mark.parametrize(
    ("order", "reference", "expected"),
    [
        (intent("999"), "100.00", None),
        (intent("1000"), "100.00", None),
        (intent("1001"), "100.00", _notional_breach("100,100.00")),
        (intent("1000", "100.01"), "100.00", _notional_breach("100,010.00")),
        (intent("1000", None), "100.00", None),  # a market order is valued at the reference
        (intent("1000", None), "100.01", _notional_breach("100,010.00")),
        # a buy pays at most its limit, even under a higher reference
        (intent("1000", "100.00"), "100.05", None),
        # a sell trades at its limit or better: under the market, at the market
        (intent("1000", "99.95", side=SELL), "100.00", None),
        (intent("1000", "99.95", side=SELL), "100.01", _notional_breach("100,010.00")),
        (intent("1000", "100.01", side=SELL), "99.00", _notional_breach("100,010.00")),
        (intent("1000", "99.95", side=SELL), None, None),  # no market: at its limit
        (intent("1.5625", "64000.0", instrument=BTC), "64000.0", None),
        (intent("1.5626", "64000.0", instrument=BTC), "64000.0", _notional_breach("100,006.40")),
    ],
)
def test_max_order_notional(
    order: OrderIntent, reference: str | None, expected: RiskBreach | None
) -> None:
    assert check(order, RiskLimits(max_order_notional=D(100_000)), reference=reference) == expected


@pytest.mark.parametrize(
    ("limits", "rule", "label"),
    [
        (RiskLimits(max_order_notional=D(100_000)), Rule.MAX_NOTIONAL, "max order notional"),
        (RiskLimits(credit_limit=D(100_000)), Rule.CREDIT, "credit limit"),
    ],
)
def test_a_market_order_with_no_reference_is_refused_by_a_notional_limit(
    limits: RiskLimits, rule: Rule, label: str
) -> None:
    assert check(intent("1", None), limits, reference=None) == breach(
        rule,
        "100,000.00",
        "no price",
        f"a market order for AAPL has no reference price to value it against the account's "
        f"{label} of 100,000.00",
    )
    assert check(intent("1", None), RiskLimits(max_order_quantity=D(10)), reference=None) is None


def _collar_breach(price: str, distance: str, share: str, allowed: str, spec: str) -> RiskBreach:
    return breach(
        Rule.PRICE_COLLAR,
        allowed,
        distance,
        f"limit price {price} is {distance} ({share}%) away from the reference price 100.00; "
        f"the collar allows {allowed} ({spec})",
    )


@pytest.mark.parametrize(
    ("limits", "price", "expected"),
    [
        (RiskLimits(price_collar_percent=D(10)), "109.99", None),
        (RiskLimits(price_collar_percent=D(10)), "110.00", None),
        (RiskLimits(price_collar_percent=D(10)), "90.00", None),
        (
            RiskLimits(price_collar_percent=D(10)),
            "110.01",
            _collar_breach("110.01", "10.01", "10.01", "10.00", "10%"),
        ),
        (
            RiskLimits(price_collar_percent=D(10)),
            "89.99",
            _collar_breach("89.99", "10.01", "10.01", "10.00", "10%"),
        ),
        (RiskLimits(price_collar_ticks=5), "100.04", None),
        (RiskLimits(price_collar_ticks=5), "99.95", None),
        (
            RiskLimits(price_collar_ticks=5),
            "100.06",
            _collar_breach("100.06", "0.06", "0.06", "0.05", "5 ticks of 0.01"),
        ),
        (RiskLimits(price_collar_percent=D(10), price_collar_ticks=5), "100.05", None),
        (
            RiskLimits(price_collar_percent=D(10), price_collar_ticks=5),
            "100.06",
            _collar_breach("100.06", "0.06", "0.06", "0.05", "10% or 5 ticks of 0.01, the tighter"),
        ),
        (
            RiskLimits(price_collar_percent=D(1), price_collar_ticks=500),
            "101.01",
            _collar_breach(
                "101.01", "1.01", "1.01", "1.00", "1% or 500 ticks of 0.01, the tighter"
            ),
        ),
    ],
)
def test_price_collar(limits: RiskLimits, price: str, expected: RiskBreach | None) -> None:
    assert check(intent("1", price), limits) == expected


def test_a_share_of_the_reference_under_a_hundredth_of_a_percent_is_not_read_as_zero() -> None:
    """BTC 2.75 off 64,000.25, over a collar of 5 ticks of 0.5: 0.0043%, not 0%."""
    refused = check(
        intent("1", "64003.0", instrument=BTC),
        RiskLimits(price_collar_ticks=5),
        reference="64000.25",
    )
    assert refused is not None
    assert "is 2.75 (0.0043%) away from the reference price 64,000.25" in refused.reason


def test_the_collar_has_nothing_to_compare_without_a_reference_or_a_limit_price() -> None:
    limits = RiskLimits(price_collar_percent=D(1))
    assert check(intent("1", "500.00"), limits, reference=None) is None
    assert check(intent("1", None), limits, reference="100.00") is None


def _accepted(exposure: Exposure, order: OrderIntent, order_id: str, reference: str) -> None:
    exposure.order_accepted(
        order_id,
        order.instrument.symbol,
        order.side,
        order.quantity,
        order.at_ns,
        limit_price=order.limit_price,
        reference=D(reference),
    )


@pytest.mark.parametrize(
    ("age_ns", "ago"),
    [(1, "0"), (S // 2, "0.5"), (S - 1, "0.999"), (S, None), (S + 1, None)],
)
@pytest.mark.parametrize("price", ["100.00", None])
def test_duplicate_order_within_the_window(age_ns: int, ago: str | None, price: str | None) -> None:
    exposure = Exposure("ACC-1")
    _accepted(exposure, intent("100", price), "O-1", "100.00")
    again = intent("100", price, at_ns=T0 + age_ns)
    at = "at market" if price is None else "at 100.00"
    expected = None
    if ago is not None:
        expected = breach(
            Rule.DUPLICATE,
            "1",
            ago,
            f"the same order (BUY 100 AAPL {at}) was accepted {ago} s ago, within the account's "
            "duplicate window of 1 s",
        )
    assert check(again, RiskLimits(duplicate_window_seconds=1.0), exposure) == expected


@pytest.mark.parametrize(
    "other",
    [
        intent("100", "100.01"),
        intent("101", "100.00"),
        intent("100", "100.00", side=SELL),
        intent("100", "100.00", instrument=MSFT),
        intent("100", None),  # a market order is not the same as a limit order
    ],
)
def test_an_order_that_differs_in_anything_is_not_a_duplicate(other: OrderIntent) -> None:
    exposure = Exposure("ACC-1")
    _accepted(exposure, intent("100", "100.00", at_ns=T0 - 1), "O-1", "100.00")
    assert check(other, RiskLimits(duplicate_window_seconds=1.0), exposure) is None


@pytest.mark.parametrize(
    ("accepted", "at_ns", "blocked"),
    [
        (2, T0 + S // 2, False),  # the third order of three
        (3, T0 + S // 2, True),  # the fourth within the second
        (3, T0 + S, False),  # the first has just left the window
        (3, T0 + S - 1, True),
    ],
)
def test_order_rate_trips_on_the_order_over_the_limit_and_blocks(
    accepted: int, at_ns: int, blocked: bool
) -> None:
    exposure = Exposure("ACC-1")
    for number in range(accepted):
        order = intent(str(number + 1), at_ns=T0 + number)
        _accepted(exposure, order, f"O-{number}", "100.00")
    result = check(intent("7", at_ns=at_ns), RiskLimits(max_orders_per_window=3), exposure)
    expected = breach(
        Rule.ORDER_RATE,
        "3",
        "4",
        "this would be order 4 within 1 s, over the account's limit of 3 per 1 s; the account "
        "is blocked until an operator unblocks it",
        blocks_account=True,
    )
    assert result == (expected if blocked else None)


def _credit_exposure() -> Exposure:
    """Open: BUY 500 AAPL at 100.00 (50,000); held: 200 AAPL bought at 90.00."""
    exposure = holding("200", "90.00")
    _accepted(exposure, intent("500"), "O-1", "100.00")
    return exposure


@pytest.mark.parametrize(
    ("quantity", "value"),
    [("299", None), ("300", None), ("301", "100,100.00")],
)
def test_credit_limit_counts_open_orders_positions_and_the_order(
    quantity: str, value: str | None
) -> None:
    # positions are valued at the reference: 200 x 100.00 = 20,000.00
    result = check(
        intent(quantity, at_ns=T0 + S), RiskLimits(credit_limit=D(100_000)), _credit_exposure()
    )
    expected = None
    if value is not None:
        expected = breach(
            Rule.CREDIT,
            "100,000.00",
            value,
            f"open orders 50,000.00 + positions 20,000.00 + this order 30,100.00 = {value}, over "
            "the account's credit limit of 100,000.00",
        )
    assert result == expected


def test_credit_values_other_positions_at_average_cost_and_lets_reductions_through() -> None:
    exposure = _credit_exposure()
    exposure.fill("MSFT", BUY, D(10), D("400.00"), D(0), T0)  # 4,000.00 at cost
    limits = RiskLimits(credit_limit=D(100_000))
    over = check(intent("261", at_ns=T0 + S), limits, exposure)
    assert over is not None
    assert over.reason.startswith("open orders 50,000.00 + positions 24,000.00 + this order")
    assert check(intent("260", at_ns=T0 + S), limits, exposure) is None
    # selling what is held never needs credit, even over the limit
    assert check(intent("200", side=SELL), RiskLimits(credit_limit=D(0)), exposure) is None
    assert check(intent("201", side=SELL), RiskLimits(credit_limit=D(0)), exposure) is not None


def _position_exposure() -> Exposure:
    """Held: 600 AAPL; open: BUY 300."""
    exposure = holding("600")
    _accepted(exposure, intent("300", at_ns=T0 - S), "O-1", "100.00")
    return exposure


@pytest.mark.parametrize(
    ("quantity", "side", "value", "after"),
    [
        ("99", BUY, None, None),
        ("100", BUY, None, None),
        ("101", BUY, "1,001", "1,001"),
        ("1600", SELL, None, None),  # from +600 to -1,000: at the limit on the other side
        ("1601", SELL, "1,001", "-1,001"),
    ],
)
def test_position_limit_counts_the_worst_case_of_open_orders_on_the_same_side(
    quantity: str, side: Side, value: str | None, after: str | None
) -> None:
    result = check(
        intent(quantity, side=side), RiskLimits(position_limit=D(1000)), _position_exposure()
    )
    expected = None
    if value is not None:
        expected = breach(
            Rule.POSITION,
            "1,000",
            value,
            f"if this order and every open {side} on AAPL filled, the position would be {after}, "
            "over the account's limit of 1,000",
        )
    assert result == expected


def test_a_per_instrument_position_limit_overrides_the_general_one() -> None:
    limits = RiskLimits(position_limit=D(1000), position_limits={"BTC-USD": D(2)})
    assert check(intent("2", "64000.0", instrument=BTC), limits, reference="64000.0") is None
    over = check(intent("2.0001", "64000.0", instrument=BTC), limits, reference="64000.0")
    assert over is not None
    assert (over.rule, over.limit, over.value) == (Rule.POSITION, "2", "2.0001")


def test_an_order_toward_flat_passes_the_position_limit_even_when_over_it() -> None:
    exposure = holding("1200")  # the limit was lowered after the position was built
    limits = RiskLimits(position_limit=D(1000))
    assert check(intent("100", side=SELL), limits, exposure) is None
    assert check(intent("1", side=BUY), limits, exposure) is not None


# --- reduce-only --------------------------------------------------------------------------

REDUCE_ONLY = AccountState.REDUCE_ONLY


@pytest.mark.parametrize(
    ("held", "order", "open_sells", "expected"),
    [
        ("100", intent("100", side=SELL), "0", None),
        ("100", intent("40", side=SELL), "60", None),
        ("-100", intent("100", side=BUY), "0", None),
        (
            "100",
            intent("1", side=BUY),
            "0",
            breach(
                Rule.REDUCE_ONLY,
                "SELL 100",
                "BUY 1",
                "the account is reduce-only and a BUY would increase its long AAPL position of 100",
            ),
        ),
        (
            "100",
            intent("101", side=SELL),
            "0",
            breach(
                Rule.REDUCE_ONLY,
                "SELL 100",
                "SELL 101",
                "the account is reduce-only: SELL 101 would go through its long AAPL position "
                "of 100",
            ),
        ),
        (
            "100",
            intent("41", side=SELL),
            "60",
            breach(
                Rule.REDUCE_ONLY,
                "SELL 100",
                "SELL 101",
                "the account is reduce-only: SELL 41 with 60 open on that side would go through "
                "its long AAPL position of 100",
            ),
        ),
        (
            "-100",
            intent("1", side=SELL),
            "0",
            breach(
                Rule.REDUCE_ONLY,
                "BUY 100",
                "SELL 1",
                "the account is reduce-only and a SELL would increase its short AAPL position of "
                "100",
            ),
        ),
    ],
)
def test_reduce_only_lets_through_only_what_shrinks_the_position(
    held: str, order: OrderIntent, open_sells: str, expected: RiskBreach | None
) -> None:
    exposure = holding(held)
    if D(open_sells):
        _accepted(exposure, intent(open_sells, side=SELL, at_ns=T0 - S), "O-1", "100.00")
    assert check(order, RiskLimits(), exposure, state=REDUCE_ONLY) == expected


@pytest.mark.parametrize("side", [BUY, SELL])
def test_reduce_only_refuses_everything_when_flat(side: Side) -> None:
    assert check(intent("1", side=side), RiskLimits(), state=REDUCE_ONLY) == breach(
        Rule.REDUCE_ONLY, "0", f"{side} 1", "the account is reduce-only and holds no AAPL to reduce"
    )


# --- order of the rules and purity --------------------------------------------------------

_EVERYTHING = RiskLimits(
    restricted=frozenset({"AAPL"}),
    max_order_quantity=D(1),
    max_order_notional=D(1),
    price_collar_percent=D(1),
    duplicate_window_seconds=10.0,
    max_orders_per_window=1,
    credit_limit=D(1),
    position_limit=D(1),
)

# What lifts each rule, so the next one in line can speak.
_LIFT: dict[Rule, dict[str, Any]] = {
    Rule.RESTRICTED: {"restricted": frozenset()},
    Rule.MAX_QUANTITY: {"max_order_quantity": None},
    Rule.MAX_NOTIONAL: {"max_order_notional": None},
    Rule.PRICE_COLLAR: {"price_collar_percent": None},
    Rule.DUPLICATE: {"duplicate_window_seconds": None},
    Rule.ORDER_RATE: {"max_orders_per_window": None},
    Rule.CREDIT: {"credit_limit": None},
    Rule.POSITION: {"position_limit": None},
}


def _everything_exposure() -> Exposure:
    exposure = Exposure("ACC-1")
    _accepted(exposure, intent("10", "150.00", at_ns=T0 - 1), "O-1", "100.00")
    return exposure


def test_rules_are_checked_in_the_documented_order() -> None:
    exposure = _everything_exposure()
    order = intent("10", "150.00")
    limits, state = _EVERYTHING, AccountState.BLOCKED_REDUCE_ONLY
    seen: list[Rule] = []
    while (result := check(order, limits, exposure, state=state)) is not None:
        seen.append(result.rule)
        if result.rule is Rule.ACCOUNT_BLOCKED:
            state = REDUCE_ONLY
        elif result.rule is Rule.REDUCE_ONLY:
            state = ACTIVE
        else:
            limits = msgspec.structs.replace(limits, **_LIFT[result.rule])
    assert tuple(seen) == PRE_TRADE_ORDER


def snapshot(exposure: Exposure) -> tuple[object, ...]:
    """Everything a check could read, for before/after comparisons."""
    return (
        exposure.open_notional(),
        exposure.positions_notional(),
        exposure.pnl({}),
        exposure.remembered,
        exposure.nth_latest_accepted(1),
        {
            symbol: (position.quantity, position.cost, position.realized_pnl, position.fees)
            for symbol, position in exposure.positions.items()
        },
        [exposure.open_quantity(s, side) for s in ("AAPL", "MSFT") for side in (BUY, SELL)],
    )


@given(
    quantity=st.integers(1, 2000),
    ticks=st.integers(-2000, 2000),
    side=st.sampled_from(Side),
    state=st.sampled_from(AccountState),
)
def test_a_check_changes_nothing_whatever_it_decides(
    quantity: int, ticks: int, side: Side, state: AccountState
) -> None:
    exposure = _everything_exposure()
    exposure.fill("AAPL", BUY, D(5), D("100.00"), D("0.10"), T0 - 1)
    before = snapshot(exposure)
    limits = msgspec.structs.replace(_EVERYTHING, restricted=frozenset(), max_order_quantity=None)
    order = intent(str(quantity), str(D("150.00") + D(ticks) / 100), side=side)
    check(order, limits, exposure, state=state)
    check(order, DEFAULT_RISK.default, exposure, state=state)
    assert snapshot(exposure) == before


# --- exposure bookkeeping -----------------------------------------------------------------


def test_an_order_is_counted_on_acceptance_shrinks_with_fills_and_leaves_when_closed() -> None:
    exposure = Exposure("ACC-1")
    _accepted(exposure, intent("100", "50.00"), "O-1", "49.00")
    _accepted(exposure, intent("10", None, side=SELL), "O-2", "49.00")  # market: at the reference
    _accepted(exposure, intent("10", None, side=SELL), "O-2", "49.00")  # the same id again
    assert exposure.open_notional() == D("5490.00")
    assert exposure.open_quantity("AAPL", BUY) == 100
    assert exposure.open_quantity("AAPL", SELL) == 10
    exposure.fill("AAPL", BUY, D(30), D("50.00"), D("0.30"), T0 + 1, order_id="O-1")
    assert exposure.open_quantity("AAPL", BUY) == 70
    assert exposure.open_notional() == D("3990.00")
    assert exposure.position("AAPL") == 30
    exposure.order_open_quantity("O-1", D(70))  # the OMS's leaves agree: nothing changes
    assert exposure.open_notional() == D("3990.00")
    exposure.order_closed("O-1")
    exposure.order_closed("O-1")
    assert exposure.open_quantity("AAPL", BUY) == 0
    assert exposure.open_notional() == D("490.00")
    exposure.order_open_quantity("O-2", D(0))
    assert exposure.open_notional() == 0
    assert exposure.pnl({"AAPL": D("51.00")}) == (D("-0.30"), D("30.00"))


def test_a_sell_limited_under_the_market_is_counted_at_the_market() -> None:
    exposure = Exposure("ACC-1")
    _accepted(exposure, intent("10", "90.00", side=SELL), "O-1", "100.00")
    assert exposure.open_notional() == D("1000.00")
    _accepted(exposure, intent("10", "110.00", side=SELL), "O-2", "100.00")
    _accepted(exposure, intent("10", "110.00"), "O-3", "100.00")  # a buy: at its limit
    assert exposure.open_notional() == D("3200.00")


def test_a_market_order_with_no_reference_counts_its_quantity_but_no_notional() -> None:
    exposure = Exposure("ACC-1")
    exposure.order_accepted("O-1", "AAPL", BUY, D(10), T0, limit_price=None)
    assert exposure.open_quantity("AAPL", BUY) == 10
    assert exposure.open_notional() == 0


def test_accepted_orders_are_forgotten_once_older_than_the_history() -> None:
    exposure = Exposure("ACC-1", history_seconds=1.0)
    same = {"limit_price": D("100.00")}
    exposure.order_accepted("O-1", "AAPL", BUY, D(1), T0, **same)
    exposure.order_accepted("O-2", "AAPL", BUY, D(1), T0 + S // 2, **same)  # the same order
    exposure.order_accepted("O-3", "AAPL", BUY, D(2), T0 + S // 2, **same)
    assert exposure.remembered == 3
    exposure.order_accepted("O-4", "MSFT", BUY, D(1), T0 + S, **same)  # O-1 is a second old
    assert exposure.remembered == 3
    assert exposure.last_accepted("AAPL", BUY, D(1), D(100)) == T0 + S // 2
    exposure.order_accepted("O-5", "MSFT", BUY, D(2), T0 + S + S // 2, **same)
    assert exposure.remembered == 2
    assert exposure.last_accepted("AAPL", BUY, D(1), D(100)) is None
    assert exposure.nth_latest_accepted(2) == T0 + S
    assert exposure.nth_latest_accepted(3) is None


_ids = st.sampled_from(["O-1", "O-2", "O-3", "O-4"])
_symbols = st.sampled_from(["AAPL", "MSFT"])
_quantities = st.integers(0, 500).map(D)
_sizes = st.integers(1, 500).map(D)
_prices = st.integers(1, 50_000).map(lambda cents: D(cents) / 100)
_operations = st.one_of(
    st.tuples(st.just("accept"), _ids, _symbols, st.sampled_from(Side), _sizes, _prices),
    st.tuples(st.just("leaves"), _ids, _quantities),
    st.tuples(st.just("close"), _ids),
    st.tuples(st.just("fill"), _ids, _quantities, _prices),
)


@given(st.lists(_operations, max_size=30))
def test_open_notional_and_quantities_are_the_sums_over_open_orders(
    operations: list[tuple[Any, ...]],
) -> None:
    exposure = Exposure("ACC-1")
    model: dict[str, list[Any]] = {}  # id -> [symbol, side, open quantity, price]
    for at, (kind, order_id, *rest) in enumerate(operations):
        if kind == "accept":
            symbol, side, quantity, price = rest
            exposure.order_accepted(order_id, symbol, side, quantity, at, limit_price=price)
            model.setdefault(order_id, [symbol, side, quantity, price])
        elif kind == "leaves":
            exposure.order_open_quantity(order_id, rest[0])
            if order_id in model:
                model[order_id][2] = rest[0]
        elif kind == "close":
            exposure.order_closed(order_id)
            model.pop(order_id, None)
        elif order_id in model:  # a fill of an open order
            symbol, side, open_quantity, _ = model[order_id]
            quantity = min(rest[0], open_quantity)
            exposure.fill(symbol, side, quantity, rest[1], D(0), at, order_id=order_id)
            model[order_id][2] = open_quantity - quantity
        model = {key: order for key, order in model.items() if order[2] > 0}
    assert exposure.open_notional() == sum((q * p for _, _, q, p in model.values()), D(0))
    for symbol in ("AAPL", "MSFT"):
        for side in Side:
            expected = sum((q for s, sd, q, _ in model.values() if (s, sd) == (symbol, side)), D(0))
            assert exposure.open_quantity(symbol, side) == expected


_fills = st.lists(
    st.tuples(_symbols, st.sampled_from(Side), _sizes, _prices, _prices),
    max_size=25,
)


@given(_fills)
def test_pnl_and_notional_are_the_sums_over_positions_at_their_marks(
    fills: list[tuple[Any, ...]],
) -> None:
    exposure = Exposure("ACC-1")
    for at, (symbol, side, quantity, price, fee_cents) in enumerate(fills):
        exposure.fill(symbol, side, quantity, price, fee_cents / 1000, at)
    positions = exposure.positions.values()
    realized, unrealized = exposure.pnl({"AAPL": D("100.00")})
    assert realized == sum((p.realized_pnl - p.fees for p in positions), D(0))
    aapl, msft = exposure.positions.get("AAPL"), exposure.positions.get("MSFT")
    assert unrealized == (D(0) if aapl is None else aapl.unrealized_pnl(D("100.00")))
    at_mark = D(0) if aapl is None else abs(aapl.quantity) * 100
    at_cost = D(0) if msft is None else abs(msft.cost)
    assert exposure.positions_notional({"AAPL": D(100)}) == at_mark + at_cost


def test_a_correction_to_flat_keeps_its_pnl_in_the_accounts_total() -> None:
    exposure = Exposure("ACC-1")
    exposure.fill("AAPL", Side.BUY, D(3), D("10.00"), D(0), 1)
    assert exposure.pnl({"AAPL": D("12.00")}) == (D(0), D("6.00"))
    exposure.adjust("AAPL", D(-3), D("12.00"), 2)  # the venue says flat: corrected at the mark
    assert exposure.pnl({}) == (D(0), D("6.00"))  # flat: no mark needed to count it


# --- post-trade ---------------------------------------------------------------------------


@pytest.mark.parametrize(("held", "over"), [("99", False), ("100", False), ("-101", True)])
def test_a_position_over_its_limit_after_a_fill_makes_the_account_reduce_only(
    held: str, over: bool
) -> None:
    result = check_after_fill(holding(held), RiskLimits(position_limit=D(100)), {})
    expected = breach(
        Rule.POSITION,
        "100",
        "101",
        "the AAPL position of -101 is over the account's limit of 100; the account is reduce-only",
        reduce_only=True,
    )
    assert result == (expected if over else None)


@pytest.mark.parametrize(
    ("mark", "loss"), [("90.01", None), ("90.00", None), ("89.99", "1,001.00")]
)
def test_a_loss_over_the_limit_after_a_fill_makes_the_account_reduce_only(
    mark: str, loss: str | None
) -> None:
    exposure = holding("100")  # bought at 100.00
    result = check_after_fill(exposure, RiskLimits(max_loss=D(1000)), {"AAPL": D(mark)})
    expected = None
    if loss is not None:
        expected = breach(
            Rule.MAX_LOSS,
            "1,000.00",
            loss,
            f"the account's loss of {loss} (realized 0.00, unrealized -{loss}) is over its limit "
            "of 1,000.00; the account is reduce-only",
            reduce_only=True,
        )
    assert result == expected


def test_money_at_a_mark_of_many_decimals_reads_in_cents_away_from_the_limit() -> None:
    """A mark is the mean of the venues' mids: a third of a cent has no end of decimals."""
    exposure = holding("3")  # bought at 100.00
    mark = D("89.99") + D("0.01") / 3  # 89.99333...: a loss of 30.01999...
    result = check_after_fill(exposure, RiskLimits(max_loss=D("30.01")), {"AAPL": mark})
    assert result is not None
    assert (result.limit, result.value) == ("30.01", "30.02")
    assert result.reason.startswith(
        "the account's loss of 30.02 (realized 0.00, unrealized -30.02) is over its limit"
    )
    assert money_text(D("30.0100001"), D("30.01")) == "30.02"  # just over reads over
    assert money_text(D("99.996"), D(100)) == "99.99"  # just under reads under
    assert money_text(D("-0.001")) == "0.00"  # never "-0.00"
    assert money_text(D("1234.565")) == "1,234.56"  # no limit: half-even


def test_the_parts_of_a_loss_reason_add_up_to_the_total_it_gives() -> None:
    """Half a cent lost on a sale and half a cent over 30 on the mark: each part to the cent
    on its own would read 0.00 and -30.00 for a loss of 30.01."""
    exposure = Exposure("ACC-1")
    exposure.fill("AAPL", BUY, D(2), D("100.00"), D(0), T0)
    exposure.fill("AAPL", SELL, D(1), D("99.995"), D(0), T0 + 1)  # realized -0.005
    marks = {"AAPL": D("69.995")}  # unrealized -30.005
    result = check_after_fill(exposure, RiskLimits(max_loss=D(30)), marks)
    assert result is not None
    assert result.reason.startswith(
        "the account's loss of 30.01 (realized 0.00, unrealized -30.01) is over its limit"
    )


def test_the_loss_counts_fees_and_realized_pnl_and_no_mark_means_no_unrealized() -> None:
    exposure = Exposure("ACC-1")
    exposure.fill("AAPL", BUY, D(100), D("100.00"), D("2.50"), T0)
    exposure.fill("AAPL", SELL, D(100), D("95.00"), D("2.50"), T0 + 1)
    exposure.fill("MSFT", BUY, D(10), D("400.00"), D(0), T0 + 2)  # no mark: no unrealized
    limits = RiskLimits(max_loss=D(504))
    assert check_after_fill(exposure, limits, {}) == breach(
        Rule.MAX_LOSS,
        "504.00",
        "505.00",
        "the account's loss of 505.00 (realized -505.00, unrealized 0.00) is over its limit of "
        "504.00; the account is reduce-only",
        reduce_only=True,
    )
    assert check_after_fill(exposure, limits, {"MSFT": D("400.10")}) is None


def test_usage_reports_credit_loss_and_the_position_nearest_its_limit() -> None:
    exposure = holding("200", "90.00")
    exposure.fill("BTC-USD", SELL, D("1.5"), D("64000.0"), D(0), T0)
    _accepted(exposure, intent("100"), "O-1", "100.00")
    limits = RiskLimits(
        credit_limit=D(500_000),
        max_loss=D(10_000),
        position_limit=D(1000),
        position_limits={"BTC-USD": D(2)},
    )
    marks = {"AAPL": D("80.00"), "BTC-USD": D("65000.0")}
    assert usage(exposure, limits, marks) == (
        LimitUsage(rule=Rule.CREDIT, limit=D(500_000), used=D("123500.00")),
        LimitUsage(rule=Rule.MAX_LOSS, limit=D(10_000), used=D("3500.00")),
        LimitUsage(rule=Rule.POSITION, limit=D(2), used=D("1.5"), instrument="BTC-USD"),
    )
    assert usage(Exposure("ACC-2"), limits, marks)[2] == LimitUsage(
        rule=Rule.POSITION, limit=D(1000), used=D(0)
    )
    assert usage(exposure, RiskLimits(), marks) == ()


def test_a_collar_breach_reads_prices_to_a_tenth_of_a_tick_and_never_as_on_the_limit() -> None:
    reference = str(D(562_479) / 3000)  # a mean of mids: 187.4930000000000000000000000...
    breach = check(
        intent(price="3150.00"), RiskLimits(price_collar_percent=D(10)), reference=reference
    )
    assert breach is not None
    assert breach.reason == (
        "limit price 3,150.00 is 2,962.507 (1,580.06%) away from the reference price "
        "187.493; the collar allows 18.749 (10%)"
    )
    just_over = check(  # over the limit by a hair: the figures still say over
        intent(price="110.0000001"), RiskLimits(price_collar_percent=D(10)), reference="100"
    )
    assert just_over is not None
    assert (just_over.value, just_over.limit) == ("10.001", "10.00")


def test_reduce_only_cancels_what_adds_and_what_would_take_a_position_past_flat() -> None:
    exposure = Exposure("ACC-1")
    exposure.fill("AAPL", Side.BUY, Decimal(101), Decimal(10), Decimal(0), T0)
    exposure.fill("MSFT", Side.SELL, Decimal(20), Decimal(10), Decimal(0), T0)
    working = [  # oldest first
        WorkingOrder("adds", "AAPL", Side.BUY, Decimal(5)),
        WorkingOrder("reduces", "AAPL", Side.SELL, Decimal(60)),
        WorkingOrder("flips", "AAPL", Side.SELL, Decimal(300)),
        WorkingOrder("fits", "AAPL", Side.SELL, Decimal(41)),  # 60 + 41 = 101: flat
        WorkingOrder("past flat", "AAPL", Side.SELL, Decimal(1)),
        WorkingOrder("covers", "MSFT", Side.BUY, Decimal(20)),
        WorkingOrder("opens", "TSLA", Side.BUY, Decimal(1)),
    ]
    assert not_reducing(working, exposure) == ["adds", "flips", "past flat", "opens"]


def test_what_a_refused_value_should_have_been_reads_right_for_each_rule() -> None:
    def expected(rule: Rule, limit: str) -> str:
        return RiskBreach(rule=rule, limit=limit, value="v", reason="r").expected

    assert expected(Rule.MAX_NOTIONAL, "5,000.00") == "at most 5,000.00"
    assert expected(Rule.DUPLICATE, "30") == "at least 30 s after the same order"
    assert expected(Rule.ACCOUNT_BLOCKED, "ACTIVE") == "an account that may trade (ACTIVE)"
    assert expected(Rule.RESTRICTED, "not restricted") == (
        "an instrument off the account's restricted list"
    )
    assert expected(Rule.REDUCE_ONLY, "SELL 101") == (
        "an order that only reduces the position: at most SELL 101"
    )


def test_the_credit_limit_values_every_position_at_its_mark_as_the_gauge_does() -> None:
    """20 MSFT bought at 400.00 are worth 9,000.00 at a mark of 450.00: with them, a 1,425.00
    AAPL order goes over a 10,000.00 credit limit (at cost, 8,000.00, it would not)."""
    exposure = holding("20", "400.00", instrument="MSFT")
    limits = RiskLimits(credit_limit=D(10_000))
    order = intent("150", "9.50")
    marks = {"MSFT": D("450.00")}
    found = check_order(order, limits, exposure, reference=D("9.50"), state=ACTIVE, marks=marks)
    assert found is not None
    assert (found.rule, found.value) == (Rule.CREDIT, "10,425.00")
    [gauge] = [
        u for u in usage(exposure, limits, {**marks, "AAPL": D("9.50")}) if u.rule is Rule.CREDIT
    ]
    assert gauge.used == D(9_000)  # the gauge and the check count alike


def test_an_order_remembered_after_a_restart_counts_for_the_windows_not_the_exposure() -> None:
    exposure = Exposure("ACC-1")
    exposure.remember_accepted("AAPL", BUY, D(100), T0, limit_price=D("100.00"))
    assert exposure.last_accepted("AAPL", BUY, D(100), D("100.00")) == T0
    assert exposure.nth_latest_accepted(1) == T0
    assert exposure.open_notional() == 0


def test_limits_counted_over_seconds_make_a_config_clocked() -> None:
    assert not DEFAULT_RISK.clocked
    assert not RiskConfig(default=RiskLimits(rate_window_seconds=5.0)).clocked  # no count
    by_rate = RiskLimits(max_orders_per_window=30, rate_window_seconds=0.75)
    assert RiskConfig(accounts={"ACC-1": by_rate}).clocked
    assert RiskConfig(default=RiskLimits(duplicate_window_seconds=2.0)).clocked
