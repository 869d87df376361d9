"""Kill a writer with SIGKILL at random moments: what was reported durable is there, whole."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blotter.store.event_store import SqlEventStore
from blotter.store.replay import replay

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 20


def _run_and_kill(
    url: str, seed: int, delay: float, *, once_appending: bool
) -> list[tuple[str, list[str]]]:
    """Start a writer, kill it ``delay`` seconds after its start (``once_appending``: after
    its first append began, the store open), return its complete report lines."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER), url, str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # On a loaded machine a writer's start (an interpreter, the committer's) can outlast the
    # delay: kills counted from its first append are sure to land among appends.
    first = process.stdout.readline() if once_appending and process.stdout else b""
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    out, _err = process.communicate()
    assert process.returncode == -signal.SIGKILL
    lines = (first + out).decode().split("\n")[:-1]  # the last piece may be cut mid-line
    return [(line[0], line.split()[1:]) for line in lines if line[:2] in ("I ", "D ")]


@pytest.mark.slow
def test_every_append_reported_durable_survives_sigkill_whole(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    SqlEventStore(url).close()  # a kill during the first start must find a database
    rng = random.Random(20261125)
    durable_total = 0
    for kill in range(KILLS):
        # every other kill may land in the writer's start: opening, migrating, spawning
        once_appending = kill % 2 == 1
        delay = rng.uniform(0.1, 0.6) if once_appending else rng.uniform(0.6, 1.6)
        report = _run_and_kill(url, seed=kill, delay=delay, once_appending=once_appending)
        intended = [ids for tag, ids in report if tag == "I"]
        durable = [ids for tag, ids in report if tag == "D"]
        with SqlEventStore(url, create=False) as store:
            stored_ids = {e.event_id for e in store.read_all()}
            seqs = [e.seq for e in store.read_all()]
            assert seqs == list(range(1, len(seqs) + 1)), "sequence numbers have a gap"
            for ids in durable:
                assert set(ids) <= stored_ids, f"kill {kill}: a durable append was lost"
            for ids in intended:
                present = [i in stored_ids for i in ids]
                assert all(present) or not any(present), f"kill {kill}: a partial append"
            result = replay(store, workers=1)
            assert result.ok, result.mismatches
        durable_total += len(durable)
    assert durable_total > KILLS  # the writer really wrote between kills


def test_a_replay_worker_ends_when_the_process_that_started_it_is_gone() -> None:
    """kill -9 of a replay (headless's check, ``blotter replay``) would leave its workers
    waiting on their queue for good, holding its output open."""
    orphan = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, time\n"
            "from blotter.store import replay\n"
            "replay.PARENT_CHECK_SECONDS = 0.05\n"
            "replay._exit_with(os.getppid() + 1)  # not its parent: as if that one died\n"
            "time.sleep(30)\n",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert (orphan.returncode, orphan.stderr) == (1, "")  # it ended itself, long before 30 s
