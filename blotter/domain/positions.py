"""Positions per account and instrument, folded from fills at average cost.

Quantities are exact. Cost, realized and unrealized P&L are ``Decimal`` at the default 28
significant digits. Closing a position releases its whole cost, so a round trip realizes its
P&L exactly; a partial close releases a proportional share, rounded at the 28th digit only
when the average does not terminate, and cost plus realized P&L always add up.
"""

from __future__ import annotations

from decimal import Decimal

from blotter.domain.values import ZERO, Side

_BUY = Side.BUY  # read per fill; a member read off its Enum class is a call on CPython 3.11


class Position:
    """A signed position (long > 0, short < 0) with its cost basis and realized P&L."""

    __slots__ = ("account", "cost", "fees", "instrument", "quantity", "realized_pnl", "updated_at")

    def __init__(self, account: str, instrument: str) -> None:
        self.account = account
        self.instrument = instrument
        self.quantity = ZERO
        self.cost = ZERO  # signed: average cost times quantity
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.updated_at = 0

    @property
    def avg_cost(self) -> Decimal | None:
        return self.cost / self.quantity if self.quantity else None

    def apply_fill(
        self, side: Side, quantity: Decimal, price: Decimal, fee: Decimal, at: int = 0
    ) -> None:
        """Add one execution. A fill against the position realizes P&L at the average cost."""
        # Comparisons are against the Decimal ZERO: an int operand costs a conversion each time.
        signed = quantity if side is _BUY else -quantity
        held = self.quantity
        self.fees += fee
        if at > self.updated_at:
            self.updated_at = at
        if held == ZERO or (held > ZERO) == (signed > ZERO):
            if held == ZERO and self.cost:  # a correction to flat left it: P&L from now on
                self.realized_pnl -= self.cost
                self.cost = ZERO
            self.quantity = held + signed
            self.cost += signed * price
            return
        closing = min(quantity, abs(held))
        direction = 1 if held > 0 else -1
        # The closed units take their share of the cost; a full close takes all of it, so the
        # realized P&L of a round trip is exact even when the average does not terminate.
        released = self.cost if closing == abs(held) else self.cost * closing / abs(held)
        self.realized_pnl += price * closing * direction - released
        self.quantity = held + signed
        if self.quantity == 0 or (self.quantity > 0) == (held > 0):
            self.cost -= released
        else:  # the fill went through flat: what is left was opened at this fill's price
            self.cost = self.quantity * price

    def adjust(self, quantity: Decimal, price: Decimal | None, at: int = 0) -> None:
        """Move the quantity by a reconciliation adjustment (signed): its cost at ``price``
        (the mark), or at the average cost when None. It is a correction, not a trade: it
        realizes nothing, so undoing it at the same price restores the position exactly. A
        correction to flat leaves a cost with no quantity: unrealized P&L until the next fill
        reopens the position and realizes it."""
        if price is None:
            price = self.avg_cost or ZERO
        self.quantity += quantity
        self.cost += quantity * price
        if at > self.updated_at:
            self.updated_at = at

    @property
    def net_realized_pnl(self) -> Decimal:
        """Realized P&L after the fees paid on the way."""
        return self.realized_pnl - self.fees

    def market_value(self, mark: Decimal) -> Decimal:
        """What the open quantity is worth at ``mark`` (negative for a short)."""
        return self.quantity * mark

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        """P&L of the open quantity if it were closed at ``mark``."""
        return mark * self.quantity - self.cost

    def unrealized_at(self, mark: Decimal | None) -> Decimal | None:
        """Unrealized P&L at ``mark``; None when there is nothing to value (flat, no cost) or
        no mark to value an open quantity at. Flat, what is left of the cost (a correction to
        flat) is P&L whatever the mark."""
        if not self.quantity:
            return -self.cost if self.cost else None
        return None if mark is None else self.unrealized_pnl(mark)
