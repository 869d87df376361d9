"""A simulated clearing house: settles after a short delay, and sometimes fails to."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from blotter.oms.ports import SettlementFailed


class SimulatedClearing:
    """Fails a settlement with probability ``failure_rate`` (seeded), like a missed match."""

    def __init__(
        self, *, failure_rate: float = 0.0, latency_ms: float = 0.0, seed: int = 0
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate {failure_rate}: expected a probability in [0, 1]")
        self._failure_rate = failure_rate
        self._latency = latency_ms / 1000
        self._rng = random.Random(seed)
        self.settled: list[str] = []
        self._settled: set[str] = set()

    async def settle(
        self, order_id: str, account: str, instrument: str, quantity: Decimal, notional: Decimal
    ) -> None:
        await asyncio.sleep(self._latency)
        if order_id in self._settled:  # asked again (an answer lost): settled once only
            return
        if self._rng.random() < self._failure_rate:
            raise SettlementFailed(
                f"no matching instruction from the counterparty for {quantity} {instrument}"
            )
        self.settled.append(order_id)
        self._settled.add(order_id)
