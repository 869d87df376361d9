"""The ``blotter`` command."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import errno
import getpass
import itertools
import logging
import math
import os
import signal
import socket
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import msgspec

from blotter import __version__
from blotter.__main__ import EXIT_INTERRUPTED
from blotter.domain.clock import iso_utc
from blotter.domain.events import Event, encode_event, to_builtins
from blotter.domain.reconciliation import ReconciliationConfig
from blotter.domain.risk import DEFAULT_RISK, RiskConfig
from blotter.domain.synthetic import order_prefix, synthetic_log
from blotter.domain.values import MAX_NAME, InvalidValue, check_name
from blotter.oms.ports import AppendResult, ConcurrencyConflict, StoreUnavailable
from blotter.oms.reconciliation import BreakFound, PassReport
from blotter.runtime.config import ConfigError, load_risk
from blotter.runtime.desk import Desk, DeskConfig
from blotter.runtime.headless import HeadlessOptions, Progress, Summary, run_headless
from blotter.store.database import StoreError, default_url, demo_url, shown
from blotter.store.desk_lock import DeskLock
from blotter.store.event_store import SqlEventStore
from blotter.store.replay import ReplayReport, rebuild, replay

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

EXIT_MISMATCH = 1
PANELS = (
    "details",
    "routing",
    "risk",
    "reconciliation",
    "escalations",
    "positions",
    "alerts",
)  # the bottom panels a screenshot can show
EXIT_ERROR = 2
EXIT_TERMINATED = 128 + signal.SIGTERM  # as a shell reports a process SIGTERM ended
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE  # as a shell reports a writer its reader left
MAX_HEADLESS_COMMANDS = 10_000_000  # duration x rate: about 80 minutes of the desk's pace
# The window keeps its budget up to 10,000 order updates a second, about 1,350 commands.
MAX_DEMO_RATE = 1_000
MAX_SCREENSHOT_DELAY = 3_600
MAX_GENERATED = 1_000_000  # orders: 15 million events, about 9 minutes here
_N = TypeVar("_N", int, float)


# What the database's libraries log of a failure blotter says itself, in its one line, or
# of one they recovered from (a pooled connection the server closed, found and replaced):
# psycopg's "error ignored terminating <Pipeline>" per failed write, SQLAlchemy's pool's
# "Exception during reset" with its traceback.
_ECHOES = {"psycopg": logging.ERROR, "sqlalchemy.pool": logging.CRITICAL}


def main(argv: Sequence[str] | None = None) -> int:
    for name, level in _ECHOES.items():
        logging.getLogger(name).setLevel(level)
    parser = _parser()
    given = sys.argv[1:] if argv is None else list(argv)
    misplaced = _command_after_options(given, set(_commands(parser)), _desk_valued(parser))
    if misplaced is not None:
        parser.error(f"the command comes first: blotter {misplaced} [options]")
    try:
        args = _parsed(parser, _desk_by_default(given))
        code: int = args.handler(args)
        if sys.stdout is not None:  # None: started with its output closed (>&-)
            sys.stdout.flush()  # a full disk under the output is said here, not at exit
    # StoreError is a StoreUnavailable; a conflict: the log holds what another writer put there
    except (StoreUnavailable, ConfigError, ConcurrencyConflict) as error:
        print(f"blotter: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `blotter events X | head`: the reader has what it wanted
        _drop_stdout()
        return EXIT_PIPE_CLOSED
    except OSError as error:  # the output's disk is full, its device gone...
        _drop_stdout()
        print(
            f"blotter: error: cannot write the output: {error.strerror or error}", file=sys.stderr
        )
        return EXIT_ERROR
    except KeyboardInterrupt as interrupted:
        terminated = isinstance(interrupted, Terminated)
        done = f": {interrupted}" if str(interrupted) else ""
        print(f"blotter: {'terminated' if terminated else 'interrupted'}{done}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    return code


def _parsed(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The arguments; ``--help`` and ``--version`` end here, once what they say is written
    (a full disk under it fails as any other output does, not silently at exit)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as done:
        if done.code == 0 and sys.stdout is not None:
            sys.stdout.flush()
        raise


def _drop_stdout() -> None:
    """Point standard output at nothing: what is still buffered for it could not be written
    either, and Python's flush at exit would say so with a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def _desk_by_default(argv: list[str]) -> list[str]:
    """``blotter`` is ``blotter desk`` and ``blotter --db X`` is ``blotter desk --db X``: the
    desk is the command when none is named, with its options and their defaults."""
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        return ["desk", *argv]
    return argv


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    subparsers = parser._subparsers  # argparse keeps them there; its public API has no getter
    assert subparsers is not None
    commands: dict[str, argparse.ArgumentParser] = {}
    for action in subparsers._group_actions:
        commands.update(action.choices or {})
    return commands


