"""The smart router: scores in [0, 1] and monotone, allocations exact in lots, every strategy,
and a decision that explains itself and survives the event codec."""

from __future__ import annotations

import random
from decimal import Decimal

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from blotter.domain.events import OrderCreated, RoutingDecision, decode_payload, encode_payload
from blotter.domain.values import AssetClass, Instrument, InvalidValue, OrderType, Side
from blotter.domain.values import RoutingStrategy as RS
from blotter.domain.workflows import VenueHealth
from blotter.oms.routing import (
    Allocation,
    RoutePlan,
    Router,
    RouterWeights,
    SmartRouter,
    VenueCandidate,
)
from blotter.oms.routing.smart import (
    largest_remainder,
    liquidity_score,
    price_score,
    price_span,
    reliability_score,
    speed_score,
)

D = Decimal
UP, DEGRADED, DOWN = VenueHealth.UP, VenueHealth.DEGRADED, VenueHealth.DOWN

AAPL = Instrument(
    symbol="AAPL", asset_class=AssetClass.EQUITY, tick_size=D("0.01"), lot_size=D(1), currency="USD"
)
BTC = Instrument(
    symbol="BTC-USD",
    asset_class=AssetClass.CRYPTO,
    tick_size=D("0.5"),
    lot_size=D("0.0001"),
    currency="USD",
)
INSTRUMENTS = {"AAPL": AAPL, "BTC-USD": BTC}
ROUTER = SmartRouter(INSTRUMENTS)
AS_PORT: Router = ROUTER  # mypy: it fits the port the manager calls
LIQUIDITY_ONLY = SmartRouter(
    INSTRUMENTS, weights=RouterWeights(price=0, liquidity=1, speed=0, reliability=0)
)
THOUSAND = D(1000)
NAMES = ("XNAS", "ARCX", "DRKP", "CBSE", "BATS", "IEXG")


def order(
    strategy: RS = RS.SPLIT,
    *,
    venue: str | None = None,
    side: Side = Side.BUY,
    limit: str | None = "101.25",
    quantity: Decimal = THOUSAND,
    instrument: str = "AAPL",
) -> OrderCreated:
    return OrderCreated(
        order_id="O-1",
        client_order_id="T-1",
        account="ACC-1",
        instrument=instrument,
        side=side,
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        quantity=quantity,
        limit_price=None if limit is None else D(limit),
        venue=venue,
        strategy=strategy,
    )


def venue(
    name: str,
    price: str | None = None,
    size: int | str = 0,
    latency: float | None = None,
    rate: float | None = None,
    health: VenueHealth = UP,
    *,
    lists: bool = True,
) -> VenueCandidate:
    return VenueCandidate(
        name=name,
        health=health,
        lists=lists,
        best_price=None if price is None else D(price),
        liquidity=D(size),
        latency_ms=latency,
        success_rate=rate,
    )


def route(
    ticket: OrderCreated,
    venues: list[VenueCandidate],
    tried: frozenset[str] = frozenset(),
    router: SmartRouter = ROUTER,
) -> RoutePlan:
    return router.route(ticket, ticket.quantity, venues, tried)


def given_out(plan: RoutePlan) -> dict[str, Decimal]:
    return {a.venue: a.quantity for a in plan.allocations}


def decision(plan: RoutePlan) -> RoutingDecision:
    assert plan.decision is not None
    return plan.decision


# A realistic book: XNAS best and fast, ARCX two ticks off, DRKP degraded, CBSE does not list.
DESK = [
    venue("XNAS", "101.20", 500, 0.4, 0.99),
    venue("ARCX", "101.22", 400, 1.5, 0.97),
    venue("DRKP", "101.21", 300, 3.0, 0.90, DEGRADED),
    venue("CBSE", lists=False),
]


# --- component scores ---------------------------------------------------------------------------


