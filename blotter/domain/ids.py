"""Sources of unique ids, injectable so that simulations and tests are reproducible."""

from __future__ import annotations

import itertools
import uuid
from typing import Protocol


class IdSource(Protocol):
    def new_id(self) -> str: ...


class RandomIds:
    """Globally unique ids: a random 64-bit prefix per source, then a counter (24 hex digits).

    One UUID4 per id costs a system call each; a random prefix drawn once keeps ids from two
    processes (or two runs) apart just as well, at a counter's price.
    """

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count(1)

    def new_id(self) -> str:
        return f"{self._prefix}{next(self._counter):08x}"


class SequentialIds:
    """Predictable ids ``prefix-000001``, ``prefix-000002``... for deterministic runs."""

    def __init__(self, prefix: str = "id") -> None:
        self._prefix = prefix
        self._issued = 0

    def new_id(self) -> str:
        self._issued += 1
        return f"{self._prefix}-{self._issued:06d}"

    @property
    def issued(self) -> int:
        """How many ids were given so far (the last one's number)."""
        return self._issued

    def resume(self, issued: int) -> None:
        """Go on after ``issued`` ids an earlier source of this prefix gave, never reusing one."""
        self._issued = max(self._issued, issued)