def _desk_valued(parser: argparse.ArgumentParser) -> set[str]:
    """The desk's options that take a value (``--user demo`` names a user, not a command)."""
    desk = _commands(parser)["desk"]
    return {name for action in desk._actions if action.nargs != 0 for name in action.option_strings}


def _command_after_options(argv: list[str], commands: set[str], valued: set[str]) -> str | None:
    """``blotter --db X replay``: a command named after the desk's options (which it would
    otherwise read as a stray argument), or None. ``valued``: the options whose next word
    is their value."""
    if not argv or not argv[0].startswith("-"):
        return None
    words = iter(argv)
    for word in words:
        if word in valued:
            next(words, None)
        elif word in commands and word != "desk":
            return word
    return None


class _OneLineErrors(argparse.ArgumentParser):
    """A mistake on the command line is one line on stderr (``--help`` has the usage); the
    command's subparsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"blotter: error: {message}\n")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        """argparse drops a failed write; ``--help`` and ``--version`` to a full disk then
        ended with status 0 and nothing said. On stdout it fails as any output does."""
        if message and file is not None and file is sys.stdout:
            file.write(message)
        else:
            super()._print_message(message, file)


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(
        prog="blotter", description="Order blotter with an embedded, event-sourced OMS."
    )
    parser.add_argument("--version", action="version", version=f"blotter {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    db_help = "SQLAlchemy database URL (default: $BLOTTER_DB_URL, else SQLite in the data dir)"
    # synthetic orders never go to the real orders' database unless --db names it
    demo_db_help = "database URL (default: demo.db in the data dir, apart from real orders)"

    desk_cmd = commands.add_parser(
        "desk", help="open the desk window (the default when no command is given)"
    )
    _database_argument(desk_cmd, db_help)
    _risk_argument(desk_cmd)
    _user_argument(desk_cmd)
    _screenshot_arguments(desk_cmd)
    desk_cmd.set_defaults(handler=_desk)

    demo_cmd = commands.add_parser(
        "demo", help="open the desk with other traders' synthetic flow, for a live demo"
    )
    demo_cmd.add_argument(
        "--rate",
        type=_at_most(
            MAX_DEMO_RATE, "commands a second", "the window shows every change", _positive_float
        ),
        default=20.0,
        help=f"commands per second (default 20, at most {MAX_DEMO_RATE:,})",
    )
    demo_cmd.add_argument("--seed", type=_seed, default=0, help=_SEED_HELP)
    demo_cmd.add_argument(
        "--drift",
        type=_non_negative_float,
        default=20.0,
        metavar="S",
        help="a venue back-office error every S seconds, for reconciliation to find "
        "(default 20; 0: none)",
    )
    _database_argument(demo_cmd, demo_db_help)
    _risk_argument(demo_cmd)
    _user_argument(demo_cmd)
    _screenshot_arguments(demo_cmd)
    demo_cmd.set_defaults(handler=_demo)

    replay_cmd = commands.add_parser(
        "replay", help="fold the whole log again and check every projection against it"
    )
    _database_argument(replay_cmd, db_help)
    replay_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    replay_cmd.set_defaults(handler=_replay)

    rebuild_cmd = commands.add_parser(
        "rebuild", help="derive every projection again from the log and replace the stored ones"
    )
    _database_argument(rebuild_cmd, db_help)
    rebuild_cmd.set_defaults(handler=_rebuild)

    events_cmd = commands.add_parser(
        "events",
        help="the full history of one stream: an order, break or escalation, an account "
        "(account-NAME), a venue (venue-NAME) or the desk",
    )
    events_cmd.add_argument("stream_id", metavar="STREAM_ID", type=_stream_id)
    _database_argument(events_cmd, db_help)
    events_cmd.add_argument("--json", action="store_true", help="print a JSON array of events")
    events_cmd.set_defaults(handler=_events)

    generate_cmd = commands.add_parser(
        "generate", help="append a seeded synthetic trading session to the log"
    )
    generate_cmd.add_argument(
        "--orders",
        type=_at_most(MAX_GENERATED, "orders", "about 5 GB of log", _positive_int),
        default=1000,
        help=f"default 1000, at most {MAX_GENERATED:,}",
    )
    generate_cmd.add_argument("--seed", type=_seed, default=0, help=_SEED_HELP)
    _database_argument(generate_cmd, demo_db_help)
    generate_cmd.set_defaults(handler=_generate)

    reconcile_cmd = commands.add_parser(
        "reconcile",
        help="compare our positions at every venue with the venue's own record, once; exit 1 "
        "if a break waits for a person",
    )
    _database_argument(reconcile_cmd, db_help)
    _user_argument(reconcile_cmd)
    reconcile_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    reconcile_cmd.set_defaults(handler=_reconcile)

    headless_cmd = commands.add_parser(
        "headless",
        help="run the OMS against the simulated venues with a synthetic flow, then check it",
    )
    headless_cmd.add_argument(
        "--duration", type=_positive_float, default=10.0, help="seconds of flow (default 10)"
    )
    headless_cmd.add_argument(
        "--rate", type=_positive_float, default=200.0, help="commands per second (default 200)"
    )
    headless_cmd.add_argument("--seed", type=_seed, default=0, help=_SEED_HELP)
    headless_cmd.add_argument(
        "--concurrency",
        type=_positive_int,
        default=1,
        help="commands in flight at once; 1 (default) runs in lockstep, reproducible per seed",
    )
    headless_cmd.add_argument(
        "--disconnects",
        action="store_true",
        help="let venues drop their connections at random, as their profiles say",
    )
    _database_argument(headless_cmd, demo_db_help)
    _risk_argument(headless_cmd)
    headless_cmd.add_argument("--json", action="store_true", help="print the summary as JSON")
    headless_cmd.set_defaults(handler=_headless)
    return parser


MAX_SEED = 2**32 - 1  # a generated order's id carries its seed, in the 64 characters kept
_SEEDS = f"a whole number from 0 to {MAX_SEED:,}"
_SEED_HELP = f"{_SEEDS} (default 0)"


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _seed(text: str) -> int:
    value = _whole(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text}; expected {_SEEDS}")
    return value


def _positive_int(text: str) -> int:
    value = _whole(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def _risk_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--risk",
        metavar="FILE",
        type=_file_name,
        help="risk limits, TOML (default: the built-in desk limits; the source tree's "
        "resources/risk.example.toml shows the format)",
    )


def _stream_id(text: str) -> str:
    try:
        text.encode()
    except UnicodeEncodeError:  # bytes the terminal could not decode, kept as surrogates
        raise argparse.ArgumentTypeError(
            f"{text!r} is not UTF-8 text; expected a stream id, e.g. an order id"
        ) from None
    return text


def _file_name(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty file name; expected a path, e.g. risk.toml")
    return Path(text)


def _risk(args: argparse.Namespace) -> RiskConfig:
    return DEFAULT_RISK if args.risk is None else load_risk(args.risk)


def _user_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--user",
        type=_user_name,
        default=None,
        metavar="NAME",
        help="who acts, as every event of an action records it (default: your login name)",
    )


def _user_name(text: str) -> str:
    name = text.strip()
    if not name:
        raise argparse.ArgumentTypeError("an empty user name; expected who acts, e.g. alice")
    if len(name) > MAX_NAME:
        raise argparse.ArgumentTypeError(
            f"a user name of {len(name)} characters; expected at most {MAX_NAME}"
        )
    try:
        return check_name("--user", name)
    except InvalidValue as invalid:
        raise argparse.ArgumentTypeError(f"{name!r}: expected {invalid.expected}") from None


def _user(args: argparse.Namespace) -> str:
    """The name given, else the login name (the environment's, else the system's), held to
    what ``--user`` takes: every event of an action records it."""
    if args.user is not None:
        return str(args.user)
    try:
        login = getpass.getuser()
    except (OSError, KeyError):  # no login name anywhere (a bare container): say so
        return "unknown user"
    try:
        return check_name("login name", login)
    except InvalidValue as invalid:
        raise ConfigError(
            f"the login name {login!r} cannot say who acts: expected {invalid.expected}; "
            "give one with --user NAME"
        ) from None


def _screenshot_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--screenshot",
        metavar="FILE",
        type=_screenshot_path,
        help="save the window as a PNG and exit",
    )
    command.add_argument(
        "--after",
        type=_at_most(MAX_SCREENSHOT_DELAY, "seconds", "an hour", _positive_float),
        metavar="S",
        help=f"seconds before the screenshot (default 3, at most {MAX_SCREENSHOT_DELAY:,})",
    )
    command.add_argument(
        "--panel",
        choices=PANELS,
        help="the bottom panel in front for the screenshot (default details)",
    )


def _desk(args: argparse.Namespace) -> int:
    config = DeskConfig(db_url=args.db or default_url(), risk=_risk(args))
    return _window(config, args, demo_rate=None)


def _demo(args: argparse.Namespace) -> int:
    config = DeskConfig(
        db_url=args.db or demo_url(),
        seed=args.seed,
        risk=_risk(args),
        # a pass every 10 s, so that the demo's back-office errors show up soon
        reconciliation=ReconciliationConfig(interval_seconds=10.0),
    )
    return _window(config, args, demo_rate=args.rate, drift_every=args.drift or None)


def _window(
    config: DeskConfig,
    args: argparse.Namespace,
    demo_rate: float | None,
    drift_every: float | None = None,
) -> int:
    if args.screenshot is None and (args.after is not None or args.panel is not None):
        given = "--after" if args.after is not None else "--panel"
        print(f"blotter: error: {given} goes with --screenshot FILE", file=sys.stderr)
        return EXIT_ERROR
    missing = _no_display()
    if missing is not None:
        print(
            f"blotter: error: no display to open the desk window on ({missing}); set DISPLAY "
            "(or WAYLAND_DISPLAY), or QT_QPA_PLATFORM=offscreen together with "
            "--screenshot FILE, or run `blotter headless`",
            file=sys.stderr,
        )
        return EXIT_ERROR
    # Qt is imported only for the window: every other command runs without it.
    from blotter.ui.app import AppOptions, ScreenshotError, run_app

    options = AppOptions(
        desk=config,
        demo_rate=demo_rate,
        drift_every=drift_every,
        screenshot=args.screenshot,
        after=3.0 if args.after is None else args.after,
        panel=args.panel or "details",
        user=_user(args),
    )
    try:
        return run_app(options)
    except ScreenshotError as failed:
        print(f"blotter: error: {failed}", file=sys.stderr)
        return EXIT_ERROR


def _no_display() -> str | None:
    """Why Qt could show no window here, or None: on Linux, Qt aborts the process when no
    platform it tries (``QT_QPA_PLATFORM``, a list with fallbacks, else X's, after
    Wayland's in a session that says it is one) reaches its display."""
    if not sys.platform.startswith("linux"):
        return None
    chosen = os.environ.get("QT_QPA_PLATFORM", "")
    wayland = os.environ.get("WAYLAND_DISPLAY", "")
    # unset, Qt tries X, or Wayland first in a session that says it is one
    in_wayland = os.environ.get("XDG_SESSION_TYPE") == "wayland"
    platforms = [p.split(":")[0] for p in chosen.split(";") if p] or (
        ["wayland", "xcb"] if in_wayland else ["xcb"]
    )
    reasons = []
    for platform in platforms:
        if platform == "xcb":
            reason = _no_x_server()
        elif platform.startswith("wayland"):
            reason = _no_wayland_compositor(wayland)
        else:  # offscreen, minimal, eglfs, vnc...: nothing to reach first
            return None
        if reason is None:
            return None
        reasons.append(reason)
    return "; ".join(reasons)


def _no_x_server() -> str | None:
    display = os.environ.get("DISPLAY", "")
    if not display:
        return "DISPLAY is not set"
    return None if _x_server_answers(display) else f"no X server answers at DISPLAY={display}"


def _no_wayland_compositor(name: str) -> str | None:
    """Why no Wayland compositor listens at ``name`` (a socket under XDG_RUNTIME_DIR, or a
    path), or None."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    name = name or "wayland-0"
    if not runtime and not os.path.isabs(name):
        return f"XDG_RUNTIME_DIR is not set, where the Wayland socket {name} would be"
    socket_path = os.path.join(runtime, name)
    if _listens(socket.AF_UNIX, socket_path):
        return None
    return f"no Wayland compositor answers at {socket_path}"


def _x_server_answers(display: str) -> bool:
    """Whether an X server listens for ``display`` (``:0``, ``host:1.0``): Qt aborts the
    process on one it cannot reach."""
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        family, address = socket.AF_UNIX, f"/tmp/.X11-unix/X{number}"
        if not os.path.exists(address):  # Linux's abstract socket, as Xorg also listens on
            address = f"\0/tmp/.X11-unix/X{number}"
        target: str | tuple[str, int] = address
    else:
        family, target = socket.AF_INET, (host, 6000 + int(number))
    return _listens(family, target)


def _listens(family: socket.AddressFamily, target: str | tuple[str, int]) -> bool:
    """Whether something accepts a connection at ``target`` within 2 s."""
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(2.0)
            probe.connect(target)
    except OSError:
        return False
    return True


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of 0 or more")
    return value


def _database_argument(command: argparse.ArgumentParser, help_text: str) -> None:
    command.add_argument("--db", type=_database_url, help=help_text)


def _database_url(text: str) -> str:
    """A URL given, not an empty one (which would quietly mean the default database)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty database URL; expected e.g. sqlite:///path/to/blotter.db"
        )
    return text


