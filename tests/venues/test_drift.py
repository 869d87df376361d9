"""The demo's back-office errors: seeded, on positions a venue holds, in whole lots."""

from __future__ import annotations

from decimal import Decimal

from blotter.domain.clock import ManualClock
from blotter.domain.values import Side
from blotter.venues.sim.catalog import VENUES
from blotter.venues.sim.drift import LARGE_LOTS, SMALL_LOTS, RandomDrift
from blotter.venues.sim.venue import SimulatedVenue, VenueRecords

D = Decimal


def venues() -> list[SimulatedVenue]:
    held = [SimulatedVenue(profile, ManualClock()) for profile in VENUES]
    held[0].restore(VenueRecords(positions=[("ACC-1", "AAPL", D(100))]))
    held[3].restore(VenueRecords(positions=[("ACC-1", "BTC-USD", D("0.5"))]))
    return held


def test_nothing_drifts_while_no_venue_holds_a_position() -> None:
    empty = [SimulatedVenue(profile, ManualClock()) for profile in VENUES]
    assert RandomDrift(empty, seed=1).step() is None


def test_drifts_fall_on_held_positions_in_whole_lots_small_or_large() -> None:
    held = venues()
    first = RandomDrift(held, seed=3).step()
    drifter = RandomDrift(held, seed=3)
    seen = [drifter.step() for _ in range(40)]
    assert all(d is not None for d in seen)
    sizes = set()
    for drift in seen:
        assert drift is not None
        venue = next(v for v in held if v.name == drift.venue)
        lot = next(i.lot_size for i in venue.profile.instruments if i.symbol == drift.instrument)
        lots = abs(drift.quantity) / lot
        assert lots == lots.to_integral_value()
        small = SMALL_LOTS[0] <= lots <= SMALL_LOTS[1]
        large = LARGE_LOTS[0] <= lots <= LARGE_LOTS[1]
        assert small or large
        sizes.add("small" if small else "large")
        assert (drift.venue, drift.account, drift.instrument) in {
            ("XNAS", "ACC-1", "AAPL"),
            ("CBSE", "ACC-1", "BTC-USD"),
        }
    assert sizes == {"small", "large"}
    assert first == RandomDrift(venues(), seed=3).step()  # the same seed, the same drift


def test_a_drift_shows_in_the_venue_s_record_not_in_its_book() -> None:
    held = venues()
    drift = RandomDrift(held, seed=5).step()
    assert drift is not None
    venue = next(v for v in held if v.name == drift.venue)
    records = {(a, s): q for a, s, q in venue.records().drift}
    assert records == {(drift.account, drift.instrument): drift.quantity}
    assert venue.book(drift.instrument).best(Side.BUY) is None  # nothing traded
