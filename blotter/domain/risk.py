"""Pre-trade and post-trade risk: per-account limits, the exposure they are checked against.

In the spirit of SEC 15c3-5 and MiFID II RTS 6. Every check is a pure function of the order,
the account's state and the market; a failure is a ``RiskBreach`` naming the rule, the limit
and the value, in numbers and in words. The OMS keeps one ``Exposure`` per account up to date
from its events and turns a breach into ``OrderRejected`` (``source="risk"``, ``rule``),
``AccountBlocked`` (``blocks_account``) or ``AccountReduceOnly`` (``reduce_only``); the desk-wide
kill switch is the OMS's own. The GUI shows ``usage`` as gauges.

Notionals are quantity times price, summed as they are: the desk's instruments all trade in
one currency (USD), so the credit limit adds them without FX.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import TypeVar

import msgspec

from blotter.domain.positions import Position
from blotter.domain.values import ZERO, Instrument, InvalidValue, OrderType, Side
from blotter.domain.workflows import AccountState

# Members read once: a member read off its Enum class is a call on CPython 3.11, and these are
# read per order.
_BUY = Side.BUY
_SELL = Side.SELL
_LIMIT = OrderType.LIMIT
_BLOCKED = AccountState.BLOCKED
_REDUCE_ONLY = AccountState.REDUCE_ONLY
_BLOCKED_REDUCE_ONLY = AccountState.BLOCKED_REDUCE_ONLY
_NS = 1_000_000_000


class Rule(StrEnum):
    ACCOUNT_BLOCKED = "account_blocked"
    RESTRICTED = "restricted_instrument"
    REDUCE_ONLY = "reduce_only"
    MAX_QUANTITY = "max_order_quantity"
    MAX_NOTIONAL = "max_order_notional"
    PRICE_COLLAR = "price_collar"
    DUPLICATE = "duplicate_order"
    ORDER_RATE = "order_rate"
    CREDIT = "credit_limit"
    POSITION = "position_limit"
    MAX_LOSS = "max_loss"

    @property
    def label(self) -> str:
        """The rule's name for people (``title`` is taken: it is a ``str`` method)."""
        return RULE_LABELS[self]


RULE_LABELS: dict[Rule, str] = {
    Rule.ACCOUNT_BLOCKED: "Account blocked",
    Rule.RESTRICTED: "Restricted instrument",
    Rule.REDUCE_ONLY: "Reduce-only",
    Rule.MAX_QUANTITY: "Max order quantity",
    Rule.MAX_NOTIONAL: "Max order notional",
    Rule.PRICE_COLLAR: "Price collar",
    Rule.DUPLICATE: "Duplicate order",
    Rule.ORDER_RATE: "Order rate",
    Rule.CREDIT: "Credit limit",
    Rule.POSITION: "Position limit",
    Rule.MAX_LOSS: "Max loss",
}

# The order in which ``check_order`` applies the pre-trade rules: the cheap and decisive first
# (the account's state, the restricted list), then the order on its own (size, price), then the
# order against the account's history (duplicate, rate) and exposure (credit, position).
PRE_TRADE_ORDER: tuple[Rule, ...] = (
    Rule.ACCOUNT_BLOCKED,
    Rule.RESTRICTED,
    Rule.REDUCE_ONLY,
    Rule.MAX_QUANTITY,
    Rule.MAX_NOTIONAL,
    Rule.PRICE_COLLAR,
    Rule.DUPLICATE,
    Rule.ORDER_RATE,
    Rule.CREDIT,
    Rule.POSITION,
)


def format_number(value: Decimal, min_decimals: int = 0) -> str:
    """``value`` with thousands separators and its own decimals, at least ``min_decimals``.

    The one number format of risk reasons. Not rounded here (a value just over a limit must
    not read as the limit; ``money_text`` rounds a computed sum away from it); trailing zeros
    go, so a product such as 1.5626 x 64000.0 reads ``"100,006.40"`` with 2 decimals for
    money, and ``Decimal("125000")`` ``"125,000.00"``.
    """
    value = value.normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -min_decimals:
        value = value.quantize(Decimal(1).scaleb(-min_decimals))
    return f"{value:,f}"


def _money(value: Decimal) -> str:
    return format_number(value, 2)


CENT = Decimal("0.01")


def _to_cents(value: Decimal, limit: Decimal | None = None) -> Decimal:
    """A computed sum of money (at marks that are means, with any number of decimals) to the
    cent, rounded away from ``limit`` toward the side it is on (just over never reads as at,
    nor just under); half-even with no limit to compare."""
    rounding = ROUND_HALF_EVEN
    if limit is not None and value != limit:
        rounding = ROUND_CEILING if value > limit else ROUND_FLOOR
    return value.quantize(CENT, rounding=rounding)


def money_text(value: Decimal, limit: Decimal | None = None) -> str:
    """``_to_cents``, written as money (never "-0.00")."""
    return _cents_text(_to_cents(value, limit))


def _cents_text(cents: Decimal) -> str:
    return _money(cents.copy_abs() if cents.is_zero() else cents)