def _screenshot_path(text: str) -> Path:
    """A PNG file to write, in a folder that exists (checked before the desk opens)."""
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"{text!r} is not a .png file name")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory, not a .png file name")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: there is no folder {str(path.parent)!r}")
    try:  # a file made and gone: nothing is left if the run ends before its screenshot
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:  # /proc says ENOENT, which would only puzzle
        why = "" if error.errno == errno.ENOENT else f" ({error.strerror})"
        folder = str(path.parent)
        raise argparse.ArgumentTypeError(
            f"{text!r}: cannot write in the folder {folder!r}{why}"
        ) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: no permission to write over this file")
    return path


def _positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _at_most(most: int, unit: str, why: str, number: Callable[[str], _N]) -> Callable[[str], _N]:
    """A positive ``number`` of ``unit`` up to ``most``; above it, ``why`` not."""

    def parse(text: str) -> _N:
        value = number(text)
        if value > most:
            raise argparse.ArgumentTypeError(f"{text} {unit}; expected at most {most:,} ({why})")
        return value

    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _replay(args: argparse.Namespace) -> int:
    url = args.db or default_url()
    # a desk appending meanwhile would show as mismatches
    with DeskLock.take(url, "replay"), SqlEventStore(url, create=False, appends=False) as store:
        report = replay(store)
    if args.json:
        print(msgspec.json.encode(_replay_json(report)).decode())
    else:
        _print_replay(report)
    return 0 if report.ok else EXIT_MISMATCH