def test_the_price_score_tells_ticks_apart_at_the_scale_of_real_quotes() -> None:
    # 5 bps of 187.50 (0.09375) is wider than 5 ticks (0.05): one tick off scores about 0.89.
    assert price_span(D("187.50"), D("0.01")) == D("0.09375")
    assert price_score(D("187.51"), D("187.50"), Side.BUY, D("0.01")) == pytest.approx(0.8933, 1e-3)
    # On a cheap stock the tick floor keeps one tick off from scoring 0.
    assert price_span(D("61.90"), D("0.01")) == D("0.05")
    assert price_score(D("61.91"), D("61.90"), Side.BUY, D("0.01")) == pytest.approx(0.8)
    # A sell hits the bid: a lower bid is worse.
    assert price_score(D("61.89"), D("61.90"), Side.SELL, D("0.01")) == pytest.approx(0.8)
    assert price_score(D("61.91"), D("61.90"), Side.SELL, D("0.01")) == 1.0
    assert price_score(D("62.50"), D("61.90"), Side.BUY, D("0.01")) == 0.0
    assert price_score(None, D("61.90"), Side.BUY, D("0.01")) == 0.0


def test_the_other_components_and_their_neutral_values() -> None:
    assert liquidity_score(D(250), D(1000)) == 0.25
    assert liquidity_score(D(5000), D(1000)) == 1.0
    assert speed_score(2.0) == 0.5
    assert speed_score(0.0) == 1.0
    assert speed_score(None) == 0.5
    assert reliability_score(0.98, UP) == 0.98
    assert reliability_score(0.98, DEGRADED) == 0.49
    assert reliability_score(None, UP) == 0.5


def test_the_price_and_liquidity_scores_at_the_edges_of_their_clamps() -> None:
    # The span of 61.90 is 0.05: a price exactly that much worse scores 0, one tick less does not.
    assert price_score(D("61.95"), D("61.90"), Side.BUY, D("0.01")) == 0.0
    assert price_score(D("61.94"), D("61.90"), Side.BUY, D("0.01")) == pytest.approx(0.2)
    assert price_score(D("61.90"), D("61.90"), Side.BUY, D("0.01")) == 1.0
    # Exactly the quantity shown is all of it; a hair less is not.
    assert liquidity_score(D(1000), D(1000)) == 1.0
    assert liquidity_score(D("999.99"), D(1000)) == pytest.approx(0.99999)
    assert liquidity_score(D(0), D(1000)) == 0.0


prices = st.integers(10_000, 10_400).map(lambda n: D(n).scaleb(-2))
sizes = st.integers(0, 5_000).map(D)
latencies = st.floats(0, 1_000, allow_nan=False)
rates = st.floats(0, 1, allow_nan=False)


@given(prices, prices, prices, st.sampled_from(Side))
def test_price_score_is_in_range_and_better_prices_never_score_less(
    a: Decimal, b: Decimal, best: Decimal, side: Side
) -> None:
    better, worse = (min(a, b), max(a, b)) if side is Side.BUY else (max(a, b), min(a, b))
    high = price_score(better, best, side, AAPL.tick_size)
    low = price_score(worse, best, side, AAPL.tick_size)
    assert 0.0 <= low <= high <= 1.0


@given(sizes, sizes, st.integers(1, 5_000).map(D))
def test_liquidity_score_is_in_range_and_more_size_never_scores_less(
    a: Decimal, b: Decimal, remaining: Decimal
) -> None:
    assert 0.0 <= liquidity_score(min(a, b), remaining) <= liquidity_score(max(a, b), remaining)
    assert liquidity_score(max(a, b), remaining) <= 1.0


@given(latencies, latencies)
def test_speed_score_is_in_range_and_a_faster_venue_never_scores_less(a: float, b: float) -> None:
    assert 0.0 <= speed_score(max(a, b)) <= speed_score(min(a, b)) <= 1.0


@given(rates, rates)
def test_reliability_is_in_range_and_more_success_or_a_healthier_breaker_never_scores_less(
    a: float, b: float
) -> None:
    low, high = min(a, b), max(a, b)
    assert 0.0 <= reliability_score(low, UP) <= reliability_score(high, UP) <= 1.0
    assert reliability_score(high, DEGRADED) <= reliability_score(high, UP)
    assert reliability_score(high, DOWN) == 0.0