def _adding_up(parts: Sequence[Decimal], total: Decimal) -> list[Decimal]:
    """``parts`` to the cent so that they add up to ``total`` (in cents already, their sum's),
    each within a cent of its value: the cents that rounding every part down leaves go to the
    largest remainders (or, short, come from the smallest). A reason's sum then reads right."""
    cents = [part.quantize(CENT, rounding=ROUND_FLOOR) for part in parts]
    left = int((total - sum(cents, ZERO)) / CENT)
    by_remainder = sorted(range(len(parts)), key=lambda i: parts[i] - cents[i], reverse=True)
    step = CENT if left >= 0 else -CENT
    for i in (by_remainder if left >= 0 else by_remainder[::-1])[: abs(left)]:
        cents[i] += step
    return cents


def _seconds(value: float) -> str:
    """A configured window for people: ``1.0`` reads ``1``, ``0.25`` reads ``0.25``."""
    return format_number(Decimal(repr(value)).normalize())


# --- configuration ------------------------------------------------------------------------


MAX_WINDOW_SECONDS = 86_400  # a day: the windows remember each order for that long


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    """One set of limits; ``None`` is no limit.

    Quantities and notionals are absolute (never negative); ``max_loss`` is the loss allowed
    before the account turns reduce-only, as a positive number. ``position_limit`` applies to
    every instrument that ``position_limits`` does not name: a single quantity cannot suit both
    a $20 share and a $60,000 coin. ``max_orders_per_window`` orders per ``rate_window_seconds``
    is one limit: an account override that sets the count brings its own window too.
    """

    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    price_collar_percent: Decimal | None = None
    price_collar_ticks: int | None = None
    credit_limit: Decimal | None = None
    position_limit: Decimal | None = None
    position_limits: dict[str, Decimal] = msgspec.field(default_factory=dict)
    duplicate_window_seconds: float | None = None
    max_orders_per_window: int | None = None
    rate_window_seconds: float = 1.0
    restricted: frozenset[str] = frozenset()
    max_loss: Decimal | None = None

    def __post_init__(self) -> None:
        for field in _AMOUNT_FIELDS:
            _check_amount(field, getattr(self, field))
        for symbol, limit in self.position_limits.items():
            _check_symbol("position_limits", symbol)
            _check_amount(f"position_limits[{symbol}]", limit)
        if self.price_collar_ticks is not None and self.price_collar_ticks < 0:
            raise InvalidValue("price_collar_ticks", self.price_collar_ticks, "0 ticks or more")
        if self.max_orders_per_window is not None and self.max_orders_per_window < 1:
            raise InvalidValue("max_orders_per_window", self.max_orders_per_window, "1 or more")
        for field in ("duplicate_window_seconds", "rate_window_seconds"):
            seconds = getattr(self, field)
            if seconds is not None and not (0 < seconds <= MAX_WINDOW_SECONDS):
                raise InvalidValue(
                    field, seconds, f"a positive number of seconds, at most {MAX_WINDOW_SECONDS:,}"
                )
        for symbol in self.restricted:
            _check_symbol("restricted", symbol)

    def position_limit_for(self, instrument: str) -> Decimal | None:
        return self.position_limits.get(instrument, self.position_limit)

    @property
    def history_seconds(self) -> float:
        """How long an ``Exposure`` must remember accepted orders for these limits' windows."""
        rate = self.rate_window_seconds if self.max_orders_per_window is not None else 0.0
        return max(self.duplicate_window_seconds or 0.0, rate)


_AMOUNT_FIELDS = (
    "max_order_quantity",
    "max_order_notional",
    "price_collar_percent",
    "credit_limit",
    "position_limit",
    "max_loss",
)


# Beyond any desk's figure, and far from where Decimal arithmetic overflows (a collar of
# 1e999999999 percent took every limit order's check down with it).
MAX_AMOUNT = Decimal(10) ** 15


def _check_amount(field: str, value: Decimal | None) -> None:
    if value is not None and not (value.is_finite() and 0 <= value <= MAX_AMOUNT):
        raise InvalidValue(
            field,
            value,
            f"a decimal from 0 to {MAX_AMOUNT:,} (leave it out for no limit)",
        )


def _check_symbol(field: str, symbol: str) -> None:
    if not symbol or symbol != symbol.strip():
        raise InvalidValue(field, symbol, "instrument symbols without spaces around them")


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """The desk's limits and each account's overrides.

    An override's field left ``None`` takes the desk's value; ``restricted`` is the union of
    both lists; ``position_limits`` the desk's, with the account's entries on top. ``dict=True``
    gives the frozen config a ``__dict__`` outside its fields, where ``limits_for`` caches the
    merged limits (it is called per order); mutate neither after first use.
    """

    default: RiskLimits = msgspec.field(default_factory=RiskLimits)
    accounts: dict[str, RiskLimits] = msgspec.field(default_factory=dict)

    @property
    def clocked(self) -> bool:
        """Whether a limit counts orders over a window of seconds: its verdicts then follow
        the pace of the wall clock, not only the orders (a seeded run is not repeated)."""
        return any(limits.history_seconds > 0 for limits in (self.default, *self.accounts.values()))

    def limits_for(self, account: str) -> RiskLimits:
        cache: dict[str, RiskLimits] = self.__dict__.setdefault("_merged", {})
        limits = cache.get(account)
        if limits is None:
            override = self.accounts.get(account)
            limits = self.default if override is None else _merge(self.default, override)
            cache[account] = limits
        return limits