def _replay_json(report: ReplayReport) -> dict[str, object]:
    result = msgspec.to_builtins(report)
    result["mismatches"] = report.mismatch_count
    result["mismatch_details"] = msgspec.to_builtins(report.mismatches)
    del result["mismatch_count"]
    return dict(result)


def _print_replay(report: ReplayReport) -> None:
    print(
        f"replayed {report.events} events of {report.streams} streams in {report.seconds:.2f} s: "
        f"{report.orders} orders, {report.fills} fills, {report.positions} positions, "
        f"{report.alerts} alerts"
    )
    print(f"anomalies: {report.anomalies}  duplicates ignored: {report.duplicates}")
    if report.ok:
        print("projections match the log; conservation and positions hold")
        return
    print(f"MISMATCHES: {report.mismatch_count}")
    for mismatch in report.mismatches:
        print(f"  {mismatch.table} {mismatch.key}: {mismatch.detail}")
    if report.mismatch_count > len(report.mismatches):
        print(f"  ... and {report.mismatch_count - len(report.mismatches)} more")


def _rebuild(args: argparse.Namespace) -> int:
    url = args.db or default_url()
    with (
        DeskLock.take(url, "rebuild") as lock,
        SqlEventStore(url, create=False, appends=False, fence=lock.fence, rewrites=True) as store,
    ):
        written = rebuild(store)
    print("rebuilt from the log: " + ", ".join(f"{n} {t}" for t, n in written.items()))
    return 0


