"""The simulated venues' journal: their changes, a turn of the loop at a time, read back."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from blotter.domain.clock import ManualClock
from blotter.domain.values import Side
from blotter.domain.values import TimeInForce as TIF
from blotter.runtime.venue_journal import (
    JournalHead,
    JournalUnreadable,
    VenueJournal,
    read_journal,
)
from blotter.venues.sim.venue import SimulatedVenue
from tests.venues.builders import PROFILE, order

HEAD = JournalHead(log="e1", follows="records-1")


async def a_venue() -> SimulatedVenue:
    venue = SimulatedVenue(PROFILE, ManualClock(), seed=1)
    venue.add_liquidity("AAPL", Side.SELL, Decimal("10.01"), Decimal(30))
    await venue.connect()
    return venue


async def test_each_turn_s_changes_are_written_and_read_back_into_the_records(
    tmp_path: Path,
) -> None:
    venue = await a_venue()
    start = venue.records()
    journal = VenueJournal({"XNAS": venue})
    path = tmp_path / "venues.journal"
    journal.open(path, HEAD)
    await venue.submit(order("C-1", Side.BUY, 10, "10.00", tif=TIF.GTC))
    await venue.heartbeat()  # arrived: written at the end of that turn, without a flush
    await asyncio.sleep(0)
    assert len(read_journal(path, HEAD)) == 1
    await venue.submit(order("C-2", Side.BUY, 20, "10.01"))
    await venue.heartbeat()
    journal.close()
    frames = read_journal(path, HEAD)
    assert len(frames) == 2
    records = start.merged(frame["XNAS"] for frame in frames)
    assert msgspec.json.encode(records) == msgspec.json.encode(venue.records())


async def test_a_journal_of_other_records_or_cut_short_gives_what_it_holds_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    venue = await a_venue()
    journal = VenueJournal({"XNAS": venue})
    path = tmp_path / "venues.journal"
    journal.open(path, HEAD)
    await venue.submit(order("C-1", Side.BUY, 10, "10.00", tif=TIF.GTC))
    await venue.heartbeat()
    journal.close()
    assert read_journal(tmp_path / "none.journal", HEAD) == []
    with caplog.at_level(logging.WARNING):
        assert read_journal(path, JournalHead(log="e1", follows="records-2")) == []
        assert read_journal(path, JournalHead(log="e2", follows="records-1")) == []
    assert caplog.text.count("follows other records (written before them); not taken") == 2
    whole = path.read_bytes()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        path.write_bytes(whole[:-3])  # the process killed in the middle of the last frame
        assert read_journal(path, HEAD) == []
        path.write_bytes(whole + b"\x00\x00\x01")
        assert [set(frame) for frame in read_journal(path, HEAD)] == [{"XNAS"}]
    assert "its last frame is cut short" in caplog.text
    assert "3 bytes of its length" in caplog.text


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda whole: b"", "it has no head"),
        (lambda whole: b"\x00\x00\x00\x03abc" + whole[7:], "it has no head"),
        (lambda whole: whole + b"\x00\x00\x00\x02\xc1\xc1", "MessagePack"),
    ],
)
async def test_a_journal_no_kill_could_leave_is_refused(
    tmp_path: Path, damage: Callable[[bytes], bytes], why: str
) -> None:
    venue = await a_venue()
    journal = VenueJournal({"XNAS": venue})
    path = tmp_path / "venues.journal"
    journal.open(path, HEAD)
    journal.close()
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(JournalUnreadable, match=why):
        read_journal(path, HEAD)


async def test_a_journal_that_cannot_be_written_is_left_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    venue = await a_venue()
    journal = VenueJournal({"XNAS": venue})
    journal.open(tmp_path / "venues.journal", HEAD)

    def full(_fd: int, _data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with caplog.at_level(logging.WARNING):
        await venue.submit(order("C-1", Side.BUY, 10, "10.00", tif=TIF.GTC))
        await venue.heartbeat()
        await asyncio.sleep(0)
    assert "journal cannot be written (No space left on device)" in caplog.text
    await venue.submit(order("C-2", Side.BUY, 10, "10.00", tif=TIF.GTC))
    await venue.heartbeat()
    assert venue.changes() is None  # no longer noted: nothing piles up unwritten
    journal.close()