# --- routing properties ----------------------------------------------------------------------


@st.composite
def candidates(draw: st.DrawFn) -> list[VenueCandidate]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=0, max_size=6, unique=True))
    return [
        VenueCandidate(
            name=name,
            health=draw(st.sampled_from(VenueHealth)),
            lists=draw(st.booleans()),
            best_price=draw(st.none() | prices),
            liquidity=draw(sizes),
            latency_ms=draw(st.none() | latencies),
            success_rate=draw(st.none() | rates),
        )
        for name in names
    ]


@st.composite
def situations(draw: st.DrawFn) -> tuple[OrderCreated, list[VenueCandidate], frozenset[str]]:
    venues = draw(candidates())
    instrument = draw(st.sampled_from((AAPL, BTC)))
    lots = draw(st.integers(1, 2_000))
    fixed = draw(st.none() | st.sampled_from(NAMES))
    ticket = order(
        draw(st.sampled_from((RS.SPLIT, RS.BEST, RS.SWEEP))),
        venue=fixed,
        side=draw(st.sampled_from(Side)),
        limit=draw(st.none() | st.just("101.25")),
        quantity=lots * instrument.lot_size,
        instrument=instrument.symbol,
    )
    tried = frozenset(draw(st.lists(st.sampled_from(NAMES), max_size=3)))
    return ticket, venues, tried


@given(situations())
def test_allocations_sum_to_the_quantity_in_lots_and_only_to_venues_that_can_take_it(
    situation: tuple[OrderCreated, list[VenueCandidate], frozenset[str]],
) -> None:
    ticket, venues, tried = situation
    plan = route(ticket, venues, tried)
    lot = INSTRUMENTS[ticket.instrument].lot_size
    eligible = {v.name for v in venues if v.lists and v.health is not DOWN and v.name not in tried}
    if plan.allocations:
        assert sum(a.quantity for a in plan.allocations) == ticket.quantity
        assert len(plan.allocations) <= ticket.quantity / lot
    assert all(a.quantity > 0 and a.quantity % lot == 0 for a in plan.allocations)
    assert {a.venue for a in plan.allocations} <= eligible
    assert len({a.venue for a in plan.allocations}) == len(plan.allocations)
    # Something that can take it always gets it, unless the trader fixed a venue that cannot.
    if ticket.venue is None:
        assert bool(plan.allocations) == bool(eligible)
    else:
        assert bool(plan.allocations) == (ticket.venue in eligible)
    for score in decision(plan).venues:
        parts = (score.price_score, score.liquidity_score, score.speed_score)
        assert all(0.0 <= s <= 1.0 for s in (*parts, score.reliability_score, score.total))
        assert score.allocation == given_out(plan).get(score.venue, 0)
        assert bool(score.excluded) == (score.venue not in eligible)
        if score.excluded:
            assert score.total == 0.0


@given(situations(), st.randoms(use_true_random=False))
def test_the_same_inputs_in_any_order_give_the_same_plan(
    situation: tuple[OrderCreated, list[VenueCandidate], frozenset[str]], rng: random.Random
) -> None:
    ticket, venues, tried = situation
    shuffled = list(venues)
    rng.shuffle(shuffled)
    assert route(ticket, venues, tried) == route(ticket, venues, tried)
    assert route(ticket, shuffled, tried).allocations == route(ticket, venues, tried).allocations


@given(st.integers(0, 10_000), st.lists(st.integers(0, 10_000), min_size=1, max_size=6))
def test_largest_remainder_is_exact_and_near_proportional(lots: int, shares: list[int]) -> None:
    counts = largest_remainder(lots, shares)
    assert sum(counts) == lots
    total = sum(shares) or len(shares)
    weights = shares if sum(shares) else [1] * len(shares)
    assert all(abs(c - lots * w / total) < 1 for c, w in zip(counts, weights, strict=True))