def _events(args: argparse.Namespace) -> int:
    url = args.db or default_url()
    # read beside a desk, without its lock: so no migration either
    with SqlEventStore(url, create=False, appends=False, upgrade=False) as store:
        history = store.read_stream(args.stream_id)
    if not history:
        raise StoreError(
            f"no order, break, escalation, account or venue stream with id {args.stream_id!r}"
        )
    if args.json:
        print("[" + ",".join(encode_event(e).decode() for e in history) + "]")
    else:
        for event in history:
            print(_event_line(event))
    return 0


def _event_line(event: Event) -> str:
    payload = msgspec.json.encode(to_builtins(event.payload)).decode()
    cause = event.causation_id or "-"
    return (
        f"{iso_utc(event.occurred_at)}  v{event.stream_version:<3} {event.type:<24} "
        f"actor={event.actor}  cause={cause}  {payload}"
    )


def _reconcile(args: argparse.Namespace) -> int:
    report, waiting = asyncio.run(_reconcile_once(args.db or default_url(), _user(args)))
    if args.json:
        result = {**msgspec.to_builtins(report), "open_breaks": msgspec.to_builtins(waiting)}
        print(msgspec.json.encode(result).decode())
    else:
        _print_reconciliation(report, waiting)
    return EXIT_MISMATCH if report.needs_a_person else 0


