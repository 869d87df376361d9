"""Position reconciliation, pure: our positions per venue against the venue's own record.

Ours are folded from our fills at each venue plus the adjustments breaks made; theirs come
from the venue. A difference is a break. A small one (within the instrument's tolerance, in
quantity and in notional at the mark) is corrected on our side; a large one, or one on a
position whose breaks keep coming back, is escalated to a person. A break whose difference
has gone when it is looked at again (a late fill, the venue correcting itself) is explained.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from decimal import Decimal
from enum import StrEnum

import msgspec

from blotter.domain.cases import Case
from blotter.domain.events import (
    BreakAdjusting,
    BreakAutoCorrected,
    BreakEscalated,
    BreakExplained,
    BreakOpened,
    BreakOurFigureAccepted,
    BreakVenueFigureAccepted,
    Event,
    Payload,
    Severity,
)
from blotter.domain.order import Fill, OrderAggregate
from blotter.domain.risk import format_number
from blotter.domain.values import ZERO, InvalidValue, Side
from blotter.domain.workflows import BreakState

Key = tuple[str, str, str]  # (venue, account, instrument)

_SETTLED_BREAKS = frozenset({BreakState.AUTO_CORRECTED, BreakState.RESOLVED})


class DecisionRefused(Exception):
    """An operator's decision on a break that would change nothing, or contradict the one in
    force (the workflow allows the event in the break's state; the figures do not)."""

    def __init__(self, break_id: str, reason: str) -> None:
        self.break_id = break_id
        self.reason = reason
        super().__init__(f"break {break_id}: {reason}")


class Tolerance(msgspec.Struct, frozen=True, kw_only=True):
    """How far ours may differ from the venue's and be corrected without a person."""

    quantity: Decimal = ZERO
    notional: Decimal = ZERO  # at the mark; with no mark, the quantity alone decides

    def __post_init__(self) -> None:
        for field, value in (("quantity", self.quantity), ("notional", self.notional)):
            if not value.is_finite() or value < 0:
                raise InvalidValue(field, value, "an amount of 0 or more")


class ReconciliationConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Tolerances per instrument over a default; how many breaks on one position escalate."""

    default: Tolerance = Tolerance(quantity=Decimal(5), notional=Decimal(1_000))
    instruments: dict[str, Tolerance] = msgspec.field(default_factory=dict)
    # A position corrected this many times already is escalated at its next break: something
    # keeps making it wrong, and a person should find out what.
    corrections_before_escalation: int = 2
    interval_seconds: float = 30.0  # the timer's pass

    def tolerance_for(self, instrument: str) -> Tolerance:
        return self.instruments.get(instrument, self.default)


class OpenOrder(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An order of ours a venue holds open, as its own records say (the gateway port's)."""

    client_order_id: str
    account: str
    instrument: str
    side: Side
    leaves: Decimal


class Verdict(StrEnum):
    AUTO_CORRECT = "auto_correct"
    ESCALATE = "escalate"


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    account: str
    instrument: str
    ours: Decimal
    theirs: Decimal

    @property
    def key(self) -> Key:
        return (self.venue, self.account, self.instrument)

    @property
    def delta(self) -> Decimal:
        """What ours must move by to equal theirs."""
        return self.theirs - self.ours


def fills_at(orders: Iterable[OrderAggregate], key: Key, since: int) -> list[Fill]:
    """Our fills on ``key``'s position at its venue booked at or after ``since`` (UTC ns)."""
    venue, account, instrument = key
    return [
        fill
        for order in orders
        if order.updated_at >= since
        and order.ticket is not None
        and order.ticket.account == account
        and order.ticket.instrument == instrument
        for fill in order.fills
        if fill.venue == venue and fill.occurred_at >= since
    ]


class InFlight(msgspec.Struct, frozen=True, kw_only=True):
    """How far fills still on their way may put a venue's record of a position from ours: up
    to the leaves of our live buys there above it, of our live sells below it."""

    buys: Decimal = ZERO
    sells: Decimal = ZERO

    def add(self, side: Side, leaves: Decimal) -> InFlight:
        if side is Side.BUY:
            return InFlight(buys=self.buys + leaves, sells=self.sells)
        return InFlight(buys=self.buys, sells=self.sells + leaves)

    def wider(self, other: InFlight) -> InFlight:
        """The larger reach of the two each way: what was working at either of two times."""
        return InFlight(buys=max(self.buys, other.buys), sells=max(self.sells, other.sells))

    def explains(self, ours: Decimal, theirs: Decimal) -> bool:
        """Whether fills in flight could make the whole difference (then a break is not
        known yet); a difference past them is a break whatever is on its way."""
        return -self.sells <= theirs - ours <= self.buys


def to_compare(
    keys: Iterable[Key],
    ours: Mapping[Key, Decimal],
    theirs: Mapping[Key, Decimal],
    in_flight: Mapping[Key, InFlight],
    moved: Iterable[Key],
) -> tuple[set[Key], set[Key]]:
    """The positions a pass compares, and those it leaves for a later one: a position that
    moved while the venue was asked, or whose difference orders still working could make."""
    moved = set(moved)
    compared, left = set(), set()
    for key in keys:
        flying = in_flight.get(key)
        mine, venue_says = ours.get(key, ZERO), theirs.get(key, ZERO)
        if key in moved or (flying is not None and flying.explains(mine, venue_says)):
            left.add(key)
        else:
            compared.add(key)
    return compared, left


def differences(
    ours: Mapping[Key, Decimal], theirs: Mapping[Key, Decimal], keys: Iterable[Key]
) -> list[Difference]:
    """Every position in ``keys`` where ours and theirs disagree (a missing one is 0)."""
    found = []
    for key in sorted(set(keys)):
        mine, venue_says = ours.get(key, ZERO), theirs.get(key, ZERO)
        if mine != venue_says:
            venue, account, instrument = key
            found.append(
                Difference(
                    venue=venue,
                    account=account,
                    instrument=instrument,
                    ours=mine,
                    theirs=venue_says,
                )
            )
    return found


def judge(
    difference: Difference,
    tolerance: Tolerance,
    mark: Decimal | None,
    corrections: int,
    config: ReconciliationConfig,
) -> tuple[Verdict, str]:
    """Correct it ourselves or hand it to a person, and why, in words with the numbers."""
    size = abs(difference.delta)
    what = f"{difference.instrument} at {difference.venue} for {difference.account}"
    ours, theirs, delta = map(format_number, (difference.ours, difference.theirs, difference.delta))
    gap = f"ours {ours}, theirs {theirs}: off by {delta}"
    if size > tolerance.quantity:
        limit = format_number(tolerance.quantity)
        return Verdict.ESCALATE, f"{what}: {gap}, over the tolerance of {limit}"
    if mark is not None and size * mark > tolerance.notional:
        worth = format_number((size * mark).quantize(Decimal("0.01")), 2)
        at, limit = format_number(_mark_shown(mark)), format_number(tolerance.notional)
        return (
            Verdict.ESCALATE,
            f"{what}: {gap}, worth {worth} at {at}, over the tolerance of {limit}",
        )
    if corrections >= config.corrections_before_escalation:
        return Verdict.ESCALATE, f"{what}: {gap}, and corrected {corrections} times already"
    return Verdict.AUTO_CORRECT, f"{what}: {gap}, within tolerance: ours set to theirs"


_MARK_PLACES = Decimal("0.0001")


def _mark_shown(mark: Decimal) -> Decimal:
    """A mark as a reason states it: a mean of the venues' mids (412.2966666...) to four
    places; one with fewer stays as it is."""
    exponent = mark.as_tuple().exponent
    return mark.quantize(_MARK_PLACES) if isinstance(exponent, int) and exponent < -4 else mark


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """A break to open: the difference, what to do with it, and why."""

    difference: Difference
    verdict: Verdict
    reason: str
    severity: Severity = Severity.WARNING  # of an escalation
    order_id: str | None = None  # an order break's client order id
    mark: Decimal | None = None  # the price an automatic correction is booked at

    def payloads(self) -> list[Payload]:
        """The break's first events: opened, then corrected or escalated."""
        d = self.difference
        opened = BreakOpened(
            venue=d.venue,
            account=d.account,
            instrument=d.instrument,
            ours=d.ours,
            theirs=d.theirs,
            reason=self.reason,
            order_id=self.order_id,
        )
        if self.verdict is Verdict.AUTO_CORRECT:
            corrected = BreakAutoCorrected(adjustment=d.delta, price=self.mark, reason=self.reason)
            return [opened, corrected]
        return [opened, BreakEscalated(severity=self.severity, reason=self.reason)]


class Explained(msgspec.Struct, frozen=True, kw_only=True):
    """A break whose difference has gone: with no adjustment of its own, or with one that
    what came since (a late fill) makes unneeded, to be taken back (``reversed``)."""

    break_id: str
    key: Key
    reversed: Decimal = ZERO


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    explain: list[Explained]
    open: list[Finding]


EXPLAINED = "ours and the venue's record agree again (a late fill or the venue)"
# How far over its tolerance (quantity or notional) a break must be to be critical rather
# than a warning.
CRITICAL_MULTIPLE = 10


def plan_pass(
    ours: Mapping[Key, Decimal],
    theirs: Mapping[Key, Decimal],
    compared: Iterable[Key],
    book: BreakBook,
    config: ReconciliationConfig,
    marks: Mapping[str, Decimal],
) -> Plan:
    """What one pass does with the positions it compared: the breaks it opens (none where one
    already waits, or where an operator kept our figure and the venue still says the same),
    and the breaks it explains: open ones whose difference has gone, and adjusted ones whose
    adjustments are now exactly what ours is over (what they stood in for has come)."""
    keys = set(compared)
    found = differences(ours, theirs, keys)
    differing = {d.key for d in found}
    explain = [
        Explained(break_id=break_id, key=key)
        for key in sorted(keys - differing)
        for break_id in book.open_on(key)
        if not book.made.get(break_id, ZERO)  # agreeing because of what it adjusted is not it
    ]
    explaining = {e.break_id for e in explain}
    explain += [  # a dispute the venue's record settled: its break is explained, still open or not
        Explained(break_id=holder, key=key)
        for key in sorted(keys - differing)
        if (holder := book.disputed_by.get(key)) is not None and holder not in explaining
    ]
    left = []
    for d in found:
        undone = book.made_unneeded(d.key, -d.delta)
        explain += [Explained(break_id=b, key=d.key, reversed=book.made[b]) for b in undone]
        if not undone:
            left.append(d)
    findings = [
        _finding(d, book, config, marks)
        for d in left
        if not book.open_on(d.key) and book.disputed.get(d.key) != d.delta
    ]
    return Plan(explain=explain, open=findings)


def _finding(
    difference: Difference,
    book: BreakBook,
    config: ReconciliationConfig,
    marks: Mapping[str, Decimal],
) -> Finding:
    tolerance = config.tolerance_for(difference.instrument)
    corrections = book.corrections.get(difference.key, 0)
    mark = marks.get(difference.instrument)
    verdict, reason = judge(difference, tolerance, mark, corrections, config)
    size = abs(difference.delta)
    # far over either tolerance: 50 BTC off is critical though 50 is 10 lots of AAPL's
    large = size > CRITICAL_MULTIPLE * tolerance.quantity or (
        mark is not None and size * mark > CRITICAL_MULTIPLE * tolerance.notional
    )
    severity = Severity.CRITICAL if large else Severity.WARNING
    return Finding(
        difference=difference, verdict=verdict, reason=reason, severity=severity, mark=mark
    )


def unknown_orders(
    theirs: Iterable[OpenOrder], known: Container[str], book: BreakBook
) -> list[OpenOrder]:
    """Orders a venue holds open that we never sent (and that no break names yet)."""
    return [
        order
        for order in theirs
        if order.client_order_id not in known and order.client_order_id not in book.order_breaks
    ]


def order_finding(venue: str, order: OpenOrder) -> Finding:
    """An unknown live order can trade at any moment: escalated at once, critical."""
    reason = (
        f"{venue} holds {order.side} {order.leaves} {order.instrument} for {order.account} "
        f"open as {order.client_order_id}, an order we never sent"
    )
    difference = Difference(
        venue=venue,
        account=order.account,
        instrument=order.instrument,
        ours=ZERO,
        theirs=order.leaves,
    )
    return Finding(
        difference=difference,
        verdict=Verdict.ESCALATE,
        reason=reason,
        severity=Severity.CRITICAL,
        order_id=order.client_order_id,
    )


# Decisions that leave ours and the venue's figure agreeing, and those that take the figures
# of now (a decision on figures from before a restart would miss what the venue did since).
_AGREEING = (BreakAutoCorrected, BreakVenueFigureAccepted, BreakExplained)
_TAKING_FIGURES = frozenset({"BreakVenueFigureAccepted", "BreakOurFigureAccepted"})


class BreakBook:
    """The breaks folded from their streams: what each adjusted, which are still open."""

    def __init__(self) -> None:
        self.cases: dict[str, Case] = {}
        self.keys: dict[str, Key] = {}  # break id -> the position it is about
        self.on_key: dict[Key, list[str]] = {}  # position -> its breaks, in the order opened
        self.opened: dict[str, BreakOpened] = {}
        self.opened_at: dict[str, int] = {}  # break id -> when it opened (UTC ns)
        self.order_breaks: dict[str, str] = {}  # client order id -> its order break
        self.severity: dict[str, Severity] = {}  # break id -> as escalated
        # Positions where an operator kept our figure: by how much the venue's differs, so
        # that the same known disagreement does not open a new break on every pass, whatever
        # both figures moved by since (a fill of ours, booked by the venue too).
        self.disputed: dict[Key, Decimal] = {}
        # Position -> the break that kept our figure: once the venue agrees again, that break
        # is explained and the dispute ends (a later difference of the same size is new).
        self.disputed_by: dict[Key, str] = {}
        # Break id -> (ours, theirs) as the latest pass compared them, moved by every
        # adjustment of the position since: a decision takes the figures of now. Folded as the
        # break opened and as its decisions left them; a pass's own look is not recorded, so
        # ``compared`` holds the breaks a pass of this session has compared.
        self.seen: dict[str, tuple[Decimal, Decimal]] = {}
        self.compared: set[str] = set()
        self.adjustments: dict[Key, Decimal] = {}  # net adjustment of ours, per position
        self.made: dict[str, Decimal] = {}  # break id -> its adjustment in force
        self.booked_at: dict[str, Decimal | None] = {}  # break id -> its adjustment's price
        self.corrections: dict[Key, int] = {}  # automatic corrections per position

    def apply(self, case: Case, event: Event) -> None:
        """Fold one break event already applied to ``case`` (the break's own workflow)."""
        payload = event.payload
        self.cases[case.stream_id] = case
        if isinstance(payload, BreakOpened):
            self.opened[case.stream_id] = payload
            self.opened_at[case.stream_id] = event.occurred_at
            if payload.order_id is not None:
                self.order_breaks[payload.order_id] = case.stream_id
            else:
                position = (payload.venue, payload.account, payload.instrument)
                self.keys[case.stream_id] = position
                self.on_key.setdefault(position, []).append(case.stream_id)
                self.seen[case.stream_id] = (payload.ours, payload.theirs)
            return
        if isinstance(payload, BreakEscalated):  # order breaks too
            self.severity[case.stream_id] = payload.severity
        key = self.keys.get(case.stream_id)
        if key is None:
            return
        if isinstance(payload, BreakAdjusting):
            if payload.moves:
                self._adjust(case.stream_id, key, payload.moves)
                self.booked_at[case.stream_id] = payload.price
            if isinstance(payload, _AGREEING):  # ours is the venue's figure now
                ours = self.seen[case.stream_id][0]
                self.seen[case.stream_id] = (ours, ours)
            if isinstance(payload, BreakAutoCorrected):
                self.corrections[key] = self.corrections.get(key, 0) + 1
            ends_dispute = isinstance(payload, BreakExplained) and (
                self.disputed_by.get(key) == case.stream_id
            )
            if isinstance(payload, BreakVenueFigureAccepted) or ends_dispute:
                self.disputed.pop(key, None)  # the venue's figure stands, or agrees again
                self.disputed_by.pop(key, None)
        elif isinstance(payload, BreakOurFigureAccepted):
            opened = self.opened[case.stream_id]
            if payload.difference is None:  # kept before decisions named their figures
                self.disputed[key] = opened.theirs - opened.ours
            else:
                self.disputed[key] = payload.difference
            self.disputed_by[key] = case.stream_id
            ours = self.seen[case.stream_id][0]
            self.seen[case.stream_id] = (ours, ours + self.disputed[key])

    def _adjust(self, break_id: str, key: Key, amount: Decimal) -> None:
        self.adjustments[key] = self.adjustments.get(key, ZERO) + amount
        self.made[break_id] = self.made.get(break_id, ZERO) + amount
        for other in self.on_key.get(key, ()):  # ours as last compared has moved with it
            if other != break_id and self.cases[other].state in _SETTLED_BREAKS:
                continue  # settled: its figures stay those it was settled on
            seen = self.seen.get(other)
            if seen is not None:
                self.seen[other] = (seen[0] + amount, seen[1])

    def figures(self, break_id: str) -> tuple[Decimal, Decimal]:
        """Ours and the venue's for a position break: as the latest pass compared them (or the
        break opened, or its decision left them), ours moved by every adjustment since."""
        return self.seen[break_id]

    def as_shown(self, break_id: str) -> tuple[Decimal, Decimal]:
        """Ours before the break's own adjustment, and the venue's: the break's size as it
        stands now, beside what it adjusted (an order break's figures, as it opened)."""
        if break_id not in self.keys:
            opened = self.opened[break_id]
            return opened.ours, opened.theirs
        ours, theirs = self.figures(break_id)
        return ours - self.made.get(break_id, ZERO), theirs

    def observe(
        self, ours: Mapping[Key, Decimal], theirs: Mapping[Key, Decimal], compared: Iterable[Key]
    ) -> None:
        """What a pass compared, for the breaks still open on those positions."""
        for key in compared:
            for break_id in self.open_on(key):
                self.seen[break_id] = (ours.get(key, ZERO), theirs.get(key, ZERO))
                self.compared.add(break_id)

    def refusal(self, break_id: str, decision: str) -> str | None:
        """Why the operator's ``decision`` on a break's figures (the event type it records)
        would change nothing or contradict the one in force; None if it may be taken."""
        key = self.keys.get(break_id)
        if key is None:  # an order break: an order the venue holds, no position to set
            return "an order break has no position to set: resolve it once the order is dealt with"
        made = self.made.get(break_id, ZERO)
        ours, theirs = self.figures(break_id)
        if decision in _TAKING_FIGURES and break_id not in self.compared:
            return (
                "no pass has compared this position since the desk started, and the venue's "
                "figure may have moved: decide once a pass has (Reconcile now; a pass leaves "
                "a position with orders working for later, and cannot read a venue not "
                "connected)"
            )
        if decision == "BreakVenueFigureAccepted" and ours == theirs:
            return "our figure already equals the venue's: nothing is left to accept"
        if decision == "BreakOurFigureAccepted":
            if made:
                return (
                    f"this break's adjustment of {made:+} is in force: reverse it before "
                    "keeping our figure"
                )
            if self.disputed.get(key) == theirs - ours:
                return "our figure is already kept against the venue's"
        if decision == "BreakAdjustmentReversed" and not made:
            return "no adjustment of this break is in force"
        return None

    def still_differ(self, break_id: str) -> tuple[Decimal, Decimal] | None:
        """Ours and the venue's, if they still differ and our figure is not kept against the
        venue's: closing the break then leaves a difference the next pass finds again."""
        key = self.keys.get(break_id)
        if key is None:  # an order break: no figures
            return None
        ours, theirs = self.figures(break_id)
        if ours == theirs or self.disputed.get(key) == theirs - ours:
            return None
        return ours, theirs

    def open_on(self, key: Key) -> list[str]:
        """Breaks on this position still waiting for a person (or an explanation)."""
        return [
            break_id
            for break_id in self.on_key.get(key, ())
            if self.cases[break_id].state not in _SETTLED_BREAKS
        ]

    def made_unneeded(self, key: Key, excess: Decimal) -> list[str]:
        """The latest breaks on ``key`` still adjusting it (not resolved) whose adjustments
        add up to exactly ``excess``, what ours is over the venue's; none if no run does."""
        adjusting = [
            break_id
            for break_id in self.on_key.get(key, ())
            if self.made.get(break_id, ZERO)
            and self.cases[break_id].state is not BreakState.RESOLVED
        ]
        total = ZERO
        for count, break_id in enumerate(reversed(adjusting), start=1):
            total += self.made[break_id]
            if total == excess:
                return adjusting[-count:]
        return []

    def open_breaks(self) -> list[str]:
        """Position and order breaks still waiting, in the order they opened."""
        return [b for b in self.opened if self.cases[b].state not in _SETTLED_BREAKS]

    def ours(self, fills: Mapping[Key, Decimal]) -> dict[Key, Decimal]:
        """Our positions: the fills plus what breaks adjusted."""
        held = dict(fills)
        for key, amount in self.adjustments.items():
            held[key] = held.get(key, ZERO) + amount
        return held
