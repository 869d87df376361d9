"""Sources of unique ids, injectable so that simulations and tests are reproducible."""

from __future__ import annotations

import itertools
import uuid
from typing import Protocol


class IdSource(Protocol):
    def new_id(self) -> str: ...


class RandomIds:
    """Globally unique ids (UUID4, 32 hex digits)."""

    def new_id(self) -> str:
        return uuid.uuid4().hex


class SequentialIds:
    """Predictable ids ``prefix-000001``, ``prefix-000002``... for deterministic runs."""

    def __init__(self, prefix: str = "id") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._counter):06d}"