def improved(candidate: VenueCandidate, side: Side, change: str, amount: int) -> VenueCandidate:
    """The same venue better in one input only."""
    replace = msgspec.structs.replace
    if change == "price":
        price = candidate.best_price or D("104.00")
        step = D(amount).scaleb(-2)
        return replace(candidate, best_price=price - step if side is Side.BUY else price + step)
    if change == "liquidity":
        return replace(candidate, liquidity=candidate.liquidity + amount)
    if change == "latency":
        # Unknown scores as the reference latency does, so improving on it starts from there.
        latency = 2.0 if candidate.latency_ms is None else candidate.latency_ms
        return replace(candidate, latency_ms=max(0.0, latency - amount / 10))
    if change == "success":
        rate = 0.5 if candidate.success_rate is None else candidate.success_rate
        return replace(candidate, success_rate=min(1.0, rate + amount / 100))
    return replace(candidate, health=UP)


@given(
    situations(),
    st.integers(0, 5),
    st.sampled_from(("price", "liquidity", "latency", "success", "health")),
    st.integers(1, 300),
)
def test_improving_a_venues_own_input_never_lowers_its_own_scores(
    situation: tuple[OrderCreated, list[VenueCandidate], frozenset[str]],
    index: int,
    change: str,
    amount: int,
) -> None:
    ticket, venues, tried = situation
    assume(index < len(venues))
    better = list(venues)
    better[index] = improved(venues[index], ticket.side, change, amount)
    before = decision(route(ticket, venues, tried)).venues[index]
    after = decision(route(ticket, better, tried)).venues[index]
    assert after.price_score >= before.price_score
    assert after.liquidity_score >= before.liquidity_score
    assert after.speed_score >= before.speed_score
    assert after.reliability_score >= before.reliability_score
    assert after.total >= before.total


# --- strategies --------------------------------------------------------------------------------


def test_best_sends_it_all_to_the_top_score() -> None:
    plan = route(order(RS.BEST), DESK)
    assert given_out(plan) == {"XNAS": D(1000)}
    assert plan.reason == "best: XNAS scores 0.82"
    assert decision(plan).strategy is RS.BEST


def test_split_sends_it_all_to_the_best_venue_when_its_score_reaches_the_threshold() -> None:
    venues = [venue("XNAS", size=80), venue("ARCX", size=60), venue("DRKP", size=50)]
    plan = route(order(quantity=D(100)), venues, router=LIQUIDITY_ONLY)
    assert given_out(plan) == {"XNAS": D(100)}
    assert plan.reason == "split: best score 0.80 >= 0.80, all to XNAS"


def test_split_spreads_over_the_top_three_by_score_just_under_the_threshold() -> None:
    venues = [
        venue("DRKP", size=10),
        venue("XNAS", size=79),
        venue("ARCX", size=60),
        venue("CBSE", size=50),
    ]
    plan = route(order(quantity=D(100)), venues, router=LIQUIDITY_ONLY)
    # 100 lots in the ratio 79 : 60 : 50 is 41.8, 31.7, 26.5: the two largest remainders round up.
    assert plan.allocations == (
        Allocation(venue="XNAS", quantity=D(42)),
        Allocation(venue="ARCX", quantity=D(32)),
        Allocation(venue="CBSE", quantity=D(26)),
    )
    assert plan.reason == "split: best score 0.79 < 0.80, across XNAS, ARCX, CBSE"
    # A hair under prints enough digits not to read as equal.
    hair = [venue("XNAS", size="79.99"), venue("ARCX", size=60)]
    assert route(order(quantity=D(100)), hair, router=LIQUIDITY_ONLY).reason == (
        "split: best score 0.7999 < 0.80, across XNAS, ARCX"
    )


