"""The blotter command, driven as a user would: a subprocess, its output and exit status."""

from __future__ import annotations

import builtins
import contextlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import blotter
from blotter import __main__ as entry
from blotter import cli
from blotter.domain.synthetic import order_prefix, synthetic_log
from blotter.oms.reconciliation import NOT_CONNECTED
from blotter.store.desk_lock import DeskLock
from blotter.store.event_store import SqlEventStore


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("BLOTTER_DB_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "blotter.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def one_clear_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Bad input: a non-zero exit, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("blotter: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def session_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "session.db"
    result = run("generate", "--orders", "60", "--seed", "9", "--db", f"sqlite:///{path}")
    assert result.returncode == 0, result.stderr
    assert "for 60 orders" in result.stdout
    return path


def test_version_names_the_package_version() -> None:
    result = run("--version")
    assert result.stdout.strip() == f"blotter {blotter.__version__}"


def test_replay_of_a_generated_session_finds_nothing_wrong(session_db: Path) -> None:
    result = run("replay", "--db", f"sqlite:///{session_db}")
    assert result.returncode == 0, result.stderr
    assert "60 orders" in result.stdout
    assert "projections match the log" in result.stdout


def test_replay_json_has_the_promised_keys(session_db: Path) -> None:
    result = run("replay", "--db", f"sqlite:///{session_db}", "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    assert {"events", "streams", "orders", "mismatches", "anomalies", "seconds"} <= report.keys()
    assert report["orders"] == 60
    assert report["mismatches"] == 0


def test_replay_exits_1_and_names_a_tampered_projection(session_db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tampered.db"
    copy.write_bytes(session_db.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE orders SET filled = '123456' WHERE order_id = 'O9-0000007'")
    result = run("replay", "--db", f"sqlite:///{copy}")
    assert result.returncode == 1
    assert "MISMATCHES: 1" in result.stdout
    assert "orders O9-0000007: filled: stored '123456'" in result.stdout


def test_events_prints_one_line_per_event_with_time_type_actor_cause(session_db: Path) -> None:
    result = run("events", "O9-0000007", "--db", f"sqlite:///{session_db}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("2026-01-01T")
    assert "OrderCreated" in lines[0]
    assert "actor=synthetic" in lines[0]
    assert "cause=-" in lines[0]
    assert '"order_id":"O9-0000007"' in lines[0]
    as_json = json.loads(
        run("events", "O9-0000007", "--db", f"sqlite:///{session_db}", "--json").stdout
    )
    assert len(as_json) == len(lines)
    assert [e["stream_version"] for e in as_json] == list(range(1, len(lines) + 1))


def test_a_reader_that_leaves_early_ends_the_output_quietly(session_db: Path) -> None:
    """`blotter events X | head -1`: the rest has nowhere to go, which is no error."""
    command = ["events", "O9-0000007", "--json", "--db", f"sqlite:///{session_db}"]
    with subprocess.Popen(
        [sys.executable, "-m", "blotter.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()  # gone before the first line comes
        error = process.stderr.read().decode()
    assert process.returncode == cli.EXIT_PIPE_CLOSED
    assert error == ""


def test_a_command_started_with_its_output_closed_does_its_work(tmp_path: Path) -> None:
    """`blotter generate ... >&-`: Python has no sys.stdout then; nothing to say it on."""
    db = tmp_path / "closed.db"
    command = ["generate", "--orders", "5", "--db", f"sqlite:///{db}"]
    result = subprocess.run(
        [sys.executable, "-m", "blotter.cli", *command],
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.close(1),
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert run("replay", "--db", f"sqlite:///{db}").returncode == 0


@pytest.mark.parametrize("asked", ["--help", "--version"])
def test_help_or_version_started_with_the_output_closed_ends_well(asked: str) -> None:
    """Python has no sys.stdout then: argparse writes to stderr, as it always did."""
    result = subprocess.run(
        [sys.executable, "-m", "blotter.cli", asked],
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.close(1),
    )
    assert result.returncode == 0
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("help_too", [False, True], ids=["events", "help"])
def test_output_to_a_full_disk_is_one_clear_line(session_db: Path, help_too: bool) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    command = ["events", "O9-0000007", "--db", f"sqlite:///{session_db}"]
    if help_too:
        command = ["events", "--help"]
    with Path("/dev/full").open("w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "blotter.cli", *command],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    one_clear_line(result, "cannot write the output: No space left on device")


def test_an_unknown_stream_is_one_clear_line(session_db: Path) -> None:
    one_clear_line(run("events", "NOPE-1", "--db", f"sqlite:///{session_db}"), "'NOPE-1'")
    # a byte the terminal's UTF-8 cannot decode (0xff), as the shell passes it
    not_text = run("events", "O7\udcff", "--db", f"sqlite:///{session_db}")
    one_clear_line(not_text, "is not UTF-8 text; expected a stream id")


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(8192))
    one_clear_line(run("replay", "--db", f"sqlite:///{junk}"), "not a blotter database")


def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    shop = sqlite3.connect(path)
    shop.execute("CREATE TABLE customers (id INTEGER)")
    shop.commit()
    shop.close()
    before = path.read_bytes()
    for command in ("replay", "generate"):
        one_clear_line(run(command, "--db", f"sqlite:///{path}"), "holds other tables (customers)")
    assert path.read_bytes() == before  # its journal mode too: not switched to WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.db"]  # no lock left beside it


def test_a_truncated_database(session_db: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.db"
    data = session_db.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    for command in (("replay",), ("events", "O9-0000007")):
        one_clear_line(run(*command, "--db", f"sqlite:///{cut}"), str(cut))


def test_a_database_damaged_where_appends_read_stops_the_run_in_a_few_lines(
    session_db: Path, tmp_path: Path
) -> None:
    """It opens and recovers (the log is whole) but every append fails: said once, not once
    per append, with no traceback, and the run exits 2."""
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(session_db.read_bytes())
    with sqlite3.connect(damaged) as db:  # the streams table, which only appends read
        pages = [n for (n,) in db.execute("SELECT pageno FROM dbstat WHERE name = 'streams'")]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    assert pages
    with damaged.open("r+b") as file:
        for page in pages:
            file.seek((page - 1) * size)
            file.write(bytes([0x5A]) * size)
    result = run("headless", "--duration", "1", "--rate", "20", "--db", f"sqlite:///{damaged}")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 15, result.stderr  # was a line or more per append
    assert lines[-1].startswith("blotter: error: ")
    assert "damaged" in lines[-1]


def test_a_missing_database_is_not_created_by_a_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    for command in (("replay",), ("events", "O-1")):
        one_clear_line(run(*command, "--db", f"sqlite:///{missing}"), "no such database")
    assert not missing.exists()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("not a url://", "is malformed"), ("mysql://x/y", "supports sqlite and postgresql")],
)
def test_a_malformed_or_unsupported_url(url: str, fragment: str) -> None:
    one_clear_line(run("replay", "--db", url), fragment)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:hunter2@h/db",
        "postgresql+psycopg://u:hunter2@host:notaport/db",
        "postgresql+asyncpg://u:hunter2@h/db",
        "postgresql://u:hunter2@h/",
        "sqlite://u:hunter2@/x.db?a=b",
        "postgresql+psycopg://u@h:x/db?password=hunter2",
        "postgresql+psycopg://u:hunt@hunter2@h:notaport/db",
    ],
)
def test_a_refused_url_is_named_without_its_password(url: str) -> None:
    result = run("replay", "--db", url)
    one_clear_line(result)
    assert "hunter2" not in result.stderr + result.stdout
    assert "hunt" not in result.stderr


def test_a_server_that_refuses_is_told_from_one_that_cannot_be_reached() -> None:
    server = os.environ.get("BLOTTER_TEST_PG_URL")
    if not server:
        pytest.skip("BLOTTER_TEST_PG_URL is not set: PostgreSQL CLI test skipped")
    missing = server.rsplit("/", 1)[0] + "/blotter_no_such_database"
    one_clear_line(run("replay", "--db", missing), "refused the connection: database")


def test_an_unreachable_postgresql_answers_quickly() -> None:
    result = run("replay", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    one_clear_line(result, "cannot reach PostgreSQL at 127.0.0.1:1/none")


def _lock(directory: Path) -> None:
    """Make ``directory`` unwritable, even for root (who ignores permission bits)."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return
    locked = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, check=False)
    if locked.returncode != 0:
        pytest.skip(f"running as root and chattr +i failed: {locked.stderr.decode().strip()}")


def _unlock(directory: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(directory)], check=True)
    directory.chmod(0o755)


def test_a_directory_without_write_permission(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    _lock(locked)
    try:
        result = run("generate", "--orders", "1", "--db", f"sqlite:///{locked / 'x.db'}")
    finally:
        _unlock(locked)
    one_clear_line(result, str(locked))
    line = result.stderr.strip()
    assert "no permission" in line or "cannot open the database for writing" in line


def test_the_default_database_lives_in_the_users_data_directory(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("BLOTTER_DB_URL", None)
    command = [sys.executable, "-m", "blotter.cli"]

    def run_with(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*command, *args], env=env, capture_output=True, text=True, check=False, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done

    default = tmp_path / "data" / "blotter" / "blotter.db"
    run_with("generate", "--orders", "3", "--db", f"sqlite:///{default}")
    assert "of 3 streams" in run_with("replay").stdout  # the default: the one just made
    other = tmp_path / "elsewhere.db"
    run_with("generate", "--orders", "2", "--seed", "4", "--db", f"sqlite:///{other}")
    env["BLOTTER_DB_URL"] = f"sqlite:///{other}"
    assert "of 2 streams" in run_with("replay").stdout


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "$BLOTTER_DB_URL is set but empty; expected a database URL"),
        (" ", "$BLOTTER_DB_URL is set but empty"),
        ("foo://x", "$BLOTTER_DB_URL: database URL 'foo://x' names the backend 'foo'"),
    ],
)
def test_a_wrong_blotter_db_url_is_named_and_never_passed_over(
    tmp_path: Path, value: str, fragment: str
) -> None:
    """A desk meant to write to its shared database must not write to a file of its own."""
    data = tmp_path / "data"
    env = {**os.environ, "BLOTTER_DB_URL": value, "XDG_DATA_HOME": str(data)}
    result = subprocess.run(
        [sys.executable, "-m", "blotter.cli", "replay"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    one_clear_line(result, fragment)
    assert not data.exists()


def test_rebuild_derives_the_projections_again_and_replay_agrees(
    session_db: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "drifted.db"
    copy.write_bytes(session_db.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE positions SET quantity = '1'")
        conn.execute("DELETE FROM fills WHERE rowid % 3 = 0")
        conn.execute("INSERT INTO alerts VALUES ('ghost', 'info', 'log', 'X', 'no cause', 0, 0)")
    assert run("replay", "--db", f"sqlite:///{copy}").returncode == 1
    rebuilt = run("rebuild", "--db", f"sqlite:///{copy}")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "60 orders" in rebuilt.stdout
    replayed = run("replay", "--db", f"sqlite:///{copy}")
    assert replayed.returncode == 0, replayed.stdout


@pytest.mark.parametrize("command", ["replay", "rebuild", "generate", "reconcile"])
def test_a_command_on_a_database_a_desk_holds_is_one_clear_line(
    command: str, session_db: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "held.db"
    copy.write_bytes(session_db.read_bytes())
    url = f"sqlite:///{copy}"
    with DeskLock.take(url, "desk"):
        result = run(command, "--db", url)
    one_clear_line(result, f"{copy} is in use by blotter desk, pid {os.getpid()}")


def test_generate_again_with_the_same_seed_says_it_appended_nothing(session_db: Path) -> None:
    again = run("generate", "--orders", "60", "--seed", "9", "--db", f"sqlite:///{session_db}")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("appended 0 events for 60 orders")
    assert "were in the log already: same seed" in again.stdout


def test_generate_with_a_used_seed_and_another_count_is_refused_and_writes_nothing(
    session_db: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "seeded.db"
    copy.write_bytes(session_db.read_bytes())
    before = copy.read_bytes()
    result = run("generate", "--orders", "61", "--seed", "9", "--db", f"sqlite:///{copy}")
    one_clear_line(result, "--seed 9: the log holds 60 orders of another session of this seed")
    assert copy.read_bytes() == before
    other = run("generate", "--orders", "5", "--seed", "10", "--db", f"sqlite:///{copy}")
    assert other.returncode == 0, other.stderr
    assert run("replay", "--db", f"sqlite:///{copy}").returncode == 0


def _children(pid: int) -> list[str]:
    """The processes the main thread of ``pid`` started (Linux's /proc), while it runs."""
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def test_ctrl_c_while_replay_starts_its_workers_is_one_line(session_db: Path) -> None:
    """A terminal's Ctrl-C reaches the whole process group: workers it caught importing
    printed tracebacks of their own under the command's line."""
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("no /proc children list here")
    with subprocess.Popen(
        [sys.executable, "-m", "blotter.cli", "replay", "--db", f"sqlite:///{session_db}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's job has
    ) as process:
        deadline = time.monotonic() + 60
        while not _children(process.pid) and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        time.sleep(0.15)  # the workers are importing what they need
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        _, error = process.communicate(timeout=60)
    assert (process.returncode, error) == (cli.EXIT_INTERRUPTED, "blotter: interrupted\n")


def test_generate_completes_a_session_it_was_interrupted_in(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cut.db'}"
    with SqlEventStore(url) as store:  # as a generate stopped after its first 300 events
        for event in itertools.islice(synthetic_log(40, 3), 300):
            store.append_sync(event.stream_id, event.stream_version - 1, [event])
    again = run("generate", "--orders", "40", "--seed", "3", "--db", url)
    assert again.returncode == 0, again.stderr
    assert "(300 were in the log already: same seed)" in again.stdout
    assert run("replay", "--db", url).returncode == 0


@pytest.mark.parametrize(
    ("signals", "code", "word", "group"),
    [
        ((signal.SIGINT,), 130, "interrupted", False),
        ((signal.SIGINT, signal.SIGINT), 130, "interrupted", False),  # said all the same
        ((signal.SIGTERM,), 143, "terminated", False),  # it ended the process, nothing said
        # a service manager's stop reaches the committer too, which must outlive the wind-down
        ((signal.SIGTERM,), 143, "terminated", True),
    ],
)
def test_an_interrupted_generate_says_what_the_log_holds_and_how_to_complete_it(
    tmp_path: Path, signals: tuple[signal.Signals, ...], code: int, word: str, group: bool
) -> None:
    database = tmp_path / "cut.db"
    url = f"sqlite:///{database}"
    env = {k: v for k, v in os.environ.items() if k != "BLOTTER_DB_URL"}
    command = [sys.executable, "-m", "blotter.cli", "generate", "--orders", "1000000"]
    with subprocess.Popen(
        [*command, "--db", url], stderr=subprocess.PIPE, text=True, env=env, start_new_session=group
    ) as running:
        while stored_events(database) < 1_000:  # minutes from its end
            assert running.poll() is None, running.stderr and running.stderr.read()
            time.sleep(0.05)
        for number in signals:
            if group:
                os.killpg(running.pid, number)
            else:
                running.send_signal(number)
            time.sleep(0.02)
        _out, err = running.communicate(timeout=60)
    assert running.returncode == code
    assert "Traceback" not in err
    assert "committer process is gone" not in err
    said = err.strip().splitlines()[-1]
    assert said.startswith(f"blotter: {word}: the log holds the start of the session of ")
    with SqlEventStore(url, create=False, appends=False) as store:
        held = store.count_streams(order_prefix(0))
        assert f": {held:,} of its 1,000,000 orders" in said
        assert "the same command again completes it" in said
        cli._check_seed_unused(store, 0, 1_000_000)  # the same command is let through
    assert run("replay", "--db", url).returncode == 0


def stored_events(database: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.Error:  # not made yet, or its tables not yet
        return 0


def test_synthetic_orders_never_go_to_the_configured_desk_database_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "real.db"
    monkeypatch.setenv("BLOTTER_DB_URL", f"sqlite:///{real}")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert cli.main(["generate", "--orders", "2"]) == 0
    demo = tmp_path / "data" / "blotter" / "demo.db"
    assert f"to {demo}" in capsys.readouterr().out
    assert not real.exists()  # the demo's window: tests/ui/test_opening.py


def test_the_window_without_a_display_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    result = run("demo")
    assert result.returncode == 2
    assert result.stderr.startswith("blotter: error: no display to open the desk window on")
    assert result.stderr.count("\n") == 1
    monkeypatch.setenv("DISPLAY", ":97")  # no X server there: Qt would abort the process
    unreachable = run("demo")
    one_clear_line(unreachable, "no X server answers at DISPLAY=:97")


@pytest.mark.parametrize(
    ("environment", "reason"),
    [
        ({"QT_QPA_PLATFORM": "xcb"}, "(DISPLAY is not set)"),
        (
            {
                "XDG_SESSION_TYPE": "wayland",
                "WAYLAND_DISPLAY": "wayland-97",
                "XDG_RUNTIME_DIR": "/nowhere",
            },
            "(no Wayland compositor answers at /nowhere/wayland-97; DISPLAY is not set)",
        ),
        # outside a Wayland session Qt tries X alone, whatever WAYLAND_DISPLAY says
        ({"XDG_SESSION_TYPE": "tty", "WAYLAND_DISPLAY": "wayland-0"}, "(DISPLAY is not set)"),
        ({"QT_QPA_PLATFORM": "wayland", "WAYLAND_DISPLAY": "w"}, "XDG_RUNTIME_DIR is not set"),
    ],
)
def test_a_platform_chosen_whose_display_is_not_there_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], reason: str
) -> None:
    """Qt trusted such a setting and aborted the process (exit 134) with a page of text."""
    for name in (
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "QT_QPA_PLATFORM",
        "XDG_RUNTIME_DIR",
        "XDG_SESSION_TYPE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    one_clear_line(run("demo"), "no display to open the desk window on", reason)


def test_headless_trades_under_the_risk_file_given(tmp_path: Path) -> None:
    risk = tmp_path / "risk.toml"
    everything = ", ".join(f'"{s}"' for s in ("AAPL", "MSFT", "NVDA", "AMZN", "JPM", "XOM"))
    risk.write_text(f'[default]\nrestricted = [{everything}, "KO", "TSLA"]\n')
    db = f"sqlite:///{tmp_path / 'risk.db'}"
    result = run(
        "headless", "--duration", "1", "--rate", "40", "--db", db, "--risk", str(risk), "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    refused = summary["risk_refusals"]["restricted_instrument"]
    assert refused > 0  # every equity order
    assert summary["orders_by_state"]["REJECTED"] >= refused


def test_a_bad_risk_file_is_one_clear_line(tmp_path: Path) -> None:
    risk = tmp_path / "risk.toml"
    risk.write_text('[default]\nmax_order_notional = "lots"\n')
    result = run("headless", "--duration", "1", "--risk", str(risk))
    one_clear_line(result, str(risk), "max_order_notional")


@pytest.mark.parametrize("clocked_by", ["disconnects", "order rate"])
def test_a_run_that_follows_the_wall_clock_does_not_promise_to_repeat(
    tmp_path: Path, clocked_by: str
) -> None:
    """Venues drop their connections, and an order-rate limit counts orders, by the wall
    clock: the same seed gives another run."""
    db = f"sqlite:///{tmp_path / 'drops.db'}"
    risk = tmp_path / "risk.toml"
    risk.write_text("[default]\nmax_orders_per_window = 30\nrate_window_seconds = 0.75\n")
    clocked = ["--disconnects"] if clocked_by == "disconnects" else ["--risk", str(risk)]
    result = run("headless", "--duration", "1", "--rate", "20", *clocked, "--db", db)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("fingerprint"))
    assert line.endswith("risk limits counted over seconds, runs of one seed differ)")


def clean_pass(db: str) -> dict[str, Any]:
    """`blotter reconcile --json` on ``db``, which finds positions and no break."""
    result = run("reconcile", "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    agreed: dict[str, Any] = json.loads(result.stdout)
    assert agreed["compared"] > 0
    assert (agreed["opened"], agreed["open_breaks"]) == ([], [])
    return agreed


def test_venues_that_never_saw_a_generated_log_take_its_positions(tmp_path: Path) -> None:
    """The simulated venues have no record of a generated session's trades: each of its
    positions was a break (26 critical and warning alerts in a reviewer's run)."""
    db = f"sqlite:///{tmp_path / 'generated.db'}"
    assert run("generate", "--orders", "200", "--seed", "5", "--db", db).returncode == 0
    agreed = clean_pass(db)
    # the generator's third venue is none of this desk's: nothing to compare, and said so
    assert agreed["unreachable"] == {"BATS": NOT_CONNECTED}
    kept = json.loads((tmp_path / "generated.db.venues.json").read_text())
    assert any(records["positions"] for records in kept["venues"].values())
    again = json.loads(run("reconcile", "--db", db, "--json").stdout)  # kept, not taken again
    assert (again["compared"], again["open_breaks"]) == (agreed["compared"], [])


def test_reconcile_finds_what_the_venue_s_record_says_differently(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'recon.db'}"
    assert run("headless", "--duration", "1", "--rate", "40", "--db", db).returncode == 0
    clean_pass(db)
    # The venue's back office books 500 more AAPL for ACC-ALPHA than our fills say.
    records_path = tmp_path / "recon.db.venues.json"
    records = json.loads(records_path.read_text())
    records["venues"]["XNAS"]["drift"] = [["ACC-ALPHA", "AAPL", "500"]]
    records_path.write_text(json.dumps(records))
    found = run("reconcile", "--db", db, "--user", "ops-ann")
    assert found.returncode == 1, found.stderr
    assert "opened 1 breaks" in found.stdout
    assert "escalate" in found.stdout
    assert "XNAS ACC-ALPHA AAPL" in found.stdout
    opened = json.loads(run("reconcile", "--db", db, "--json").stdout)["open_breaks"][0]
    history = json.loads(run("events", opened["break_id"], "--db", db, "--json").stdout)
    assert history[0]["actor"] == "ops-ann"  # the one who ran the pass, not "cli"
    again = run("reconcile", "--db", db, "--json")
    assert again.returncode == 1  # still waiting for a person, and not opened twice
    waiting = json.loads(again.stdout)
    assert waiting["opened"] == []
    assert [b["state"] for b in waiting["open_breaks"]] == ["ESCALATED"]


def test_reconcile_of_a_database_that_is_not_there_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    one_clear_line(run("reconcile", "--db", f"sqlite:///{missing}"), "no such database")
    assert not missing.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("headless", "--rate", "-1"), "argument --rate: -1 is not a positive number"),
        (("demo", "--panel", "nowhere"), "argument --panel: invalid choice: 'nowhere'"),
        (("demo", "--rate", "1e9"), "argument --rate: 1e9 commands a second; expected at most"),
        (("nonsense",), "invalid choice: 'nonsense'"),
        (("replay", "--bogus"), "unrecognized arguments: --bogus"),
        (("replay", "--db", ""), "argument --db: an empty database URL"),
        (("headless", "--duration", "1", "--rate", "1e9"), "offers 1,000,000,000 commands"),
        (("headless", "--duration", "2", "--rate", "1e300"), "offers 2e+300 commands"),
        (("headless", "--duration", "1e200", "--rate", "1e200"), "offers more than 1e308"),
        (("demo", "--panel", "risk"), "--panel goes with --screenshot FILE"),
        (("desk", "--after", "2"), "--after goes with --screenshot FILE"),
        (
            ("desk", "--screenshot", "d.png", "--after", "1e9"),
            "argument --after: 1e9 seconds; expected at most 3,600",
        ),
        (
            ("generate", "--orders", "1000001"),
            "argument --orders: 1000001 orders; expected at most 1,000,000",
        ),
        (("generate", "--orders", "1.5"), "argument --orders: '1.5' is not a whole number"),
        (("generate", "--seed", "1" + "0" * 80), "expected a whole number from 0 to 4,294,967,295"),
        (("headless", "--seed=-1"), "argument --seed: -1; expected a whole number from 0 to"),
        (("reconcile", "--user", "u" * 129), "a user name of 129 characters; expected at most 128"),
        (("reconcile", "--user", "bob\nsmith"), "'bob\\nsmith': expected a name of 1 to 128"),
        (("replay", "--db", "postgresql://u@127.0.0.1:abc/x"), "is malformed"),
        (("replay", "--db", "sqlite:////tmp/x.db?mode=ro&uri=true"), "query arguments (mode, uri)"),
        (("replay", "--db", "postgresql+asyncpg://h/d"), "speaks to postgresql through psycopg"),
        (("replay", "--db", "postgresql://"), "names no database"),
        (("headless", "--risk", ""), "argument --risk: an empty file name"),
        (("--db", "sqlite:////tmp/x.db", "replay"), "the command comes first: blotter replay"),
        # a user named as a command is a user: the desk's own options are checked
        (("--user", "demo", "--after", "x"), "argument --after: 'x' is not a number"),
    ],
)
def test_a_command_line_mistake_is_one_clear_line(args: tuple[str, ...], fragment: str) -> None:
    one_clear_line(run(*args), fragment)


@pytest.mark.parametrize("login", ["u" * 129, "eve\nINJECTED a line of history"])
def test_a_login_name_no_user_could_give_is_refused_before_anything_is_written(
    tmp_path: Path, login: str
) -> None:
    """The default actor is the login name: it is held to what --user takes, or it would
    write a history row of its own (a newline) or be cut by one store and not another."""
    db = tmp_path / "desk.db"
    result = subprocess.run(
        [sys.executable, "-m", "blotter.cli", "reconcile", "--db", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "USER": login, "LOGNAME": login, "LNAME": login, "USERNAME": login},
    )
    one_clear_line(result, "the login name", "give one with --user NAME")
    assert not db.exists()


def test_a_device_or_a_fifo_is_no_database_and_nothing_is_made_beside_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.db"
    os.mkfifo(fifo)  # its open would wait for a writer for ever
    for path in (Path(os.devnull), fifo):
        result = run("generate", "--orders", "1", "--db", f"sqlite:///{path}")
        one_clear_line(result, f"{path} is not a regular file")
        assert not Path(f"{path}.lock").exists()
        assert not Path(f"{path}-journal").exists()


def test_a_path_that_is_not_utf8_is_refused_before_a_database_is_made(tmp_path: Path) -> None:
    """Such a database was written, then its replay's workers could not be handed its path."""
    directory = os.fsencode(tmp_path)
    url = b"sqlite:///" + directory + b"/\xff.db"
    result = subprocess.run(
        [sys.executable, "-m", "blotter.cli", "generate", "--orders", "1", "--db", url],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.decode()
        .strip()
        .endswith("the path is not valid UTF-8; expected a path in UTF-8")
    )
    assert os.listdir(directory) == []


def test_an_empty_file_is_no_database_and_stays_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    for command in ("replay", "events", "rebuild"):
        args = ("events", "desk") if command == "events" else (command,)
        one_clear_line(run(*args, "--db", f"sqlite:///{empty}"), "is an empty file")
    assert empty.stat().st_size == 0
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")
    one_clear_line(run("replay", "--db", f"sqlite:///{notes}"), "the file is not SQLite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "notes.txt"]  # no lock


def test_a_tilde_in_a_sqlite_path_is_a_folder_name_like_any_other(tmp_path: Path) -> None:
    """SQLite opens ``~/x.db`` under a folder named ``~``: checked and locked there too."""
    here = subprocess.run(
        [
            sys.executable,
            "-m",
            "blotter.cli",
            "generate",
            "--orders",
            "2",
            "--db",
            "sqlite:///~/x.db",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "BLOTTER_DB_URL"},
        check=False,
        timeout=120,
    )
    assert here.returncode == 0, here.stderr
    assert (tmp_path / "~" / "x.db").exists()
    assert (tmp_path / "~" / "x.db.lock").exists()


def test_an_event_this_blotter_cannot_read_is_one_clear_line(
    session_db: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "newer.db"
    copy.write_bytes(session_db.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE events SET schema_version = 99 WHERE seq = 2")
    stream = sqlite3.connect(copy).execute("SELECT stream_id FROM events WHERE seq = 2").fetchone()
    for args in (("replay",), ("events", stream[0]), ("rebuild",)):
        one_clear_line(
            run(*args, "--db", f"sqlite:///{copy}"),
            "event 2 (",
            "has schema version 99; this blotter knows up to 2",
            "written by a newer blotter",
        )


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("{tmp}/missing/desk.png", "there is no folder"),
        ("{tmp}", "is not a .png file name"),
        ("{tmp}/desk.jpg", "is not a .png file name"),
        ("{tmp}/folder.png", "is a directory"),
        ("/proc/desk.png", "cannot write in the folder '/proc'"),
    ],
)
def test_a_screenshot_that_cannot_be_written_is_refused_before_the_desk_opens(
    tmp_path: Path, where: str, fragment: str
) -> None:
    (tmp_path / "folder.png").mkdir()
    result = run(
        "demo", "--db", f"sqlite:///{tmp_path / 'd.db'}", "--screenshot", where.format(tmp=tmp_path)
    )
    one_clear_line(result, "argument --screenshot", fragment)
    assert not (tmp_path / "d.db").exists()


def screenshot_run(folder: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A demo's screenshot after a second, offscreen, its settings in ``folder``; the run and
    the screenshot's path."""
    shot = folder / "desk.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(folder)}
    for debugging in ("BLOTTER_DB_URL", "PYTHONASYNCIODEBUG", "PYTHONDEVMODE"):
        env.pop(debugging, None)  # asyncio's debug mode reports every slow callback
    command = ["demo", "--db", f"sqlite:///{folder / 'd.db'}", "--screenshot", str(shot)]
    result = subprocess.run(
        [sys.executable, "-m", "blotter.cli", *command, "--after", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    return result, shot


def test_a_screenshot_run_says_nothing_when_all_goes_well(tmp_path: Path) -> None:
    """Qt's offscreen platform noted 'This plugin does not support propagateSizeHints()'
    for every dock: eight to ten lines under the README's screenshot commands."""
    result, shot = screenshot_run(tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert shot.stat().st_size > 0


def headless_running(database: str, *, rate: int) -> subprocess.Popen[str]:
    """A minute's headless run, its output piped, to be stopped by the test."""
    env = dict(os.environ)
    env.pop("BLOTTER_DB_URL", None)
    command = ["headless", "--duration", "60", "--rate", str(rate), "--db", database]
    return subprocess.Popen(
        [sys.executable, "-m", "blotter.cli", *command],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_terminated_headless_run_closes_its_desk_as_ctrl_c_would(tmp_path: Path) -> None:
    """SIGTERM (a service manager, a CI timeout) ends a run as Ctrl-C does: every event
    durable, the simulated venues' records kept for the next session."""
    database = tmp_path / "run.db"
    with headless_running(f"sqlite:///{database}", rate=20) as running:
        assert running.stderr is not None
        assert "commands" in running.stderr.readline()  # its first progress line: it runs
        running.terminate()
        _out, err = running.communicate(timeout=60)
    assert running.returncode == 143
    assert err.strip().splitlines()[-1] == "blotter: terminated"
    assert (tmp_path / "run.db.venues.json").exists()
    assert run("replay", "--db", f"sqlite:///{database}").returncode == 0


def test_a_killed_run_s_venues_keep_every_order_and_fill_the_desk_heard_of(
    tmp_path: Path,
) -> None:
    """kill -9 gives the desk no close: the simulated venues' journal keeps their records
    (before it, the next session found them empty: a break for every position)."""
    database = f"sqlite:///{tmp_path / 'run.db'}"
    with headless_running(database, rate=200) as running:
        assert running.stderr is not None
        for _ in range(3):  # a few seconds of flow: orders resting, fills booked
            assert "commands" in running.stderr.readline()
        running.kill()
        running.communicate(timeout=60)
    checked = run("reconcile", "--db", database, "--json")
    assert checked.returncode == 0, checked.stderr or checked.stdout[:500]
    agreed = json.loads(checked.stdout)
    assert agreed["compared"] > 0
    assert (agreed["opened"], agreed["open_breaks"]) == ([], [])
    assert run("replay", "--db", database).returncode == 0


def test_a_venues_journal_no_kill_could_leave_is_one_clear_line(tmp_path: Path) -> None:
    """An empty journal (its head is written before it takes its name) is not taken as a
    journal of nothing: the venues would be back at the session's start without a word."""
    db = f"sqlite:///{tmp_path / 'run.db'}"
    assert run("headless", "--duration", "1", "--rate", "20", "--db", db).returncode == 0
    (tmp_path / "run.db.venues.journal").write_bytes(b"")
    one_clear_line(run("reconcile", "--db", db), "run.db.venues.journal", "it has no head")


def test_ctrl_c_while_the_command_line_loads_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a traceback from the middle of SQLAlchemy's import."""
    real_import = builtins.__import__

    def interrupted(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "blotter.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert entry.main() == 130
    assert capsys.readouterr().err == "blotter: interrupted\n"
