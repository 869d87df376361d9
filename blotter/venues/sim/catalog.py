"""The default simulated desk: instruments across equities and crypto, four unlike venues."""

from __future__ import annotations

from decimal import Decimal

from blotter.domain.values import AssetClass, Instrument
from blotter.venues.sim.venue import VenueProfile

D = Decimal


def _equity(symbol: str) -> Instrument:
    return Instrument(
        symbol=symbol,
        asset_class=AssetClass.EQUITY,
        tick_size=D("0.01"),
        lot_size=D(1),
        currency="USD",
    )


def _crypto(symbol: str, tick: str, lot: str) -> Instrument:
    return Instrument(
        symbol=symbol,
        asset_class=AssetClass.CRYPTO,
        tick_size=D(tick),
        lot_size=D(lot),
        currency="USD",
    )


EQUITIES = tuple(_equity(s) for s in ("AAPL", "MSFT", "NVDA", "AMZN", "JPM", "XOM", "KO", "TSLA"))
CRYPTO = (
    _crypto("BTC-USD", "0.5", "0.0001"),
    _crypto("ETH-USD", "0.05", "0.001"),
    _crypto("SOL-USD", "0.01", "0.01"),
)
INSTRUMENTS = EQUITIES + CRYPTO

# Reference prices the synthetic markets start from.
REFERENCE_PRICES = {
    "AAPL": D("187.50"),
    "MSFT": D("412.30"),
    "NVDA": D("121.80"),
    "AMZN": D("178.20"),
    "JPM": D("198.40"),
    "XOM": D("113.60"),
    "KO": D("61.90"),
    "TSLA": D("244.70"),
    "BTC-USD": D("64000.0"),
    "ETH-USD": D("3150.00"),
    "SOL-USD": D("145.20"),
}

# A fast lit exchange that never drops, a cheap but slower one that drops now and then, a
# dark-ish venue that rejects more and whose connection is flaky, and a crypto venue whose rare
# drops come with long outages. The two that drop cancel our resting orders when they do
# (cancel on disconnect), so the OMS routes that quantity elsewhere at once.
VENUES = (
    VenueProfile(
        name="XNAS",
        instruments=EQUITIES,
        maker_fee_bps=D("-0.20"),
        taker_fee_bps=D("0.30"),
        latency_ms=0.4,
        latency_jitter_ms=0.1,
    ),
    VenueProfile(
        name="ARCX",
        instruments=EQUITIES,
        maker_fee_bps=D("-0.10"),
        taker_fee_bps=D("0.20"),
        latency_ms=1.5,
        latency_jitter_ms=0.6,
        mean_seconds_between_disconnects=3600.0,
        outage_seconds=1.0,
        cancel_on_disconnect=True,
    ),
    VenueProfile(
        name="DRKP",
        instruments=EQUITIES[:5],
        maker_fee_bps=D("0.05"),
        taker_fee_bps=D("0.05"),
        latency_ms=3.0,
        latency_jitter_ms=2.0,
        reject_rate=0.03,
        mean_seconds_between_disconnects=90.0,
        outage_seconds=5.0,
        cancel_on_disconnect=True,
    ),
    VenueProfile(
        name="CBSE",
        instruments=CRYPTO,
        maker_fee_bps=D("1.0"),
        taker_fee_bps=D("4.0"),
        latency_ms=8.0,
        latency_jitter_ms=4.0,
        reject_rate=0.01,
        mean_seconds_between_disconnects=900.0,
        outage_seconds=20.0,
    ),
)
