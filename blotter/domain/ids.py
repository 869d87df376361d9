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
        self._counter = itertools.count(1)

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._counter):06d}"