_T = TypeVar("_T")


def _pick(own: _T | None, inherited: _T | None) -> _T | None:
    return inherited if own is None else own


def _merge(desk: RiskLimits, account: RiskLimits) -> RiskLimits:
    own_rate = account.max_orders_per_window is not None
    return RiskLimits(
        max_order_quantity=_pick(account.max_order_quantity, desk.max_order_quantity),
        max_order_notional=_pick(account.max_order_notional, desk.max_order_notional),
        price_collar_percent=_pick(account.price_collar_percent, desk.price_collar_percent),
        price_collar_ticks=_pick(account.price_collar_ticks, desk.price_collar_ticks),
        credit_limit=_pick(account.credit_limit, desk.credit_limit),
        position_limit=_pick(account.position_limit, desk.position_limit),
        position_limits={**desk.position_limits, **account.position_limits},
        duplicate_window_seconds=_pick(
            account.duplicate_window_seconds, desk.duplicate_window_seconds
        ),
        max_orders_per_window=(account if own_rate else desk).max_orders_per_window,
        rate_window_seconds=(account if own_rate else desk).rate_window_seconds,
        restricted=desk.restricted | account.restricted,
        max_loss=_pick(account.max_loss, desk.max_loss),
    )


# The demo desk (resources' default config): equities at $20-$500 in lots of 1, crypto at
# $3,000-$64,000 in lots of 0.0001-0.01; the synthetic flow sends 1-50 lots (up to 500 shares in
# the synthetic logs), so a large order is about $100,000. These limits stop a fat finger (a
# 10x order, a price 10% off the market) and never the normal flow. No duplicate window and no
# order-rate throttle by default: the flow draws account, instrument, side, size and price at
# random, so at hundreds of orders per second two identical orders within a second happen, and
# the throughput benchmark offers 20,000 orders at once; a tripped throttle blocks the account
# until an operator steps in. Turn them on per account or for the desk in config.
DEFAULT_RISK = RiskConfig(
    default=RiskLimits(
        max_order_quantity=Decimal(100_000),
        max_order_notional=Decimal(1_000_000),
        price_collar_percent=Decimal(10),
        credit_limit=Decimal(50_000_000),
        position_limit=Decimal(100_000),
        position_limits={"BTC-USD": Decimal(50), "ETH-USD": Decimal(1_000)},
        max_loss=Decimal(1_000_000),
    ),
)


# --- outcomes -----------------------------------------------------------------------------