async def _reconcile_once(db_url: str, user: str) -> tuple[PassReport, list[BreakFound]]:
    """Open the desk (the OMS recovers, the venues connect), run one pass, close it again.

    A database that is not there is a mistake, not an empty desk: it says so, creating nothing.
    """
    config = DeskConfig(db_url=db_url, existing_store=True, random_disconnects=False)
    desk = await Desk.open(config, purpose="reconcile")
    try:
        report = await desk.reconciler.run_pass(actor=user, why="blotter reconcile")
        await desk.oms.drain()
        if desk.oms.failed:  # the breaks it found are not in the log: none may be reported
            raise StoreError(f"the pass could not be recorded: {desk.oms.failed}")
        return report, desk.reconciler.open_breaks()
    finally:
        await desk.close()


def _print_reconciliation(report: PassReport, waiting: list[BreakFound]) -> None:
    print(
        f"compared {report.compared} positions; {report.working} left for later (working "
        f"orders could explain them); opened {len(report.opened)} breaks, explained "
        f"{len(report.explained)}"
    )
    for venue, why in report.unreachable.items():
        print(f"venue {venue} could not be read: {why}")
    for found in report.opened:
        print(f"  new {found.break_id} {found.verdict}: {found.reason}")
    for diverged in report.diverged:
        print(f"projection: {diverged.reason}")
    print(f"open breaks: {len(waiting)}")
    for found in waiting:
        print(
            f"  {found.break_id} {found.state:<12} {found.venue} {found.account} "
            f"{found.instrument}: ours {found.ours}, theirs {found.theirs}"
            + ("" if not Decimal(found.adjusted) else f", ours adjusted by {found.adjusted}")
        )