def test_split_never_cuts_below_a_lot_so_two_lots_reach_two_venues_at_most() -> None:
    venues = [venue("XNAS", size=1), venue("ARCX", size=1), venue("CBSE", size=1)]
    plan = route(order(quantity=D(2)), venues, router=LIQUIDITY_ONLY)
    assert given_out(plan) == {"ARCX": D(1), "CBSE": D(1)}  # equal scores: by venue name
    assert plan.reason == "split: best score 0.50 < 0.80, across ARCX, CBSE"


def test_split_handles_fractional_lots() -> None:
    venues = [venue("XNAS"), venue("ARCX"), venue("CBSE")]
    plan = route(order(quantity=D("0.0005"), instrument="BTC-USD"), venues)
    assert given_out(plan) == {"ARCX": D("0.0002"), "CBSE": D("0.0002"), "XNAS": D("0.0001")}


def test_sweep_follows_the_size_each_venue_shows_at_or_better_than_the_limit() -> None:
    venues = [*DESK, venue("BATS", "101.30", 0, 0.5, 0.99)]
    plan = route(order(RS.SWEEP), venues)
    assert given_out(plan) == {"XNAS": D(417), "ARCX": D(333), "DRKP": D(250)}
    assert plan.reason == "sweep: 1,200 shown at or better than 101.25 across 3 venues"
    market = route(order(RS.SWEEP, limit=None), venues)
    assert market.reason == "sweep: 1,200 shown across 3 venues"


def test_sweep_with_no_size_anywhere_falls_back_to_best_and_says_so() -> None:
    venues = [venue("XNAS", latency=0.4, rate=1.0), venue("ARCX", latency=1.5, rate=1.0)]
    plan = route(order(RS.SWEEP), venues)
    assert given_out(plan) == {"XNAS": D(1000)}
    assert plan.reason == (
        "sweep: no size shown at or better than 101.25, so best: XNAS scores 0.27"
    )


def test_a_limit_order_on_an_empty_book_still_routes_on_speed_and_reliability() -> None:
    venues = [venue("ARCX", latency=1.5, rate=0.97), venue("XNAS", latency=0.4, rate=0.99)]
    assert given_out(route(order(RS.BEST), venues)) == {"XNAS": D(1000)}
    split = route(order(RS.SPLIT), venues)
    assert sum(given_out(split).values()) == D(1000)
    assert split.reason.startswith("split: best score 0.27 < 0.80, across XNAS, ARCX")


def test_a_named_venue_means_fixed_whatever_the_strategy_says() -> None:
    plan = route(order(RS.SWEEP, venue="ARCX"), DESK)
    assert given_out(plan) == {"ARCX": D(1000)}
    assert plan.reason == "fixed: ARCX chosen by the trader"
    assert decision(plan).strategy is RS.FIXED


@pytest.mark.parametrize(
    ("name", "tried", "reason"),
    [
        ("DRKP", frozenset(), "fixed: DRKP chosen by the trader is DOWN"),
        ("CBSE", frozenset(), "fixed: CBSE chosen by the trader does not list AAPL"),
        ("XNAS", frozenset({"XNAS"}), "fixed: XNAS chosen by the trader refused this order"),
        ("IEXG", frozenset(), "fixed: IEXG chosen by the trader is not a venue of this desk"),
    ],
)
def test_a_fixed_venue_that_cannot_take_the_order_is_refused_with_why(
    name: str, tried: frozenset[str], reason: str
) -> None:
    venues = [*DESK[:2], venue("DRKP", "101.21", 300, health=DOWN), DESK[3]]
    plan = route(order(venue=name), venues, tried)
    assert plan.allocations == ()
    assert plan.reason == reason


