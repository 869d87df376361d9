"""The OMS's risk desk: each account's exposure and restrictions, kept by the OMS's events.

The rules themselves are pure (``blotter.domain.risk``); this keeps what they are applied to.
An account's exposure follows its orders (accepted, open quantity, fills) and its restrictions
follow its own stream (blocked, reduce-only), folded here as they are recorded and at recovery.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from decimal import Decimal

from blotter.domain.cases import Case
from blotter.domain.events import (
    AccountBlocked,
    AccountReduceOnly,
    Event,
    OrderCreated,
    OrderRejected,
    Payload,
    StreamKind,
    account_of_stream,
    account_stream_id,
)
from blotter.domain.fsm import InvalidTransition
from blotter.domain.order import OrderAggregate
from blotter.domain.risk import (
    DEFAULT_RISK,
    Exposure,
    LimitUsage,
    OrderIntent,
    RiskBreach,
    RiskConfig,
    RiskLimits,
    check_after_fill,
    check_order,
    usage,
)
from blotter.domain.values import ZERO, Instrument, OrderType
from blotter.domain.workflows import AccountState

RECENT_REJECTIONS = 50  # per desk, for the risk panel


class RiskRejection:
    """A risk refusal as the risk panel lists it."""

    __slots__ = ("account", "at", "instrument", "order_id", "refused")

    def __init__(
        self, order_id: str, account: str, instrument: str, at: int, refused: OrderRejected
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.at = at
        self.refused = refused


class AccountRisk:
    """One account: its exposure and the state of its restrictions stream."""

    __slots__ = ("account", "case", "exposure", "restrictions")

    def __init__(self, account: str, history_seconds: float) -> None:
        self.account = account
        self.exposure = Exposure(account, history_seconds=history_seconds)
        self.case = Case(account_stream_id(account), StreamKind.ACCOUNT)
        # The event behind each restriction in force, for the panel: who, when, which rule.
        self.restrictions: dict[str, tuple[Event, AccountBlocked | AccountReduceOnly]] = {}

    @property
    def state(self) -> AccountState:
        return AccountState(self.case.state)

    @property
    def listed(self) -> bool:
        return self.case.opened is not None


class RiskDesk:
    """Exposure and restrictions per account, and the checks the OMS asks before and after."""

    def __init__(self, config: RiskConfig = DEFAULT_RISK) -> None:
        self.config = config
        self.accounts: dict[str, AccountRisk] = {}
        self.rejections: deque[RiskRejection] = deque(maxlen=RECENT_REJECTIONS)
        self.refused_by_rule: Counter[str] = Counter()  # since this OMS started
        self._history = max(
            [config.default.history_seconds]
            + [config.limits_for(a).history_seconds for a in config.accounts]
        )

    def account(self, name: str) -> AccountRisk:
        found = self.accounts.get(name)
        if found is None:
            found = self.accounts[name] = AccountRisk(name, self._history)
        return found

    def peek(self, name: str) -> AccountRisk:
        """The account as it stands, without keeping a new one (a pre-check of a half-typed
        account name must not list it)."""
        found = self.accounts.get(name)
        if found is None:
            return AccountRisk(name, self._history)
        return found

    def limits(self, account: str) -> RiskLimits:
        return self.config.limits_for(account)

    # --- checks -------------------------------------------------------------------------------

    def check(
        self,
        ticket: OrderCreated,
        instrument: Instrument,
        at_ns: int,
        marks: Mapping[str, Decimal],
    ) -> RiskBreach | None:
        """The first rule the order breaks, or None; changes nothing (the ticket's pre-check).
        ``marks``: the instruments' reference prices."""
        account = self.peek(ticket.account)
        intent = OrderIntent(
            account=ticket.account,
            instrument=instrument,
            side=ticket.side,
            order_type=ticket.order_type,
            quantity=ticket.quantity,
            limit_price=ticket.limit_price,
            at_ns=at_ns,
        )
        return check_order(
            intent,
            self.limits(ticket.account),
            account.exposure,
            reference=marks.get(ticket.instrument),
            state=account.state,
            marks=marks,
        )

    def after_fill(
        self, account: str, instrument: str, marks: Mapping[str, Decimal]
    ) -> RiskBreach | None:
        """A post-trade breach, after a fill in ``instrument``, that should put the account
        into reduce-only, if any (none when it already is)."""
        risk = self.account(account)
        if risk.state in (AccountState.REDUCE_ONLY, AccountState.BLOCKED_REDUCE_ONLY):
            return None
        return check_after_fill(risk.exposure, self.limits(account), marks, instrument)

    def usage(self, account: str, marks: Mapping[str, Decimal]) -> tuple[LimitUsage, ...]:
        return usage(self.peek(account).exposure, self.limits(account), marks)

    # --- following the orders -----------------------------------------------------------------

    def accepted_order(
        self, order: OrderAggregate, ticket: OrderCreated, at_ns: int, reference: Decimal | None
    ) -> None:
        """An order passed the checks and is about to be routed: it counts from now on."""
        self.account(ticket.account).exposure.order_accepted(
            order.order_id,
            ticket.instrument,
            ticket.side,
            ticket.quantity,
            at_ns,
            limit_price=_limit_of(ticket),
            reference=reference,
        )

    def accepted_before(self, ticket: OrderCreated, at_ns: int) -> None:
        """An order accepted in an earlier session and closed since (see recovery): it
        still counts in its account's duplicate and rate windows."""
        self.account(ticket.account).exposure.remember_accepted(
            ticket.instrument,
            ticket.side,
            ticket.quantity,
            at_ns,
            limit_price=_limit_of(ticket),
        )

    def follow(
        self, order: OrderAggregate, filled_before: Decimal, notional_before: Decimal, fee: Decimal
    ) -> bool:
        """Bring the account up to date after events on ``order``; True if it filled.

        A fill is read off the order's totals (what the fold booked, so a duplicate or an
        overfill it refused counts for nothing), at the price those totals imply.
        """
        ticket = order.ticket
        if ticket is None:
            return False
        exposure = self.account(ticket.account).exposure
        filled = order.filled - filled_before
        if filled > ZERO:
            price = (order.notional - notional_before) / filled
            exposure.fill(ticket.instrument, ticket.side, filled, price, fee, order.updated_at)
        exposure.order_open_quantity(order.order_id, order.leaves if order.is_working else ZERO)
        return filled > ZERO

    def refused(self, order: OrderAggregate, refused: OrderRejected, at: int) -> None:
        """A risk refusal now: counted for this session, and listed among the latest."""
        if self.list_refusal(order, refused, at):
            self.refused_by_rule[refused.rule or "?"] += 1

    def list_refusal(self, order: OrderAggregate, refused: OrderRejected, at: int) -> bool:
        """List a risk refusal among the latest (one read back at recovery too); False if
        ``refused`` was not risk's."""
        ticket = order.ticket
        if ticket is None or refused.source != "risk":
            return False
        self.rejections.append(
            RiskRejection(order.order_id, ticket.account, ticket.instrument, at, refused)
        )
        return True

    # --- the accounts' streams ----------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event of an account's stream (recorded now, or read at recovery)."""
        risk = self.account(account_of_stream(event.stream_id))
        try:
            risk.case.apply(event)
        except InvalidTransition:
            return  # refused when it was recorded (the OMS checks first): nothing changes
        payload: Payload = event.payload
        if isinstance(payload, AccountBlocked):
            risk.restrictions["blocked"] = (event, payload)
        elif isinstance(payload, AccountReduceOnly):
            risk.restrictions["reduce_only"] = (event, payload)
        elif event.type == "AccountUnblocked":
            risk.restrictions.pop("blocked", None)
            risk.exposure.rate_counted_from = event.occurred_at
        elif event.type == "AccountReduceOnlyCleared":
            risk.restrictions.pop("reduce_only", None)


def _limit_of(ticket: OrderCreated) -> Decimal | None:
    """The ticket's limit price; None for a market order (the duplicate check keys on it)."""
    return ticket.limit_price if ticket.order_type is OrderType.LIMIT else None
