"""The simulated venues' journal: what changes in their records, written as it changes.

A real venue keeps its records whatever happens to its clients; the simulated ones live in the
desk's process. Their whole records are written when a session starts and at its close; in
between, each turn of the event loop's changes are appended here, so a desk killed in the
middle of a session finds its venues as they were: no order the OMS heard of is forgotten, no
fill taken back. A turn's changes reach the file before any report of them reaches the OMS,
which the venues send on later turns. The file is written, not synced: it survives the
process, not the machine.

The file is a head (the log and the records it follows) and frames, each a length and a
MessagePack map of venue name to the records that changed (``SimulatedVenue.changes``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import msgspec

from blotter.venues.sim.venue import SimulatedVenue, VenueRecords

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")

Frame = dict[str, VenueRecords]


class JournalHead(msgspec.Struct, frozen=True, kw_only=True):
    """Whose journal it is: the log's (its first event id) and which records it follows
    (their ``token``)."""

    log: str
    follows: str


class VenueJournal:
    """Appends the venues' changes, once a turn of the loop, to the file given to ``open``."""

    def __init__(self, venues: Mapping[str, SimulatedVenue]) -> None:
        self._venues = venues
        self._changed: list[str] = []  # venues with changes not yet written
        self._fd: int | None = None
        for name, venue in venues.items():
            venue.follow_changes(partial(self._first_change, name))

    def open(self, path: Path, head: JournalHead) -> None:
        """Start the file at ``path`` afresh (a new file: a desk that lost the database's lock
        keeps writing only to the one it had), and write what changed so far."""
        written = path.with_name(path.name + ".new")
        fd = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_frame(fd, msgspec.msgpack.encode(head))
            os.replace(written, path)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        self.flush()

    def _first_change(self, venue: str) -> None:
        if not self._changed and self._fd is not None:
            asyncio.get_running_loop().call_soon(self.flush)
        self._changed.append(venue)

    def flush(self) -> None:
        """Write the changes made since the last flush."""
        if self._fd is None:
            return
        frame = {
            name: change
            for name in self._changed
            if (change := self._venues[name].changes()) is not None
        }
        self._changed.clear()
        if not frame:
            return
        try:
            _write_frame(self._fd, msgspec.msgpack.encode(frame))
        except OSError as error:
            self.abandon()
            log.warning(
                "the simulated venues' journal cannot be written (%s): a desk killed before "
                "its close will find its venues as they were now",
                error.strerror or error,
            )

    def abandon(self) -> None:
        """Write no more, and let the venues note no more changes: there is no file to keep
        them in (none was given, or it could not be written)."""
        for venue in self._venues.values():
            venue.follow_changes(None)
        self._changed.clear()
        self._release()

    def close(self) -> None:
        """Write what is left and close the file (it stays until the records are written)."""
        self.flush()
        self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class JournalUnreadable(Exception):
    """A journal that no kill could have left: no head, or a frame that does not decode."""


def read_journal(path: Path, head: JournalHead) -> list[Frame]:
    """The frames of the journal at ``path`` if it follows ``head``'s records of that log; none
    if there is none, or it follows other records (written before them: a warning). A last
    frame cut short (the process killed while writing it) is left out, with a warning.
    ``JournalUnreadable`` if it has no head (one is written before the file takes its name)
    or a whole frame cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    frames, cut = _frames(data)
    try:
        found = msgspec.msgpack.decode(frames[0], type=JournalHead) if frames else None
    except msgspec.DecodeError:
        found = None
    if found is None:
        raise JournalUnreadable("it has no head")
    if found != head:
        log.warning("%s follows other records (written before them); not taken", path)
        return []
    if cut:
        log.warning("%s: its last frame is cut short (%s); left out", path, cut)
    decoder = msgspec.msgpack.Decoder(Frame)
    try:
        return [decoder.decode(frame) for frame in frames[1:]]
    except msgspec.DecodeError as error:
        raise JournalUnreadable(str(error)) from None


def _frames(data: bytes) -> tuple[list[bytes], str]:
    """The whole frames, and how the last one is cut short ("" if it is not)."""
    frames: list[bytes] = []
    at = 0
    while at < len(data):
        if at + _LENGTH.size > len(data):
            return frames, f"{len(data) - at} bytes of its length"
        (length,) = _LENGTH.unpack_from(data, at)
        end = at + _LENGTH.size + length
        if end > len(data):
            return frames, f"{len(data) - at - _LENGTH.size:,} of its {length:,} bytes"
        frames.append(data[at + _LENGTH.size : end])
        at = end
    return frames, ""


def _write_frame(fd: int, payload: bytes) -> None:
    frame = _LENGTH.pack(len(payload)) + payload
    while frame:  # a write may take part of it
        frame = frame[os.write(fd, frame) :]
