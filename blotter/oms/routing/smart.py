"""The smart router: score every venue for this order, then allocate by the order's strategy.

Scoring. A venue takes part if it lists the instrument, is not DOWN and has not refused this
order already; each such venue gets four component scores in [0, 1], each monotone in the
venue's own input (see the functions below), and a total: their weighted sum, the weights
normalized to sum 1. Scores are kept to 4 decimals, so a decision reads the same in the event
as on screen and float noise cannot tip a score across the split threshold.

Allocation. Whole lots, summing exactly to the quantity; largest remainder, with ties going to
the higher score and then to the venue name first in order, so the same inputs always give the
same plan. A quantity of N lots therefore reaches at most N venues.

Pure: no I/O, no clock, no randomness; one ``route()`` over four venues costs some tens of µs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

import msgspec

from blotter.domain.events import OrderCreated, RoutingDecision, VenueScore
from blotter.domain.values import Instrument, InvalidValue, RoutingStrategy, Side
from blotter.domain.workflows import VenueHealth
from blotter.oms.routing.port import Allocation, RoutePlan, VenueCandidate

# The price score reaches 0 this far from the best price: 5 bps is more than a taker fee, so a
# venue that far off is worth nothing on price; the tick floor keeps a cheap stock (one tick is
# 16 bps of a $62 share) from scoring 0 one tick off the best.
PRICE_SPAN_BPS = Decimal(5)
PRICE_SPAN_TICKS = Decimal(5)
# The latency that scores 0.5 on speed; the simulated desk spans 0.4 ms to 8 ms round trips.
REFERENCE_LATENCY_MS = 2.0
# What an unknown latency or success rate scores: neither trusted nor distrusted.
NEUTRAL = 0.5
# What the circuit breaker's state does to reliability: a DEGRADED venue is half as reliable.
BREAKER_FACTOR = {VenueHealth.UP: 1.0, VenueHealth.DEGRADED: 0.5, VenueHealth.DOWN: 0.0}
SCORE_PLACES = 4

DOWN = "DOWN"
REFUSED = "refused this order"

_BPS = Decimal(10_000)
_SCORE_UNITS: int = 10**SCORE_PLACES
_SIZE_PLACES = 8
# ``VenueHealth.value`` is a Python-level property on an enum; route() records the health of
# every venue, and a dict read costs a fraction of it.
_HEALTH_TEXT = {health: health.value for health in VenueHealth}


class RouterWeights(msgspec.Struct, frozen=True, kw_only=True):
    """How much each component counts; any non-negative weights with a positive sum.

    Raises ``InvalidValue`` (a ``msgspec.ValidationError`` through ``msgspec.convert``).
    """

    price: float = 0.4
    liquidity: float = 0.3
    speed: float = 0.2
    reliability: float = 0.1

    def __post_init__(self) -> None:
        for field, weight in zip(_WEIGHT_FIELDS, self.as_tuple(), strict=True):
            if not math.isfinite(weight) or weight < 0:
                raise InvalidValue(field, weight, "a finite weight >= 0")
        if sum(self.as_tuple()) <= 0:
            raise InvalidValue("weights", self.as_tuple(), "at least one positive weight")

    def as_tuple(self) -> tuple[float, float, float, float]:
        """Price, liquidity, speed, reliability: the order ``RoutingDecision.weights`` uses."""
        return (self.price, self.liquidity, self.speed, self.reliability)

    def normalized(self) -> RouterWeights:
        """The same weights scaled to sum 1."""
        total = sum(self.as_tuple())
        price, liquidity, speed, reliability = (w / total for w in self.as_tuple())
        return RouterWeights(price=price, liquidity=liquidity, speed=speed, reliability=reliability)


_WEIGHT_FIELDS = ("price", "liquidity", "speed", "reliability")
DEFAULT_WEIGHTS = RouterWeights()


# --- component scores: pure, each in [0, 1] and monotone in its own first argument ------------


def price_span(best: Decimal, tick_size: Decimal) -> Decimal:
    """How far worse than ``best`` a price scores 0: ``PRICE_SPAN_BPS`` or ``PRICE_SPAN_TICKS``
    ticks, whichever is wider."""
    return max(abs(best) * PRICE_SPAN_BPS / _BPS, tick_size * PRICE_SPAN_TICKS)


def price_score(
    price: Decimal | None, best: Decimal | None, side: Side, tick_size: Decimal
) -> float:
    """1 at ``best`` (or better), falling linearly to 0 at ``price_span`` worse; no quote is 0.

    Worse means higher for a buy (it pays the ask) and lower for a sell (it hits the bid).
    Relative to the best of the venues rather than ``best / price``, which is 0.9999 for any
    two real quotes and so tells them apart by nothing.
    """
    if price is None or best is None:
        return 0.0
    return _price_score(price, best, side, price_span(best, tick_size))


def _price_score(
    price: Decimal | None, best: Decimal | None, side: Side, span: Decimal | None
) -> float:
    """``price_score`` with the ``price_span`` of ``best`` given (None when ``best`` is): it
    depends on the best price only, so a route works it out once rather than once per venue."""
    if price is None or best is None or span is None:
        return 0.0
    worse_by = price - best if side is Side.BUY else best - price
    if worse_by <= 0:
        return 1.0
    if worse_by >= span:
        # The score would clamp to 0 anyway: this skips the division and the slow
        # Decimal-to-float conversion and gives the same result.
        return 0.0
    return 1.0 - float(worse_by / span)


def liquidity_score(available: Decimal, remaining: Decimal) -> float:
    """The share of the quantity to route that the venue shows at or better than the limit,
    capped at 1: a venue that can fill all of it is as good as one that shows ten times more."""
    if remaining <= 0 or available >= remaining:
        # All of it (the ratio would be capped at 1): no division, no Decimal-to-float.
        return 1.0
    if available <= 0:
        return 0.0
    return float(available / remaining)


def speed_score(latency_ms: float | None, reference_ms: float = REFERENCE_LATENCY_MS) -> float:
    """``reference / (reference + latency)``: 1 at 0 ms, 0.5 at the reference, toward 0 after;
    an unknown latency scores ``NEUTRAL`` (as if it were the reference)."""
    if latency_ms is None or math.isnan(latency_ms):
        return NEUTRAL
    return reference_ms / (reference_ms + max(0.0, latency_ms))


def reliability_score(success_rate: float | None, health: VenueHealth) -> float:
    """The recent success rate (clamped to [0, 1]; unknown counts as ``NEUTRAL``) times the
    circuit breaker's factor: UP 1, DEGRADED 0.5, DOWN 0."""
    rate = NEUTRAL if success_rate is None or math.isnan(success_rate) else success_rate
    return min(1.0, max(0.0, rate)) * BREAKER_FACTOR[health]


