"""Value types: instruments refuse what is off their grid, with the field, value and expectation."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from blotter.domain.values import AssetClass, Instrument, InvalidValue, Side, parse_decimal

D = Decimal


def instrument(tick: str = "0.01", lot: str = "1", symbol: str = "AAPL") -> Instrument:
    return Instrument(
        symbol=symbol,
        asset_class=AssetClass.EQUITY,
        tick_size=D(tick),
        lot_size=D(lot),
        currency="USD",
    )


AAPL = instrument()
BTC = instrument(tick="0.5", lot="0.001", symbol="BTC-USD")


@pytest.mark.parametrize("field", ["tick_size", "lot_size"])
@pytest.mark.parametrize("step", ["0", "-0.01", "NaN", "Infinity", "-Infinity", "sNaN"])
def test_an_instrument_refuses_a_step_that_is_not_a_positive_number(field: str, step: str) -> None:
    steps = {"tick": "0.01", "lot": "1", field.removesuffix("_size"): step}
    with pytest.raises(InvalidValue) as refused:
        instrument(**steps)
    assert refused.value.field == field
    assert refused.value.expected == "a positive decimal"
    assert str(refused.value).startswith(f"{field}: Decimal(")


@pytest.mark.parametrize("symbol", ["", " AAPL", "AAPL ", "\tX"])
def test_an_instrument_refuses_an_empty_or_padded_symbol(symbol: str) -> None:
    with pytest.raises(InvalidValue, match=r"^symbol: .* expected a non-empty symbol"):
        instrument(symbol=symbol)


def test_an_instrument_decoded_from_config_is_validated_too() -> None:
    good = msgspec.json.encode(AAPL)
    assert msgspec.json.decode(good, type=Instrument) == AAPL
    bad = good.replace(b'"0.01"', b'"-0.01"')
    with pytest.raises(msgspec.ValidationError, match="tick_size"):
        msgspec.json.decode(bad, type=Instrument)


@pytest.mark.parametrize(
    ("tick", "lot", "price_decimals", "quantity_decimals"),
    [
        ("0.01", "1", 2, 0),
        ("0.5", "0.001", 1, 3),
        ("0.0100", "1.000", 2, 0),  # trailing zeros do not count
        ("25", "100", 0, 0),
        ("1E+1", "0.00000001", 0, 8),
    ],
)
def test_decimals_shown_follow_the_tick_and_lot(
    tick: str, lot: str, price_decimals: int, quantity_decimals: int
) -> None:
    ins = instrument(tick=tick, lot=lot)
    assert ins.price_decimals == price_decimals
    assert ins.quantity_decimals == quantity_decimals


@pytest.mark.parametrize(
    ("ins", "price"), [(AAPL, "187.25"), (AAPL, "0.01"), (BTC, "60000.5"), (BTC, "0.5")]
)
def test_a_price_on_the_tick_grid_is_returned_unchanged(ins: Instrument, price: str) -> None:
    assert ins.check_price(D(price)) == D(price)


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("187.255", "a multiple of the tick size 0.01 for AAPL"),
        ("0.001", "a multiple of the tick size 0.01 for AAPL"),
        ("0", "a positive price"),
        ("-1.00", "a positive price"),
        ("NaN", "a positive price"),
        ("Infinity", "a positive price"),
    ],
)
def test_a_price_off_the_grid_is_refused_naming_field_value_and_expectation(
    price: str, expected: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        AAPL.check_price(D(price), field="stop_price")
    error = refused.value
    assert error.field == "stop_price"
    assert str(error.value) == price
    assert error.expected == expected
    assert str(error) == f"stop_price: Decimal('{price}') is invalid; expected {expected}"


@pytest.mark.parametrize(
    ("ins", "quantity", "expected"),
    [
        (AAPL, "10.5", "a multiple of the lot size 1 for AAPL"),
        (BTC, "0.0015", "a multiple of the lot size 0.001 for BTC-USD"),
        (AAPL, "0", "a positive quantity"),
        (AAPL, "-100", "a positive quantity"),
        (AAPL, "-Infinity", "a positive quantity"),
        (AAPL, "1E+30", "a quantity under 1,000,000,000,000,000,000"),
    ],
)
def test_a_quantity_off_the_lot_grid_is_refused_naming_field_value_and_expectation(
    ins: Instrument, quantity: str, expected: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        ins.check_quantity(D(quantity))
    assert refused.value.field == "quantity"
    assert refused.value.value == D(quantity) or quantity.endswith("Infinity")
    assert refused.value.expected == expected
    assert quantity in str(refused.value)


def test_a_quantity_on_the_lot_grid_is_returned_unchanged() -> None:
    assert BTC.check_quantity(D("1.234"), field="display_quantity") == D("1.234")


def _checked(check: Callable[[Decimal], Decimal], value: Decimal) -> object:
    """What a check makes of ``value``: the value itself, or the value its error names."""
    try:
        return check(value)
    except InvalidValue as refused:
        return refused.value


@given(st.decimals(allow_nan=True, allow_infinity=True))
@example(D("1E+30"))
@example(D("-1E+30"))
def test_any_decimal_is_either_accepted_on_the_grid_or_refused_with_a_typed_error(
    value: Decimal,
) -> None:
    """Even a price with more ticks than Decimal's 28 digits can count is an ``InvalidValue``."""
    for check in (AAPL.check_price, BTC.check_quantity):
        assert _checked(check, value) is value


@pytest.mark.parametrize("huge", ["1E+30", "123456789012345678901234567.01"])
def test_a_price_too_long_to_check_against_the_tick_is_refused_not_crashed(huge: str) -> None:
    with pytest.raises(InvalidValue, match="multiple of the tick size"):
        AAPL.check_price(D(huge))
    with pytest.raises(InvalidValue, match=r"a quantity under 1,000,000,000,000,000$"):
        BTC.check_quantity(D(huge))  # more lots than could be counted: not "off the lot"


@pytest.mark.parametrize(
    ("text", "value"),
    [("101.25", "101.25"), ("  7 ", "7"), ("-0.5", "-0.5"), ("1e3", "1000"), ("0", "0")],
)
def test_parse_decimal_reads_user_text_exactly(text: str, value: str) -> None:
    parsed = parse_decimal("limit_price", text)
    assert parsed == D(value)
    assert isinstance(parsed, Decimal)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "a decimal number such as 101.25"),
        ("ten", "a decimal number such as 101.25"),
        ("1,5", "a decimal number such as 101.25"),
        ("10.0.1", "a decimal number such as 101.25"),
        (None, "a decimal number such as 101.25"),
        ("NaN", "a finite decimal number"),
        ("-inf", "a finite decimal number"),
        ("Infinity", "a finite decimal number"),
        ("sNaN", "a finite decimal number"),
    ],
)
def test_parse_decimal_refuses_garbage_naming_the_field(text: str | None, expected: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_decimal("quantity", text)  # type: ignore[arg-type]
    assert refused.value.field == "quantity"
    assert refused.value.value == text
    assert refused.value.expected == expected
    assert str(refused.value) == f"quantity: {text!r} is invalid; expected {expected}"


def test_a_side_signs_the_direction_a_fill_moves_a_position() -> None:
    assert Side.BUY.sign == 1
    assert Side.SELL.sign == -1
    assert Side.BUY.opposite is Side.SELL
    assert Side.SELL.opposite is Side.BUY
    assert Side("SELL") is Side.SELL