def test_excluded_venues_are_listed_with_why_and_zero_scores() -> None:
    venues = [*DESK[:2], venue("DRKP", "101.19", 900, 0.1, 1.0, DOWN), DESK[3]]
    plan = route(order(RS.BEST), venues, frozenset({"XNAS"}))
    assert given_out(plan) == {"ARCX": D(1000)}
    scores = {s.venue: s for s in decision(plan).venues}
    assert [s.venue for s in decision(plan).venues] == ["XNAS", "ARCX", "DRKP", "CBSE"]
    assert scores["XNAS"].excluded == "refused this order"
    assert scores["DRKP"].excluded == "DOWN"
    assert scores["CBSE"].excluded == "does not list AAPL"
    for name in ("XNAS", "DRKP", "CBSE"):
        assert scores[name].total == scores[name].price_score == 0.0
    # Its inputs are kept, and an excluded venue's price does not move the best price.
    assert scores["DRKP"].price == D("101.19")
    assert scores["ARCX"].price_score == 1.0


def test_with_nothing_eligible_the_reason_names_why_for_each_venue() -> None:
    venues = [venue("XNAS", health=DOWN), venue("ARCX"), venue("CBSE", lists=False)]
    plan = route(order(), venues, frozenset({"ARCX"}))
    assert plan.allocations == ()
    assert plan.reason == (
        "no venue can take AAPL: XNAS is DOWN, ARCX refused this order, CBSE does not list AAPL"
    )
    assert route(order(), []).reason == "no venue can take AAPL: no venues"
    unknown = route(order(instrument="ZZZZ"), DESK)
    assert unknown.allocations == ()
    assert unknown.reason == "no venue can take ZZZZ: unknown instrument ZZZZ"


def test_a_sell_scores_venues_on_their_bids() -> None:
    venues = [venue("XNAS", "101.20", 500), venue("ARCX", "101.22", 500)]
    plan = route(order(RS.BEST, side=Side.SELL, limit="101.00"), venues)
    assert given_out(plan) == {"ARCX": D(1000)}


# --- weights and configuration -----------------------------------------------------------------


def test_weights_are_configurable_and_normalized() -> None:
    # XNAS has the better price, ARCX the faster round trip; the weights decide.
    venues = [venue("XNAS", "101.20", latency=9.0), venue("ARCX", "101.22", latency=0.2)]
    assert given_out(route(order(RS.BEST), venues)) == {"XNAS": D(1000)}
    speed_only = SmartRouter(
        INSTRUMENTS, weights=RouterWeights(price=0, liquidity=0, speed=5, reliability=0)
    )
    assert speed_only.weights == (0.0, 0.0, 1.0, 0.0)
    assert given_out(route(order(RS.BEST), venues, router=speed_only)) == {"ARCX": D(1000)}
    price_only = SmartRouter(
        INSTRUMENTS, weights=RouterWeights(price=2, liquidity=0, speed=0, reliability=0)
    )
    assert given_out(route(order(RS.BEST), venues, router=price_only)) == {"XNAS": D(1000)}
    assert ROUTER.weights == pytest.approx((0.4, 0.3, 0.2, 0.1))
    assert decision(route(order(), DESK, router=speed_only)).weights == (0.0, 0.0, 1.0, 0.0)


def test_weights_decode_from_config_and_are_validated() -> None:
    weights = msgspec.convert(
        {"price": 4, "liquidity": 3, "speed": 2, "reliability": 1}, RouterWeights
    )
    assert weights.normalized().as_tuple() == pytest.approx((0.4, 0.3, 0.2, 0.1))
    for bad in ({"price": -0.1}, {"speed": float("nan")}, {"speed": float("inf")}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, RouterWeights)
    with pytest.raises(InvalidValue, match="at least one positive weight"):
        RouterWeights(price=0, liquidity=0, speed=0, reliability=0)
    with pytest.raises(InvalidValue, match="price"):
        RouterWeights(price=-1)


def test_the_split_threshold_and_count_are_configurable_and_validated() -> None:
    venues = [venue("XNAS", size=90), venue("ARCX", size=60), venue("CBSE", size=50)]
    strict = SmartRouter(
        INSTRUMENTS,
        weights=RouterWeights(price=0, liquidity=1, speed=0, reliability=0),
        split_threshold=0.95,
        split_count=2,
    )
    plan = route(order(quantity=D(100)), venues, router=strict)
    assert set(given_out(plan)) == {"XNAS", "ARCX"}
    assert plan.reason == "split: best score 0.90 < 0.95, across XNAS, ARCX"
    with pytest.raises(InvalidValue):
        SmartRouter(INSTRUMENTS, split_threshold=1.5)
    with pytest.raises(InvalidValue):
        SmartRouter(INSTRUMENTS, split_count=0)


