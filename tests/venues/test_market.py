"""The synthetic market and the default catalog of simulated venues."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from blotter.domain.clock import ManualClock
from blotter.domain.values import AssetClass, Liquidity, OrderType, Side, TimeInForce
from blotter.oms.ports import NewOrderRequest, ReportKind
from blotter.venues.sim.catalog import INSTRUMENTS, REFERENCE_PRICES, VENUES
from blotter.venues.sim.market import SyntheticMarket
from blotter.venues.sim.venue import SimulatedVenue

XNAS = next(p for p in VENUES if p.name == "XNAS")


def _market(seed: int) -> tuple[SimulatedVenue, SyntheticMarket]:
    venue = SimulatedVenue(XNAS, ManualClock(), seed=seed)
    return venue, SyntheticMarket(venue, "AAPL", REFERENCE_PRICES["AAPL"], seed=seed)


def test_the_market_keeps_both_sides_stocked_uncrossed_around_a_wandering_mid() -> None:
    venue, market = _market(seed=8)
    start = market.mid
    mids = []
    for _ in range(300):
        market.step()
        book = venue.book("AAPL")
        bid, ask = book.best(Side.BUY), book.best(Side.SELL)
        assert bid is not None
        assert ask is not None
        assert bid < ask
        mids.append(market.mid)
    assert len(set(mids)) > 20  # the mid really moves
    assert min(mids) != max(mids)
    assert market.mid != start or len(set(mids)) > 1


def test_the_same_seed_gives_the_same_market() -> None:
    books = []
    for _ in range(2):
        venue, market = _market(seed=8)
        for _ in range(100):
            market.step()
        book = venue.book("AAPL")
        books.append((market.mid, book.depth(Side.BUY, 10), book.depth(Side.SELL, 10)))
    assert books[0] == books[1]


def _resting_buy(client_order_id: str, price: Decimal) -> NewOrderRequest:
    return NewOrderRequest(
        client_order_id=client_order_id,
        account="ACC-1",
        instrument="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(5),
        limit_price=price,
        time_in_force=TimeInForce.GTC,
    )


async def test_a_client_order_far_from_the_mid_stays_resting_with_no_quote_before_it() -> None:
    """As on the first step after a restart: the book holds only the restored orders."""
    for seed in range(20):
        venue, market = _market(seed=seed)
        await venue.connect()
        far = (market.mid * Decimal("0.9")).quantize(Decimal("0.01"))
        await venue.submit(_resting_buy("FAR", far))
        await venue.heartbeat()  # the order rests in a book that has nothing else yet
        for _ in range(50):
            market.step()
        status = await venue.status("FAR")
        assert status is not None
        assert status.filled == 0, f"seed {seed}: filled 10 % below the mid"
        await venue.close()


async def test_a_resting_client_order_gets_filled_by_other_participants() -> None:
    venue, market = _market(seed=8)
    await venue.connect()
    market.step()
    best_bid = venue.book("AAPL").best(Side.BUY)
    assert best_bid is not None
    await venue.submit(_resting_buy("C-1", best_bid + Decimal("0.01")))
    await venue.heartbeat()  # behind the order on the wire: the order rests in the book now
    assert venue.open_order_ids() == {"C-1"}
    for _ in range(200):
        market.step()
    status = await venue.status("C-1")
    assert status is not None
    assert status.filled > 0
    stream = venue.reports()
    reports = [await asyncio.wait_for(anext(stream), 1) for _ in range(2)]
    assert [r.kind for r in reports] == [ReportKind.ACKNOWLEDGED, ReportKind.FILL]
    assert reports[1].liquidity is Liquidity.MAKER  # another participant took it
    await venue.close()


def test_the_default_desk_has_four_unlike_venues_and_eleven_instruments() -> None:
    assert len(VENUES) >= 4
    assert len(INSTRUMENTS) >= 10
    assert {i.asset_class for i in INSTRUMENTS} == {AssetClass.EQUITY, AssetClass.CRYPTO}
    profiles = {(p.latency_ms, p.taker_fee_bps, p.reject_rate) for p in VENUES}
    assert len(profiles) == len(VENUES)
    listed = {i.symbol for p in VENUES for i in p.instruments}
    assert listed == {i.symbol for i in INSTRUMENTS} == set(REFERENCE_PRICES)
    for instrument in INSTRUMENTS:
        instrument.check_price(REFERENCE_PRICES[instrument.symbol], field="reference price")


async def test_a_client_order_through_the_mid_is_taken_as_a_bargain() -> None:
    """A bid above the mid: no participant quotes an ask under it, so only a taker fills it."""
    for seed in range(5):
        venue, market = _market(seed=seed)
        await venue.connect()  # an empty book: the bid rests, and no ask is quoted under it
        through = (market.mid * Decimal("1.05")).quantize(Decimal("0.01"))
        await venue.submit(_resting_buy("THROUGH", through))
        await venue.heartbeat()
        for _ in range(200):
            market.step()
        status = await venue.status("THROUGH")
        assert status is not None
        assert status.filled > 0, f"seed {seed}: a bid 5 % over the mid never traded"
        await venue.close()