class RiskBreach(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A refused order or a post-trade breach: the rule, the limit and the value, formatted.

    ``blocks_account``: the OMS records ``AccountBlocked`` (order-rate throttle).
    ``reduce_only``: the OMS records ``AccountReduceOnly`` (a post-trade breach).
    """

    rule: Rule
    limit: str
    value: str
    reason: str
    blocks_account: bool = False
    reduce_only: bool = False

    @property
    def expected(self) -> str:
        """What the refused value should have been, in words: most limits are maximums."""
        return _EXPECTED.get(self.rule, "at most {limit}").format(limit=self.limit)


# The rules whose limit is not a maximum the value went over.
_EXPECTED = {
    Rule.ACCOUNT_BLOCKED: "an account that may trade ({limit})",
    Rule.RESTRICTED: "an instrument off the account's restricted list",
    Rule.DUPLICATE: "at least {limit} s after the same order",
    Rule.REDUCE_ONLY: "an order that only reduces the position: at most {limit}",
}


class LimitUsage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """How much of one limit is used, for a gauge; ``instrument`` for a position limit."""

    rule: Rule
    limit: Decimal
    used: Decimal
    instrument: str | None = None

    @property
    def fraction(self) -> float:
        """``used / limit``: 1.0 is at the limit; a limit of 0 with anything used is infinite."""
        if self.limit == 0:
            return math.inf if self.used > 0 else 0.0
        return float(self.used / self.limit)


class OrderIntent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a risk check needs of an order; the OMS builds it from the ticket."""

    account: str
    instrument: Instrument
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None  # ignored for a market order
    at_ns: int


# --- live state ---------------------------------------------------------------------------


def valued_at(side: Side, limit_price: Decimal | None, reference: Decimal | None) -> Decimal | None:
    """The price an order's notional is counted at. A buy's limit caps what it pays; a sell
    trades at its limit or better, so a sell limited under the market is counted at the
    market (at its limit, it would pass a notional limit by as much as the collar allows).
    A market order is counted at the reference; None when there is no price at all."""
    if limit_price is None:
        return reference
    if side is _BUY or reference is None:
        return limit_price
    return max(limit_price, reference)


class _OpenOrder:
    __slots__ = ("instrument", "is_buy", "price", "quantity")

    def __init__(
        self, instrument: str, is_buy: bool, quantity: Decimal, price: Decimal | None
    ) -> None:
        self.instrument = instrument
        self.is_buy = is_buy
        self.quantity = quantity
        self.price = price  # for notional: as ``valued_at`` gave it when the order came


# An accepted order as the duplicate check compares it; price None is a market order.
_OrderKey = tuple[str, bool, Decimal, Decimal | None]


class Exposure:
    """One account's live risk state, kept by the OMS from its events; cheap per order and fill.

    Positions per instrument (average cost, from ``positions.Position``), open orders with the
    price their notional is counted at and running totals of them (O(1) reads per order), and
    the orders accepted in the last ``history_seconds`` for the duplicate and rate checks.
    Position figures are summed when read, not kept as running totals: an account holds a
    handful of instruments, and a running sum of non-terminating average costs would drift in
    its last digit. Timestamps are
    UTC nanoseconds from the OMS's clock, assumed non-decreasing.
    """

    __slots__ = (
        "_last_seen",
        "_open",
        "_open_buy",
        "_open_notional",
        "_open_sell",
        "_positions",
        "_recent",
        "account",
        "history_ns",
        "rate_counted_from",
    )

    def __init__(self, account: str, *, history_seconds: float = 60.0) -> None:
        """``history_seconds`` must cover the limits' windows (``RiskLimits.history_seconds``)."""
        self.account = account
        self.history_ns = int(history_seconds * _NS)
        # The rate check counts the orders accepted from then on: an operator's unblock starts
        # the count again, or the orders that tripped the throttle would trip it once more.
        self.rate_counted_from = 0
        self._positions: dict[str, Position] = {}
        self._open: dict[str, _OpenOrder] = {}
        self._open_buy: dict[str, Decimal] = {}
        self._open_sell: dict[str, Decimal] = {}
        self._open_notional = ZERO
        self._recent: deque[tuple[int, _OrderKey]] = deque()
        self._last_seen: dict[_OrderKey, int] = {}

    # -- updates, from the OMS's events --

    def order_accepted(
        self,
        order_id: str,
        instrument: str,
        side: Side,
        quantity: Decimal,
        at_ns: int,
        *,
        limit_price: Decimal | None,
        reference: Decimal | None = None,
    ) -> None:
        """Count an accepted order: open for credit and position, remembered for the
        duplicate and rate checks. ``limit_price`` None is a market order. The notional is
        counted at ``valued_at`` (at nothing if there is no price). A known id changes nothing.
        """
        if order_id in self._open:
            return
        is_buy = side is _BUY
        price = valued_at(side, limit_price, reference)
        self._open[order_id] = _OpenOrder(instrument, is_buy, quantity, price)
        self._add_open(instrument, is_buy, quantity, price)
        self._remember(at_ns, (instrument, is_buy, quantity, limit_price))

    def remember_accepted(
        self,
        instrument: str,
        side: Side,
        quantity: Decimal,
        at_ns: int,
        *,
        limit_price: Decimal | None,
    ) -> None:
        """An order accepted at ``at_ns`` and closed since: it still counts in the duplicate
        and rate windows (a restart must not forget it), not for credit or position."""
        self._remember(at_ns, (instrument, side is _BUY, quantity, limit_price))

    def order_open_quantity(self, order_id: str, open_quantity: Decimal) -> None:
        """Set what is still open of an order (its leaves); 0 closes it. Unknown ids: ignored."""
        order = self._open.get(order_id)
        if order is None:
            return
        if open_quantity <= ZERO:
            self.order_closed(order_id)
            return
        delta = open_quantity - order.quantity
        order.quantity = open_quantity
        self._add_open(order.instrument, order.is_buy, delta, order.price)

    def order_closed(self, order_id: str) -> None:
        """The order is done (filled, canceled, expired, rejected). Unknown ids: ignored."""
        order = self._open.pop(order_id, None)
        if order is not None:
            self._add_open(order.instrument, order.is_buy, -order.quantity, order.price)

    def fill(
        self,
        instrument: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        at_ns: int,
        *,
        order_id: str | None = None,
    ) -> None:
        """Add an execution to the position; with ``order_id``, the order's open quantity
        shrinks by the fill too (a later ``order_open_quantity`` with the leaves agrees)."""
        position = self._positions.get(instrument)
        if position is None:
            position = self._positions[instrument] = Position(self.account, instrument)
        position.apply_fill(side, quantity, price, fee, at_ns)
        if order_id is not None:
            order = self._open.get(order_id)
            if order is not None:
                self.order_open_quantity(order_id, order.quantity - quantity)

    def adjust(self, instrument: str, quantity: Decimal, price: Decimal | None, at: int) -> None:
        """A reconciliation adjustment of the position (see ``Position.adjust``)."""
        position = self._positions.get(instrument)
        if position is None:
            position = self._positions[instrument] = Position(self.account, instrument)
        position.adjust(quantity, price, at)

    def _add_open(
        self, instrument: str, is_buy: bool, delta: Decimal, price: Decimal | None
    ) -> None:
        book = self._open_buy if is_buy else self._open_sell
        book[instrument] = book.get(instrument, ZERO) + delta
        if price is not None:
            self._open_notional += delta * price

    def _remember(self, at_ns: int, key: _OrderKey) -> None:
        """Keep the order for the windows; forget what is older than the history."""
        recent, last_seen = self._recent, self._last_seen
        horizon = at_ns - self.history_ns
        while recent and recent[0][0] <= horizon:
            old_at, old_key = recent.popleft()
            if last_seen.get(old_key) == old_at:
                del last_seen[old_key]
        recent.append((at_ns, key))
        last_seen[key] = at_ns

    # -- reads --

    def position(self, instrument: str) -> Decimal:
        position = self._positions.get(instrument)
        return ZERO if position is None else position.quantity

    @property
    def positions(self) -> Mapping[str, Position]:
        return self._positions

    def open_quantity(self, instrument: str, side: Side) -> Decimal:
        return (self._open_buy if side is _BUY else self._open_sell).get(instrument, ZERO)

    def open_notional(self) -> Decimal:
        """Sum of open quantity times its price over open orders, buys and sells alike."""
        return self._open_notional

    def positions_notional(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Sum of |position| valued at ``marks``, at average cost where there is no mark."""
        total = ZERO
        for instrument, position in self._positions.items():
            mark = marks.get(instrument) if marks else None
            total += abs(position.cost) if mark is None else abs(position.quantity) * mark
        return total

    def pnl(self, marks: Mapping[str, Decimal]) -> tuple[Decimal, Decimal]:
        """(realized net of fees, unrealized at ``marks``); an open position with no mark adds
        no unrealized P&L: there is no price to value it at."""
        realized = unrealized = ZERO
        for instrument, position in self._positions.items():
            realized += position.net_realized_pnl
            valued = position.unrealized_at(marks.get(instrument))
            if valued is not None:
                unrealized += valued
        return realized, unrealized

    def last_accepted(
        self, instrument: str, side: Side, quantity: Decimal, limit_price: Decimal | None
    ) -> int | None:
        """When the last order like this one was accepted, if still remembered."""
        return self._last_seen.get((instrument, side is _BUY, quantity, limit_price))

    def nth_latest_accepted(self, n: int) -> int | None:
        """When the ``n``-th most recent remembered order was accepted (1 is the latest)."""
        return self._recent[-n][0] if 0 < n <= len(self._recent) else None

    @property
    def remembered(self) -> int:
        """How many accepted orders are remembered for the duplicate and rate checks."""
        return len(self._recent)


# --- pre-trade ----------------------------------------------------------------------------


def check_order(
    intent: OrderIntent,
    limits: RiskLimits,
    exposure: Exposure,
    *,
    reference: Decimal | None,
    state: AccountState,
    marks: Mapping[str, Decimal] | None = None,
) -> RiskBreach | None:
    """The first rule ``intent`` breaks, in ``PRE_TRADE_ORDER``, or None if it passes them all.

    ``reference`` is the venue reference price (a market order's notional is counted at it);
    ``marks`` value the account's other positions for the credit limit, as its gauge does.
    Pure: the exposure is not changed, so the ticket's pre-check can call it freely; the OMS
    records an accepted order with ``Exposure.order_accepted``. Orders that only reduce a
    position pass the credit and position limits: an account must always be able to get out.
    """
    if state is _BLOCKED or state is _BLOCKED_REDUCE_ONLY:
        return _blocked(state)
    if intent.instrument.symbol in limits.restricted:
        return _restricted(intent)
    if state is _REDUCE_ONLY:
        breach = _check_reduce_only(intent, exposure)
        if breach is not None:
            return breach
    limit_price = intent.limit_price if intent.order_type is _LIMIT else None
    price = valued_at(intent.side, limit_price, reference)
    return (
        _check_quantity(intent, limits)
        or _check_notional(intent, limits, price)
        or _check_collar(intent, limits, limit_price, reference)
        or _check_duplicate(intent, limits, exposure, limit_price)
        or _check_rate(intent, limits, exposure)
        or _check_credit(intent, limits, exposure, price, _marks_with(marks, intent, reference))
        or _check_position(intent, limits, exposure)
    )


def _blocked(state: AccountState) -> RiskBreach:
    return RiskBreach(
        rule=Rule.ACCOUNT_BLOCKED,
        limit=AccountState.ACTIVE.value,
        value=state.value,
        reason="the account is blocked: no new order until an operator unblocks it",
    )


def _restricted(intent: OrderIntent) -> RiskBreach:
    symbol = intent.instrument.symbol
    return RiskBreach(
        rule=Rule.RESTRICTED,
        limit="not restricted",
        value=symbol,
        reason=f"{symbol} is on the account's restricted list",
    )


def adds_to(side: Side, held: Decimal) -> bool:
    """Whether an order on ``side`` would add to the position ``held`` (or open one)."""
    return held == ZERO or (held > ZERO) is (side is _BUY)


class WorkingOrder(msgspec.Struct, frozen=True):
    """What reduce-only needs of a working order: which way it trades, and how much more."""

    order_id: str
    instrument: str
    side: Side
    leaves: Decimal


def not_reducing(orders: Sequence[WorkingOrder], exposure: Exposure) -> list[str]:
    """The working orders an account gone reduce-only must cancel, oldest first in ``orders``.

    Those that would add to a position (or open one); and on the side that reduces it, each
    that would take it past flat on top of the older ones kept: together they would flip a
    long 101 into a short 199. The older keep their places in the venues' queues.
    """
    room: dict[str, Decimal] = {}
    cancel = []
    for order in orders:
        held = exposure.position(order.instrument)
        left = room.get(order.instrument, abs(held))
        if adds_to(order.side, held) or order.leaves > left:
            cancel.append(order.order_id)
        else:
            room[order.instrument] = left - order.leaves
    return cancel


def _reduces(intent: OrderIntent, exposure: Exposure) -> bool:
    """True if the order, with every open order on its side, can only shrink the position."""
    symbol = intent.instrument.symbol
    held = exposure.position(symbol)
    if adds_to(intent.side, held):
        return False
    return intent.quantity + exposure.open_quantity(symbol, intent.side) <= abs(held)


def _check_reduce_only(intent: OrderIntent, exposure: Exposure) -> RiskBreach | None:
    if _reduces(intent, exposure):
        return None
    symbol, side = intent.instrument.symbol, intent.side
    held = exposure.position(symbol)
    already = exposure.open_quantity(symbol, side)
    quantity = format_number(intent.quantity)
    if held == ZERO:
        reason = f"the account is reduce-only and holds no {symbol} to reduce"
    else:
        long_short = "long" if held > ZERO else "short"
        holding = f"its {long_short} {symbol} position of {format_number(abs(held))}"
        if adds_to(side, held):
            reason = f"the account is reduce-only and a {side} would increase {holding}"
        else:
            with_open = f" with {format_number(already)} open on that side" if already else ""
            reason = (
                f"the account is reduce-only: {side} {quantity}{with_open} would go through "
                f"{holding}"
            )
    # The sides say it: a BUY against "at most SELL 200" is not "15 of 200" within a limit.
    reducing = "" if held == ZERO else f"{_SELL if held > ZERO else _BUY} "
    return RiskBreach(
        rule=Rule.REDUCE_ONLY,
        limit=f"{reducing}{format_number(abs(held))}",
        value=f"{side} {format_number(intent.quantity + already)}",
        reason=reason,
    )


def _check_quantity(intent: OrderIntent, limits: RiskLimits) -> RiskBreach | None:
    maximum = limits.max_order_quantity
    if maximum is None or intent.quantity <= maximum:
        return None
    limit, value = format_number(maximum), format_number(intent.quantity)
    return RiskBreach(
        rule=Rule.MAX_QUANTITY,
        limit=limit,
        value=value,
        reason=f"order quantity {value} is over the account's limit of {limit}",
    )


def _unpriced(rule: Rule, maximum: Decimal, intent: OrderIntent) -> RiskBreach:
    """A market order with no reference price cannot be held against a notional limit."""
    limit = _money(maximum)
    return RiskBreach(
        rule=rule,
        limit=limit,
        value="no price",
        reason=(
            f"a market order for {intent.instrument.symbol} has no reference price to value it "
            f"against the account's {rule.label.lower()} of {limit}"
        ),
    )


def _check_notional(
    intent: OrderIntent, limits: RiskLimits, price: Decimal | None
) -> RiskBreach | None:
    maximum = limits.max_order_notional
    if maximum is None:
        return None
    if price is None:
        return _unpriced(Rule.MAX_NOTIONAL, maximum, intent)
    notional = intent.quantity * price
    if notional <= maximum:
        return None
    limit, value = _money(maximum), money_text(notional, maximum)
    currency = intent.instrument.currency
    return RiskBreach(
        rule=Rule.MAX_NOTIONAL,
        limit=limit,
        value=value,
        reason=f"order notional {value} {currency} is over the account's limit of {limit} "
        f"{currency}",
    )


def _check_collar(
    intent: OrderIntent,
    limits: RiskLimits,
    limit_price: Decimal | None,
    reference: Decimal | None,
) -> RiskBreach | None:
    """A limit price too far from the reference. Market orders have no price to collar, and
    with no reference there is nothing to compare against: both pass (the notional limits
    still hold a market order)."""
    percent, ticks = limits.price_collar_percent, limits.price_collar_ticks
    if limit_price is None or reference is None or (percent is None and ticks is None):
        return None
    tick = intent.instrument.tick_size
    widths = []
    if percent is not None:
        widths.append(reference * percent / 100)
    if ticks is not None:
        widths.append(ticks * tick)
    allowed = min(widths)  # both configured: the tighter one
    distance = abs(limit_price - reference)
    if distance <= allowed:
        return None
    share = _share(distance * 100 / reference)
    spec = " or ".join(
        text
        for text in (
            None if percent is None else f"{format_number(percent)}%",
            None if ticks is None else f"{ticks} ticks of {format_number(tick)}",
        )
        if text is not None
    )
    tighter = ", the tighter" if len(widths) == 2 else ""
    # The reference is a mean of mids (28 digits): prices read to a tenth of a tick, the
    # distance rounded up and the allowance down, so that over the limit never reads as on it.
    fine = tick.scaleb(-1)
    shown_distance = _money(_to_step(distance, fine, ROUND_CEILING))
    shown_allowed = _money(_to_step(allowed, fine, ROUND_FLOOR))
    return RiskBreach(
        rule=Rule.PRICE_COLLAR,
        limit=shown_allowed,
        value=shown_distance,
        reason=(
            f"limit price {_money(limit_price)} is {shown_distance} ({share}%) away from the "
            f"reference price {_money(_to_step(reference, fine, ROUND_HALF_EVEN))}; the collar "
            f"allows {shown_allowed} ({spec}{tighter})"
        ),
    )


def _share(percent: Decimal) -> str:
    """A percentage to the hundredth, or to two significant digits under one (0.0043, where
    a hundredth would read 0: a refused price nowhere near its reference)."""
    if percent >= Decimal("0.01"):
        return format_number(percent.quantize(Decimal("0.01")))
    return f"{percent:.2g}"


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``value`` as a whole number of ``step``s, rounded as said."""
    return (value / step).quantize(Decimal(1), rounding=rounding) * step


def _check_duplicate(
    intent: OrderIntent, limits: RiskLimits, exposure: Exposure, limit_price: Decimal | None
) -> RiskBreach | None:
    """The same instrument, side, quantity and price (or both market) within the window."""
    window = limits.duplicate_window_seconds
    if window is None:
        return None
    symbol = intent.instrument.symbol
    last = exposure.last_accepted(symbol, intent.side, intent.quantity, limit_price)
    if last is None:
        return None
    age = intent.at_ns - last
    if age >= window * _NS:  # an order exactly a window ago has left it
        return None
    # truncated: 0.9999 s must not read as the window itself
    ago = format_number(Decimal(age).scaleb(-9).quantize(Decimal("0.001"), ROUND_DOWN))
    at = "at market" if limit_price is None else f"at {_money(limit_price)}"
    order = f"{intent.side} {format_number(intent.quantity)} {symbol} {at}"
    return RiskBreach(
        rule=Rule.DUPLICATE,
        limit=_seconds(window),
        value=ago,
        reason=(
            f"the same order ({order}) was accepted {ago} s ago, within the account's "
            f"duplicate window of {_seconds(window)} s"
        ),
    )


def _check_rate(intent: OrderIntent, limits: RiskLimits, exposure: Exposure) -> RiskBreach | None:
    """The order would be the (max + 1)-th within the window: the account is blocked.

    If the max-th most recent accepted order is inside the window, so are all later ones.
    """
    maximum = limits.max_orders_per_window
    if maximum is None:
        return None
    nth = exposure.nth_latest_accepted(maximum)
    window = limits.rate_window_seconds
    if nth is None or nth < exposure.rate_counted_from or intent.at_ns - nth >= window * _NS:
        return None
    per = f"{maximum:,} per {_seconds(window)} s"
    return RiskBreach(
        rule=Rule.ORDER_RATE,
        limit=f"{maximum:,}",
        value=f"{maximum + 1:,}",
        reason=(
            f"this would be order {maximum + 1:,} within {_seconds(window)} s, over the "
            f"account's limit of {per}; the account is blocked until an operator unblocks it"
        ),
        blocks_account=True,
    )


def _marks_with(
    marks: Mapping[str, Decimal] | None, intent: OrderIntent, reference: Decimal | None
) -> Mapping[str, Decimal]:
    """The marks, with the order's instrument at its reference price."""
    if reference is None:
        return marks or {}
    return {**(marks or {}), intent.instrument.symbol: reference}


def _check_credit(
    intent: OrderIntent,
    limits: RiskLimits,
    exposure: Exposure,
    price: Decimal | None,
    marks: Mapping[str, Decimal],
) -> RiskBreach | None:
    """Open orders' notional + |positions| (at the marks; at average cost where there is
    none) + this order's notional, within the credit limit: as the credit gauge counts it."""
    limit = limits.credit_limit
    if limit is None or _reduces(intent, exposure):
        return None
    if price is None:
        return _unpriced(Rule.CREDIT, limit, intent)
    working = exposure.open_notional()
    held = exposure.positions_notional(marks)
    order = intent.quantity * price
    used = working + held + order
    if used <= limit:
        return None
    total = _to_cents(used, limit)
    parts = [_cents_text(part) for part in _adding_up((working, held, order), total)]
    return RiskBreach(
        rule=Rule.CREDIT,
        limit=_money(limit),
        value=_cents_text(total),
        reason=(
            f"open orders {parts[0]} + positions {parts[1]} + this order {parts[2]} = "
            f"{_cents_text(total)}, over the account's credit limit of {_money(limit)}"
        ),
    )


def _check_position(
    intent: OrderIntent, limits: RiskLimits, exposure: Exposure
) -> RiskBreach | None:
    """Worst case: the position if this order and every open order on its side filled. An
    order that brings that worst case toward flat passes, even over the limit."""
    symbol = intent.instrument.symbol
    limit = limits.position_limit_for(symbol)
    if limit is None:
        return None
    is_buy = intent.side is _BUY
    open_same = exposure.open_quantity(symbol, intent.side)
    before = exposure.position(symbol) + (open_same if is_buy else -open_same)
    after = before + (intent.quantity if is_buy else -intent.quantity)
    if abs(after) <= limit or abs(after) <= abs(before):
        return None
    return RiskBreach(
        rule=Rule.POSITION,
        limit=format_number(limit),
        value=format_number(abs(after)),
        reason=(
            f"if this order and every open {intent.side} on {symbol} filled, the position "
            f"would be {format_number(after)}, over the account's limit of "
            f"{format_number(limit)}"
        ),
    )


# --- post-trade ---------------------------------------------------------------------------


def check_after_fill(
    exposure: Exposure,
    limits: RiskLimits,
    marks: Mapping[str, Decimal],
    instrument: str | None = None,
) -> RiskBreach | None:
    """After a fill: a position over its limit, then a loss over ``max_loss``; either puts the
    account into reduce-only (``reduce_only=True``).

    The loss is realized (net of fees) plus unrealized P&L at ``marks``; an instrument with no
    mark adds no unrealized P&L. A loss exactly at the limit is allowed. With ``instrument``
    (the one that filled) only its position is held to its limit: no other has moved.
    """
    return _check_positions_held(exposure, limits, instrument) or _check_loss(
        exposure, limits, marks
    )


def _check_positions_held(
    exposure: Exposure, limits: RiskLimits, instrument: str | None
) -> RiskBreach | None:
    """Every position, or only ``instrument``'s: after a fill, the only one that moved."""
    if limits.position_limit is None and not limits.position_limits:
        return None
    positions = exposure.positions
    moved = positions.items() if instrument is None else _only(positions, instrument)
    for symbol, position in moved:
        limit = limits.position_limit_for(symbol)
        if limit is not None and abs(position.quantity) > limit:
            held = format_number(position.quantity)
            return RiskBreach(
                rule=Rule.POSITION,
                limit=format_number(limit),
                value=format_number(abs(position.quantity)),
                reason=f"the {symbol} position of {held} is over the account's limit of "
                f"{format_number(limit)}; the account is reduce-only",
                reduce_only=True,
            )
    return None


def _only(positions: Mapping[str, Position], instrument: str) -> list[tuple[str, Position]]:
    position = positions.get(instrument)
    return [] if position is None else [(instrument, position)]


def _check_loss(
    exposure: Exposure, limits: RiskLimits, marks: Mapping[str, Decimal]
) -> RiskBreach | None:
    maximum = limits.max_loss
    if maximum is None:
        return None
    realized, unrealized = exposure.pnl(marks)
    loss = -(realized + unrealized)
    if loss <= maximum:
        return None
    total = _to_cents(loss, maximum)
    made, marked = (_cents_text(part) for part in _adding_up((realized, unrealized), -total))
    return RiskBreach(
        rule=Rule.MAX_LOSS,
        limit=_money(maximum),
        value=_cents_text(total),
        reason=(
            f"the account's loss of {_cents_text(total)} (realized {made}, unrealized "
            f"{marked}) is over its limit of {_money(maximum)}; the account is reduce-only"
        ),
        reduce_only=True,
    )


# --- gauges -------------------------------------------------------------------------------


def usage(
    exposure: Exposure, limits: RiskLimits, marks: Mapping[str, Decimal]
) -> tuple[LimitUsage, ...]:
    """How much of each configured exposure limit the account uses: credit (open orders and
    positions at ``marks``, average cost where there is none), loss (0 while in profit), and
    the position nearest its limit (the instrument named)."""
    gauges: list[LimitUsage] = []
    if limits.credit_limit is not None:
        used = exposure.open_notional() + exposure.positions_notional(marks)
        gauges.append(LimitUsage(rule=Rule.CREDIT, limit=limits.credit_limit, used=used))
    if limits.max_loss is not None:
        realized, unrealized = exposure.pnl(marks)
        loss = max(ZERO, -(realized + unrealized))
        gauges.append(LimitUsage(rule=Rule.MAX_LOSS, limit=limits.max_loss, used=loss))
    position = _position_usage(exposure, limits)
    if position is not None:
        gauges.append(position)
    return tuple(gauges)


def _position_usage(exposure: Exposure, limits: RiskLimits) -> LimitUsage | None:
    nearest: LimitUsage | None = None
    for symbol, position in exposure.positions.items():
        limit = limits.position_limit_for(symbol)
        if limit is None:
            continue
        gauge = LimitUsage(
            rule=Rule.POSITION, limit=limit, used=abs(position.quantity), instrument=symbol
        )
        if nearest is None or gauge.fraction > nearest.fraction:
            nearest = gauge
    if nearest is None and limits.position_limit is not None:
        return LimitUsage(rule=Rule.POSITION, limit=limits.position_limit, used=ZERO)
    return nearest
