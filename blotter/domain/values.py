"""Value types of the trading domain: instruments, sides, order types, ids, exact numbers.

Prices and quantities are ``Decimal`` end to end; a value that breaks its instrument's tick or
lot raises ``InvalidValue`` naming the field, the value and what was expected.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import NewType

import msgspec

OrderId = NewType("OrderId", str)
ChildId = NewType("ChildId", str)
ClientOrderId = NewType("ClientOrderId", str)
ExecId = NewType("ExecId", str)
VenueId = NewType("VenueId", str)
AccountId = NewType("AccountId", str)

ZERO = Decimal(0)


class AssetClass(StrEnum):
    EQUITY = "equity"
    CRYPTO = "crypto"
    FUTURE = "future"
    FX = "fx"


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the direction a fill moves a position."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        """The side an order trades against."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(StrEnum):
    DAY = "DAY"
    IOC = "IOC"
    GTC = "GTC"


class RoutingStrategy(StrEnum):
    """How the smart router spreads an order over venues."""

    SPLIT = "split"  # all to the best venue, or across the top three when no score is good
    BEST = "best"  # all to the top score
    SWEEP = "sweep"  # in proportion to the size each venue shows at or better than the limit
    FIXED = "fixed"  # the venue the trader chose


class Liquidity(StrEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"


class InvalidValue(ValueError):
    """A value that the domain refuses, with what a user needs to correct it."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: {value!r} is invalid; expected {expected}")


MAX_NAME = 128  # characters of a person's name (who acts, who is assigned) the store keeps


def check_name(field: str, name: str) -> str:
    """A person's name as the store can keep it and a list can show it, or ``InvalidValue``:
    a line break or another control character would split the row that names who acted."""
    if not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidValue(
            field, name, f"a name of 1 to {MAX_NAME} characters, none of them a control character"
        )
    return name


def storable(text: str) -> bool:
    """Whether the store can keep ``text``: PostgreSQL keeps no NUL character in a text, and
    UTF-8 spells no lone surrogate (a string decoded with ``surrogateescape`` carries them);
    either would have the store refuse the write, and the OMS stop."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_text(field: str, text: str) -> str:
    """What a person wrote (a note, a reason), not blank, as the store can keep it, or
    ``InvalidValue``."""
    if not text.strip() or not storable(text):
        raise InvalidValue(field, text, "some text")
    return text


MAX_ID = 64  # characters of an id (an order's, a client order id, a stream's) the store keeps
# An account is its stream's id after "account-": the store keeps 56 characters of it.
MAX_ACCOUNT = MAX_ID - len("account-")
_ACCOUNT = re.compile(r"[A-Z0-9][A-Z0-9._-]*")


def check_account(field: str, account: str) -> str:
    """An account id written as the desk writes them (``ACC-ALPHA``), or ``InvalidValue``.

    One spelling per account: "acc-alpha" or "ACC-ALPHA " would be other accounts, each
    under its own limits, escaping those set for ACC-ALPHA.
    """
    if not _ACCOUNT.fullmatch(account) or len(account) > MAX_ACCOUNT:
        raise InvalidValue(
            field,
            account,
            f"an account id like ACC-ALPHA: capitals, digits and . _ -, at most {MAX_ACCOUNT} "
            "characters",
        )
    return account


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """A tradable instrument with the grid its prices and quantities must sit on."""

    symbol: str
    asset_class: AssetClass
    tick_size: Decimal
    lot_size: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not self.symbol or self.symbol != self.symbol.strip():
            raise InvalidValue("symbol", self.symbol, "a non-empty symbol without spaces around it")
        for field, step in (("tick_size", self.tick_size), ("lot_size", self.lot_size)):
            if not step.is_finite() or step <= 0:
                raise InvalidValue(field, step, "a positive decimal")

    @property
    def price_decimals(self) -> int:
        """How many decimals a price of this instrument shows."""
        return _decimals(self.tick_size)

    @property
    def quantity_decimals(self) -> int:
        return _decimals(self.lot_size)

    def check_price(self, price: Decimal, field: str = "limit_price") -> Decimal:
        """Return ``price`` if it is a positive multiple of the tick size, else raise."""
        if not price.is_finite() or price <= 0:
            raise InvalidValue(field, price, "a positive price")
        if not _on_grid(price, self.tick_size):
            raise InvalidValue(
                field, price, f"a multiple of the tick size {self.tick_size} for {self.symbol}"
            )
        return price

    def check_quantity(self, quantity: Decimal, field: str = "quantity") -> Decimal:
        """Return ``quantity`` if it is a positive multiple of the lot size, else raise."""
        if not quantity.is_finite() or quantity <= 0:
            raise InvalidValue(field, quantity, "a positive quantity")
        if quantity / self.lot_size >= MOST_LOTS:  # its lots could not even be counted
            most = (MOST_LOTS * self.lot_size).normalize()
            raise InvalidValue(field, quantity, f"a quantity under {most:,f}")
        if not _on_grid(quantity, self.lot_size):
            raise InvalidValue(
                field, quantity, f"a multiple of the lot size {self.lot_size} for {self.symbol}"
            )
        return quantity


MOST_LOTS = Decimal(10) ** 18  # far past any real order; its lots still count exactly


def parse_decimal(field: str, text: str) -> Decimal:
    """Parse user text into a finite ``Decimal``, naming ``field`` if it is not a number."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise InvalidValue(field, text, "a decimal number such as 101.25") from None
    if not value.is_finite():
        raise InvalidValue(field, text, "a finite decimal number")
    return value


def _on_grid(value: Decimal, step: Decimal) -> bool:
    """True if ``value`` is a whole number of ``step``s; False if there are too many to count."""
    try:
        return value % step == 0
    except InvalidOperation:  # the quotient has more digits than the context: DivisionImpossible
        return False


def _decimals(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0
