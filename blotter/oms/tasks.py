"""Owned asyncio tasks: named, kept, their failures logged, cancelled with a deadline.

No coroutine of the OMS runs as a bare ``asyncio.create_task``: an unreferenced task can be
garbage-collected mid-flight and its exception is lost. A ``TaskSupervisor`` holds every task
it starts, logs any that fails, and cancels what is left on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from blotter.oms.ports import StoreUnavailable

log = logging.getLogger(__name__)


class TaskSupervisor:
    """Starts and owns the background tasks of one component."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.failures: list[tuple[str, BaseException]] = []

    @property
    def closing(self) -> bool:
        """Shutdown has begun: nothing new may start."""
        return self._closing

    @property
    def running(self) -> list[str]:
        """Names of the tasks still running, sorted."""
        return sorted(t.get_name() for t in self._tasks if not t.done())

    def spawn(self, name: str, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coroutine`` as ``<supervisor>/<name>``; refused once shutdown has begun."""
        if self._closing:
            coroutine.close()
            raise RuntimeError(f"{self.name} is shutting down: cannot start {name}")
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{self.name}/{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.failures.append((task.get_name(), error))
            if isinstance(error, StoreUnavailable):  # the database's fault, said in a line
                log.error("task %s stopped: %s", task.get_name(), error)
            else:
                log.error("task %s failed", task.get_name(), exc_info=error)

    async def shutdown(self, grace: float = 5.0) -> list[str]:
        """Cancel every task, give them ``grace`` seconds to end; return those that did not."""
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return []
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        stuck = sorted(t.get_name() for t in pending)
        if stuck:
            log.error("%s: tasks did not stop within %.1f s: %s", self.name, grace, stuck)
        return stuck