def largest_remainder(lots: int, shares: Sequence[int]) -> list[int]:
    """Split ``lots`` in proportion to ``shares``; the result sums to ``lots`` exactly.

    Lots left after the whole parts go to the largest fractional parts, ties to the entry that
    comes first (callers pass venues best first). Shares all zero count as equal shares.
    """
    total = sum(shares)
    if total <= 0:
        shares, total = [1] * len(shares), len(shares)
    counts = [lots * share // total for share in shares]
    left = lots - sum(counts)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(lots * shares[i] % total), i))
    for i in by_remainder[:left]:
        counts[i] += 1
    return counts


# --- the router -------------------------------------------------------------------------------


class SmartRouter:
    """Scores venues on price, liquidity, speed and reliability and allocates by strategy.

    BEST: all to the top score. SPLIT: all to the top score, or across the top ``split_count``
    in proportion to their scores when the top is under ``split_threshold``. SWEEP: in
    proportion to the size each venue shows at or better than the limit (BEST when none shows
    any). FIXED (whenever the ticket names a venue): all to that venue, or nothing if it cannot
    take the order. Every plan carries a ``RoutingDecision``; ``attempt`` is left 0 for the
    caller to set.
    """

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        *,
        weights: RouterWeights = DEFAULT_WEIGHTS,
        split_threshold: float = 0.8,
        split_count: int = 3,
        min_slice_notional: Decimal = Decimal(0),
    ) -> None:
        if not 0.0 <= split_threshold <= 1.0:
            raise InvalidValue("split_threshold", split_threshold, "a score in [0, 1]")
        if split_count < 1:
            raise InvalidValue("split_count", split_count, "at least 1 venue")
        self._instruments = instruments
        self._weights = weights.normalized().as_tuple()
        self._threshold = split_threshold
        self._split_count = split_count
        if not min_slice_notional >= 0:
            raise InvalidValue("min_slice_notional", min_slice_notional, "an amount of 0 or more")
        # A split never makes slices worth less than this: a small order goes to fewer venues.
        self._min_slice = min_slice_notional
        # The fixed parts of a split's reason, formatted once rather than on every route.
        self._threshold_text = f"{split_threshold:.2f}"
        self._floor_text = f" (slices of {_quantity_text(min_slice_notional)} or more)"
        self._unsplit_text = (
            f" (split by score, a slice would be under {_quantity_text(min_slice_notional)})"
        )

    @property
    def weights(self) -> tuple[float, float, float, float]:
        """The normalized weights: price, liquidity, speed, reliability."""
        return self._weights

    def route(
        self,
        ticket: OrderCreated,
        quantity: Decimal,
        venues: Sequence[VenueCandidate],
        tried: frozenset[str],
    ) -> RoutePlan:
        """Allocate ``quantity`` by the ticket's strategy; no allocations when it cannot be.

        ``tried`` venues (they refused this order) are excluded like DOWN ones.
        """
        strategy = RoutingStrategy.FIXED if ticket.venue is not None else ticket.strategy
        symbol = ticket.instrument
        instrument = self._instruments.get(symbol)
        if instrument is None:
            why = f"unknown instrument {symbol}"
            scores = [_excluded(venue, why) for venue in venues]
            return self._plan(strategy, quantity, scores, (), f"no venue can take {symbol}: {why}")
        scores = self._score_all(ticket, quantity, venues, tried, instrument)
        allocations, reason = self._allocate(ticket, strategy, quantity, scores, instrument)
        return self._plan(strategy, quantity, scores, allocations, reason)

    # --- scoring ------------------------------------------------------------------------------

    def _score_all(
        self,
        ticket: OrderCreated,
        quantity: Decimal,
        venues: Sequence[VenueCandidate],
        tried: frozenset[str],
        instrument: Instrument,
    ) -> list[VenueScore]:
        side = ticket.side
        whys = [_exclusion(venue, instrument.symbol, tried) for venue in venues]
        quotes = [v.best_price for v, why in zip(venues, whys, strict=True) if not why]
        best = _best_price(quotes, side)
        span = None if best is None else price_span(best, instrument.tick_size)
        return [
            _excluded(venue, why) if why else self._score(venue, side, quantity, best, span)
            for venue, why in zip(venues, whys, strict=True)
        ]

    def _score(
        self,
        venue: VenueCandidate,
        side: Side,
        quantity: Decimal,
        best: Decimal | None,
        span: Decimal | None,
    ) -> VenueScore:
        price = _places(_price_score(venue.best_price, best, side, span))
        liquidity = _places(liquidity_score(venue.liquidity, quantity))
        speed = _speed_places(venue.latency_ms)
        reliability = _reliability_places(venue.success_rate, venue.health)
        w_price, w_liquidity, w_speed, w_reliability = self._weights
        total = (
            w_price * price
            + w_liquidity * liquidity
            + w_speed * speed
            + w_reliability * reliability
        )
        return _venue_score(
            venue,
            price_score=price,
            liquidity_score=liquidity,
            speed_score=speed,
            reliability_score=reliability,
            total=min(1.0, round(total, SCORE_PLACES)),
        )

    # --- strategies ---------------------------------------------------------------------------

    def _allocate(
        self,
        ticket: OrderCreated,
        strategy: RoutingStrategy,
        quantity: Decimal,
        scores: list[VenueScore],
        instrument: Instrument,
    ) -> tuple[tuple[Allocation, ...], str]:
        if quantity <= 0:
            return (), f"nothing to route: quantity {quantity}"
        if strategy is RoutingStrategy.FIXED:
            return _fixed(ticket.venue, quantity, scores)
        ranked = sorted([s for s in scores if not s.excluded], key=_rank)
        if not ranked:
            return (), _none_eligible(instrument.symbol, scores)
        if strategy is RoutingStrategy.BEST:
            return _best(ranked, quantity)
        if strategy is RoutingStrategy.SWEEP:
            return _sweep(ranked, quantity, instrument.lot_size, ticket.limit_price)
        price = ticket.limit_price or _best_price([s.price for s in ranked], ticket.side)
        return self._split(ranked, quantity, instrument.lot_size, price)

    def _split(
        self, ranked: list[VenueScore], quantity: Decimal, lot: Decimal, price: Decimal | None
    ) -> tuple[tuple[Allocation, ...], str]:
        top = ranked[0]
        threshold = self._threshold_text
        best = score_text(top.total, self._threshold)
        if top.total >= self._threshold:
            return _all_to(top.venue, quantity), (
                f"split: best score {best} >= {threshold}, all to {top.venue}"
            )
        group = ranked[: self._split_width(quantity, price)]
        allocations = _in_lots(quantity, lot, [(s.venue, _score_units(s.total)) for s in group])
        # Shares follow the scores: the lowest scored venue's may still be under the floor.
        while len(group) > 1 and self._under_floor(allocations, price):
            group = group[:-1]
            weights = [(s.venue, _score_units(s.total)) for s in group]
            allocations = _in_lots(quantity, lot, weights)
        names = ", ".join([a.venue for a in allocations])
        narrowed = len(group) < min(self._split_count, len(ranked))
        floor = ""
        if narrowed:
            floor = self._floor_text if len(allocations) > 1 else self._unsplit_text
        where = f"across {names}" if len(allocations) > 1 else f"all to {names}"
        return allocations, f"split: best score {best} < {threshold}, {where}{floor}"

    def _under_floor(self, allocations: tuple[Allocation, ...], price: Decimal | None) -> bool:
        """Whether a slice is worth less than ``min_slice_notional``."""
        return price is not None and any(a.quantity * price < self._min_slice for a in allocations)

    def _split_width(self, quantity: Decimal, price: Decimal | None) -> int:
        """How many venues a split may use: ``split_count``, fewer when slices would be worth
        less than ``min_slice_notional`` each (at least one; any number when unpriced)."""
        if not self._min_slice or price is None:
            return self._split_count
        slices = int(quantity * price // self._min_slice)
        return max(1, min(self._split_count, slices))

    def _plan(
        self,
        strategy: RoutingStrategy,
        quantity: Decimal,
        scores: list[VenueScore],
        allocations: tuple[Allocation, ...],
        reason: str,
    ) -> RoutePlan:
        decision = RoutingDecision(
            strategy=strategy,
            quantity=quantity,
            reason=reason,
            venues=_with_allocations(scores, allocations),
            weights=self._weights,
        )
        return RoutePlan(allocations=allocations, reason=reason, decision=decision)


def _best(ranked: list[VenueScore], quantity: Decimal) -> tuple[tuple[Allocation, ...], str]:
    top = ranked[0]
    return _all_to(top.venue, quantity), f"best: {top.venue} scores {top.total:.2f}"


def _sweep(
    ranked: list[VenueScore], quantity: Decimal, lot: Decimal, limit: Decimal | None
) -> tuple[tuple[Allocation, ...], str]:
    where = "" if limit is None else f" at or better than {limit}"
    showing = [s for s in ranked if s.liquidity > 0]
    if not showing:
        # A limit order may rest on an empty book: it still goes somewhere, the best venue.
        allocations, best = _best(ranked, quantity)
        return allocations, f"sweep: no size shown{where}, so {best}"
    shares = _integer_shares([s.liquidity for s in showing])
    allocations = _in_lots(
        quantity, lot, [(s.venue, n) for s, n in zip(showing, shares, strict=True)]
    )
    shown = _quantity_text(sum((s.liquidity for s in showing), Decimal(0)))
    count = f"{len(showing)} venue" + ("" if len(showing) == 1 else "s")
    return allocations, f"sweep: {shown} shown{where} across {count}"


def _fixed(
    name: str | None, quantity: Decimal, scores: list[VenueScore]
) -> tuple[tuple[Allocation, ...], str]:
    if name is None:
        # FIXED needs a venue; sending it elsewhere would overrule the trader, so refuse.
        return (), "fixed: no venue chosen by the trader"
    chosen = next((s for s in scores if s.venue == name), None)
    if chosen is None:
        return (), f"fixed: {name} chosen by the trader is not a venue of this desk"
    if chosen.excluded:
        return (), f"fixed: {name} chosen by the trader {_clause(chosen.excluded)}"
    return _all_to(name, quantity), f"fixed: {name} chosen by the trader"


def _none_eligible(symbol: str, scores: list[VenueScore]) -> str:
    if not scores:
        return f"no venue can take {symbol}: no venues"
    why = ", ".join(f"{s.venue} {_clause(s.excluded)}" for s in scores)
    return f"no venue can take {symbol}: {why}"


# --- helpers ----------------------------------------------------------------------------------


def _exclusion(venue: VenueCandidate, symbol: str, tried: frozenset[str]) -> str:
    """Why ``venue`` takes no part, or "" if it does; the most lasting reason first."""
    if not venue.lists:
        return f"does not list {symbol}"
    if venue.health is VenueHealth.DOWN:
        return DOWN
    if venue.name in tried:
        return REFUSED
    return ""


def _excluded(venue: VenueCandidate, why: str) -> VenueScore:
    return _venue_score(venue, excluded=why)


def _venue_score(
    venue: VenueCandidate,
    *,
    price_score: float = 0.0,
    liquidity_score: float = 0.0,
    speed_score: float = 0.0,
    reliability_score: float = 0.0,
    total: float = 0.0,
    excluded: str = "",
) -> VenueScore:
    """The venue's inputs as the decision records them, with its scores (or why it has none)."""
    return VenueScore(
        venue=venue.name,
        health=_HEALTH_TEXT[venue.health],
        price=venue.best_price,
        liquidity=venue.liquidity,
        latency_ms=venue.latency_ms,
        success_rate=venue.success_rate,
        price_score=price_score,
        liquidity_score=liquidity_score,
        speed_score=speed_score,
        reliability_score=reliability_score,
        total=total,
        excluded=excluded,
    )


def _best_price(quotes: Sequence[Decimal | None], side: Side) -> Decimal | None:
    """The best quote for the order: the lowest ask for a buy, the highest bid for a sell."""
    shown = [q for q in quotes if q is not None]
    if not shown:
        return None
    return min(shown) if side is Side.BUY else max(shown)


def _rank(score: VenueScore) -> tuple[float, str]:
    return (-score.total, score.venue)


def _with_allocations(
    scores: list[VenueScore], allocations: tuple[Allocation, ...]
) -> tuple[VenueScore, ...]:
    """The scores with each venue's allocation filled in (most venues get none)."""
    if not allocations:
        return tuple(scores)
    given = {a.venue: a.quantity for a in allocations}
    return tuple(
        [
            msgspec.structs.replace(s, allocation=given[s.venue]) if s.venue in given else s
            for s in scores
        ]
    )


def _all_to(venue: str, quantity: Decimal) -> tuple[Allocation, ...]:
    return (Allocation(venue=venue, quantity=quantity),)


def _in_lots(
    quantity: Decimal, lot: Decimal, shares: Sequence[tuple[str, int]]
) -> tuple[Allocation, ...]:
    """``quantity`` in whole lots over ``shares`` (best venue first), zero slices dropped."""
    lots, odd = divmod(quantity, lot)
    counts = largest_remainder(int(lots), [share for _, share in shares])
    amounts = [n * lot for n in counts]
    if odd:
        # Off the lot grid (validation refuses such tickets): the top venue takes the odd part
        # so that the allocations still sum to the quantity.
        amounts[0] += odd
    # No amount is negative (the quantity and the lot are positive), so a truth test drops the
    # zero slices without an int-to-Decimal comparison per venue.
    return tuple(
        [
            Allocation(venue=name, quantity=amount)
            for (name, _), amount in zip(shares, amounts, strict=True)
            if amount
        ]
    )


def _places(score: float) -> float:
    """``score`` to ``SCORE_PLACES`` decimals. 0 and 1, where most price and liquidity scores
    clamp, are there already; round() to places costs more than the rest of a score."""
    return score if score == 0.0 or score == 1.0 else round(score, SCORE_PLACES)


# A venue's latency (p50 of a cached window summary) and success rate change far less often
# than orders arrive, so their rounded scores are remembered rather than worked out per order.
@functools.lru_cache(maxsize=1024)
def _speed_places(latency_ms: float | None) -> float:
    return round(speed_score(latency_ms), SCORE_PLACES)


@functools.lru_cache(maxsize=1024)
def _reliability_places(success_rate: float | None, health: VenueHealth) -> float:
    return round(reliability_score(success_rate, health), SCORE_PLACES)


def _score_units(score: float) -> int:
    """A 4-decimal score as an integer, so that the split's arithmetic is exact."""
    return round(score * _SCORE_UNITS)


def _integer_shares(sizes: Sequence[Decimal]) -> list[int]:
    """Sizes as integers in the same ratios; digits finer than 1e-8 are dropped from the ratio."""
    return [int(size.scaleb(_SIZE_PLACES)) for size in sizes]


def _clause(excluded: str) -> str:
    return "is DOWN" if excluded == DOWN else excluded


def score_text(score: float, threshold: float) -> str:
    """Two decimals, or four when two would print a score under the threshold as equal to it."""
    text = f"{score:.2f}"
    if score < threshold and text == f"{threshold:.2f}":
        return f"{score:.4f}"
    return text


def _quantity_text(quantity: Decimal) -> str:
    """1,200 rather than 1200.00 or 1.2E+3."""
    return f"{quantity.normalize():,f}"