def _headless(args: argparse.Namespace) -> int:
    offered = args.duration * args.rate
    if offered > MAX_HEADLESS_COMMANDS:
        print(
            f"blotter: error: --duration {args.duration:g} at --rate {args.rate:g} offers "
            f"{_about(offered)} commands; at most {MAX_HEADLESS_COMMANDS:,} (the desk takes about "
            "2,000 a second: shorten the run or lower the rate)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    options = HeadlessOptions(
        db_url=args.db or demo_url(),
        duration=args.duration,
        rate=args.rate,
        seed=args.seed,
        concurrency=args.concurrency,
        disconnects=args.disconnects,
        risk=_risk(args),
    )
    try:
        summary = asyncio.run(_headless_until_terminated(options))
    except asyncio.CancelledError:
        print("blotter: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    if args.json:
        print(msgspec.json.encode(_summary_json(summary)).decode())
    else:
        # venues that drop their connections, and limits counted over seconds, follow the
        # wall clock: runs then differ
        repeatable = not (args.disconnects or options.risk.clocked)
        _print_summary(summary, lockstep=args.concurrency == 1 and repeatable)
    return 0 if summary.ok else EXIT_MISMATCH


async def _headless_until_terminated(options: HeadlessOptions) -> Summary:
    """The run, cancelled by SIGTERM as Ctrl-C cancels it: the desk then closes as usual, its
    events durable and the simulated venues' records kept (killed, they would be lost)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run_headless(options, _print_progress)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _print_progress(progress: Progress) -> None:
    print(
        f"[{progress.elapsed:5.1f} s] {progress.commands} commands, {progress.orders} orders, "
        f"{progress.fills} fills, {progress.open_orders} open, {progress.events} events",
        file=sys.stderr,
    )


def _summary_json(summary: Summary) -> dict[str, object]:
    result: dict[str, object] = msgspec.to_builtins(summary)
    result["ok"] = summary.ok
    return result


def _about(count: float) -> str:
    """A count in full, or in powers of ten once its digits would say nothing more."""
    if not math.isfinite(count):
        return "more than 1e308"
    return f"{count:,.0f}" if count < 1e15 else f"{count:.3g}"


def _print_summary(summary: Summary, *, lockstep: bool) -> None:
    if summary.stopped is not None:
        print(f"OMS STOPPED: {summary.stopped}; the run ended there, not closed or reconciled")
    print(
        f"{summary.commands} commands in {summary.seconds:.1f} s: {summary.orders} orders "
        f"({summary.orders_per_second:.0f}/s), {summary.cancels} cancels of working orders, "
        f"{summary.cancel_alls} cancel-alls; {summary.fills} fills"
    )
    print("orders by state: " + ", ".join(f"{s} {n}" for s, n in summary.orders_by_state.items()))
    print(f"events written: {summary.events_written} ({summary.events_per_second:.0f}/s)")
    refusals = summary.risk_refusals
    print("risk refusals: " + (", ".join(f"{r} {n}" for r, n in refusals.items()) or "none"))
    recon = summary.reconciliation
    if recon is not None:
        print(
            f"reconciliation: {recon.compared} positions compared with the venues' records, "
            f"{recon.working} left for a later pass (working orders could explain them); "
            f"{len(recon.opened)} breaks"
        )
    for name, figures in (
        ("command to venue (durable intent, rate limit, on the wire)", summary.command_to_venue),
        ("OMS CPU per new-order command", summary.command_work),
        ("OMS CPU per order, with all its reports", summary.oms_work),
    ):
        if figures is not None:
            print(f"{name}: p50 {figures.p50_ms:.3f} ms, p99 {figures.p99_ms:.3f} ms")
    for name, venue in summary.venues.items():
        latency = venue.latency
        round_trip = (
            f"round trip p50 {latency.p50_ms:.2f} ms, p99 {latency.p99_ms:.2f} ms"
            if latency
            else "no round trip measured"
        )
        print(
            f"venue {name}: {venue.health}, {round_trip}, "
            f"{venue.connection_attempts} connection attempts"
        )
    alerts = ", ".join(f"{kind} {n}" for kind, n in summary.alerts.items()) or "none"
    print(f"alerts in the database: {alerts}")
    check = summary.replay
    if check is None:
        print("replay check: not made; the database's lock was lost, another desk may write it")
    else:
        # the replay's own verdict: a run the OMS stopped says so on its own line
        verdict = "match" if check.mismatches == 0 else f"{check.mismatches} MISMATCHES"
        print(
            f"replay check: {check.events} events, {check.orders} orders, {check.anomalies} "
            f"anomalies; projections {verdict}"
        )
    repeats = (
        "equal for runs of the same seed on a new database"
        if lockstep
        else (
            "with commands in flight together, venues disconnecting or risk limits counted "
            "over seconds, runs of one seed differ"
        )
    )
    print(f"fingerprint {summary.fingerprint} ({repeats})")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the command had done by then."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, taken as Ctrl-C is (see ``_stopped_once``)."""


@contextlib.contextmanager
def _stopped_once() -> Iterator[None]:
    """The first Ctrl-C or SIGTERM stops the command (SIGTERM would otherwise end the
    process where it stands, with nothing said); the ones after it are not heard, while
    the command winds down, making the log whole and saying where it stopped."""
    heard: list[int] = []

    def stop(number: int, _frame: object) -> None:
        if not heard:
            heard.append(number)
            raise Terminated if number == signal.SIGTERM else KeyboardInterrupt

    before = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def _generate(args: argparse.Namespace) -> int:
    url = args.db or demo_url()
    with (
        _stopped_once(),
        DeskLock.take(url, "generate", create=True) as lock,
        SqlEventStore(url, fence=lock.fence) as store,
    ):
        known = _check_seed_unused(store, args.seed, args.orders)
        try:
            appended = _append_log(store, synthetic_log(args.orders, args.seed)) - known
        except KeyboardInterrupt as stopped:
            store.close()  # what was queued is written: the log holds a prefix
            said = _generated_so_far(url, args.seed, args.orders)
            raise (Terminated if isinstance(stopped, Terminated) else Interrupted)(said) from None
    print(
        f"appended {appended} events for {args.orders} orders to {shown(url)}"
        + (f" ({known} were in the log already: same seed)" if known else "")
    )
    return 0


def _generated_so_far(url: str, seed: int, orders: int) -> str:
    with SqlEventStore(url, create=False, appends=False) as store:
        held = store.count_streams(order_prefix(seed))
    return (
        f"the log holds the start of the session of --seed {seed}: {held:,} of its "
        f"{orders:,} orders, the last ones in part; the same command again completes it"
    )


def _check_seed_unused(store: SqlEventStore, seed: int, orders: int) -> int:
    """How many of the session's events the log holds already. A seed's session is one log,
    and what the log holds of it must be where this run begins: all of it (the same run
    again appends nothing), or its start (a run that was interrupted is completed). Another
    count interleaves the seed's orders differently, and would collide with those stored."""
    prefix = order_prefix(seed)
    stored = store.event_places(prefix)
    if not stored:
        return 0
    first = itertools.islice(synthetic_log(orders, seed), len(stored))
    if {(e.event_id, e.stream_id, e.stream_version) for e in first} != stored:
        held = store.count_streams(prefix)
        raise ConfigError(
            f"--seed {seed}: the log holds {held:,} orders of another session of this seed "
            f"(not the start of one of {orders:,}); generate another session with another --seed"
        )
    return len(stored)


GENERATE_WINDOW = 10_000  # events queued for the store at a time: memory stays flat


def _append_log(store: SqlEventStore, log: Iterable[Event]) -> int:
    """Append each event as its own write, as a live session would; how many are in the log
    now. Not how many the store called duplicates: after its committer process dies, it
    finds its own latest writes again and calls them so."""
    pending: deque[concurrent.futures.Future[AppendResult]] = deque()
    held = 0
    for event in log:
        pending.append(store.submit(event.stream_id, event.stream_version - 1, [event]))
        while pending and (len(pending) >= GENERATE_WINDOW or pending[0].done()):
            pending.popleft().result()
            held += 1
    for future in pending:
        future.result()
        held += 1
    return held


if __name__ == "__main__":
    sys.exit(main())