# --- the decision ------------------------------------------------------------------------------


def test_the_decision_carries_every_input_and_score_and_round_trips_through_the_codec() -> None:
    plan = route(order(RS.SWEEP), DESK, frozenset({"ARCX"}))
    made = decision(plan)
    assert made.reason == plan.reason
    assert made.quantity == D(1000)
    xnas = made.venues[0]
    assert (xnas.price, xnas.liquidity, xnas.latency_ms, xnas.success_rate) == (
        D("101.20"),
        D(500),
        0.4,
        0.99,
    )
    assert xnas.health == "UP"
    assert xnas.allocation == given_out(plan)["XNAS"]
    data = encode_payload(made)
    assert decode_payload("RoutingDecision", RoutingDecision.SCHEMA_VERSION, data) == made


def test_odd_inputs_still_give_a_plan_that_sums_or_says_why_not() -> None:
    venues = [venue("XNAS", size=1), venue("ARCX", size=1), venue("CBSE", size=1)]
    # Off the lot grid (validation refuses it): the odd part rides with the top venue.
    odd = LIQUIDITY_ONLY.route(order(quantity=D("2.5")), D("2.5"), venues, frozenset())
    assert given_out(odd) == {"ARCX": D("1.5"), "CBSE": D(1)}
    nothing = ROUTER.route(order(), D(0), venues, frozenset())
    assert (nothing.allocations, nothing.reason) == ((), "nothing to route: quantity 0")
    unnamed = route(order(RS.FIXED), venues)
    assert (unnamed.allocations, unnamed.reason) == ((), "fixed: no venue chosen by the trader")


@pytest.mark.parametrize(
    ("quantity", "venues", "reason"),
    [
        # 130 x 101.25 = 13,162.50: two slices of 5,000, not three
        (D(130), ["XNAS", "ARCX"], "across XNAS, ARCX (slices of 5,000 or more)"),
        # 40 x 101.25 = 4,050: not even one slice's worth, so all of it to the best
        (D(40), ["XNAS"], "all to XNAS (split by score, a slice would be under 5,000)"),
        # 110 x 101.25 = 11,137.50 would make two, but shared by score ARCX's 47 are 4,758.75
        (D(110), ["XNAS"], "all to XNAS (split by score, a slice would be under 5,000)"),
        # 200 x 101.25 = 20,250: room for three
        (D(200), ["XNAS", "ARCX", "CBSE"], "across XNAS, ARCX, CBSE"),
    ],
)
def test_a_split_makes_no_slice_worth_less_than_the_minimum(
    quantity: Decimal, venues: list[str], reason: str
) -> None:
    router = SmartRouter(
        INSTRUMENTS,
        weights=RouterWeights(price=0, liquidity=1, speed=0, reliability=0),
        min_slice_notional=D(5000),
    )
    # every venue shows under 80% of the order: the best scores under the threshold
    shown = [
        venue("XNAS", size=str(quantity * D("0.79"))),
        venue("ARCX", size=str(quantity * D("0.6"))),
        venue("CBSE", size=str(quantity * D("0.5"))),
    ]
    plan = route(order(quantity=quantity), shown, router=router)
    assert [a.venue for a in plan.allocations] == venues
    assert sum(a.quantity for a in plan.allocations) == quantity
    if len(plan.allocations) > 1:
        assert all(a.quantity * D("101.25") >= 5000 for a in plan.allocations)
    assert plan.reason.endswith(reason)


def test_the_minimum_slice_must_not_be_negative() -> None:
    with pytest.raises(InvalidValue, match="min_slice_notional"):
        SmartRouter(INSTRUMENTS, min_slice_notional=D(-1))
