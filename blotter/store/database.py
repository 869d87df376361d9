"""Opening a database: URL resolution, SQLite durability settings, migrations, clear errors.

Every way a database can fail to open (a malformed URL, a file that is not a database, a
directory we cannot write, an unreachable server, a schema from a newer blotter) raises
``StoreError`` with one line a user can act on.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Connection, Engine, create_engine, event, exc, inspect
from sqlalchemy import text as sql_text
from sqlalchemy.engine import URL, make_url

from blotter.oms.ports import StoreUnavailable
from blotter.store.committer import SQLITE_PRAGMAS

ENV_VAR = "BLOTTER_DB_URL"
MIGRATIONS = Path(__file__).with_name("migrations")
# The transaction-level advisory lock that serializes the writers of one PostgreSQL database
# ("blot"): the store's appends take it, and a desk that takes the database waits on it once.
PG_WRITERS_KEY = 0x626C6F74


class StoreError(StoreUnavailable):
    """A database that cannot be used, with a message meant for the user."""


def data_dir() -> Path:
    """The user's data directory for blotter (``$XDG_DATA_HOME/blotter`` on Linux)."""
    return Path(platformdirs.user_data_dir("blotter", appauthor=False))


def database_file(url: URL) -> Path:
    """A SQLite database's file as SQLite opens it, links followed: what lives beside it (the
    desk's lock, the simulated venues' records) is found by any way to it."""
    assert url.database is not None
    return Path(url.database).resolve()


def default_url() -> str:
    """``$BLOTTER_DB_URL``, else SQLite in the user's data directory: the real orders.

    Set but empty or wrong, the variable is refused, not passed over: a desk whose shared
    database was meant would otherwise trade into a file of its own, unseen by the others."""
    configured = os.environ.get(ENV_VAR)
    if configured is None:
        return f"sqlite:///{data_dir() / 'blotter.db'}"
    if not configured.strip():
        raise StoreError(
            f"${ENV_VAR} is set but empty; expected a database URL such as "
            "postgresql+psycopg://user@host/dbname (or unset it for the local database)"
        )
    try:
        parse_url(configured)
    except StoreError as error:
        raise StoreError(f"${ENV_VAR}: {error}") from None
    return configured


def demo_url() -> str:
    """Where synthetic flows go unless told otherwise: never the real orders' database
    (``$BLOTTER_DB_URL`` may be the desk's shared one)."""
    return f"sqlite:///{data_dir() / 'demo.db'}"


# The drivers blotter is built and tested with, per backend; "postgresql://" means psycopg.
_DRIVERS = {"sqlite": ("pysqlite",), "postgresql": ("psycopg",)}
_PASSWORD = re.compile(r"(://[^:/@]*):[^/]*@")  # user:password@ (a password may hold @)


def parse_url(text: str) -> URL:
    try:
        url = make_url(text)
    except (exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StoreError(
            f"database URL {_as_given(text)!r} is malformed; expected e.g. "
            "sqlite:///path/to/blotter.db or postgresql+psycopg://user@host/dbname"
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"database URL {_as_given(text)!r} names the backend {url.get_backend_name()!r}; "
            "blotter supports sqlite and postgresql"
        )
    if url.drivername == "postgresql":  # SQLAlchemy 2.0 would take it for psycopg2
        url = url.set(drivername="postgresql+psycopg")
    driver = url.get_driver_name()
    if driver not in _DRIVERS[url.get_backend_name()]:
        raise StoreError(
            f"database URL {_as_given(text)!r} names the driver {driver!r}; blotter speaks to "
            f"{url.get_backend_name()} through {_DRIVERS[url.get_backend_name()][0]}"
        )
    if url.get_backend_name() == "postgresql" and not url.database:
        raise StoreError(
            f"database URL {_as_given(text)!r} names no database; expected "
            "postgresql+psycopg://user@host/dbname"
        )
    if url.get_backend_name() == "sqlite" and url.query:
        # SQLite's own URI options would open another file than the one blotter locks
        raise StoreError(
            f"database URL {_as_given(text)!r} has query arguments "
            f"({', '.join(sorted(url.query))}); a SQLite URL is the file's path alone: "
            "sqlite:///path/to/blotter.db"
        )
    return url


def shown(text: str) -> str:
    """The database as a user may be shown it: a SQLite file's absolute path, else the URL
    without its password and query (which may hold one). ``StoreError`` if malformed."""
    url = parse_url(text)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return str(database_file(url))
    return _hidden(url)


def _hidden(url: URL) -> str:
    return url.set(query={}).render_as_string(hide_password=True)


def _as_given(text: str) -> str:
    """A URL as given, for a message about it: its password and query (which may hold one)
    hidden, even in a URL that does not parse."""
    try:
        return _hidden(make_url(text))
    except (exc.ArgumentError, ValueError):
        return _PASSWORD.sub(r"\1:***@", text.partition("?")[0])


def open_engines(
    text: str,
    *,
    create: bool = True,
    migrated: bool = False,
    upgrade: bool = True,
    writes: bool = True,
) -> tuple[Engine, Engine]:
    """Return ``(writer, reader)`` engines on a migrated database.

    The writer's transactions take the write lock at BEGIN, so reading the next sequence
    number and appending are one atomic step. ``create=False`` refuses a missing SQLite file;
    ``migrated=True`` trusts a caller that has just migrated this database itself;
    ``upgrade=False`` refuses an older schema rather than migrating it (``migrate``);
    ``writes=False`` for a caller that only reads (a read-only server will do).
    """
    url = parse_url(text)
    if url.get_backend_name() == "sqlite":
        check_sqlite_path(url, create)
    writer = _engine(url, immediate=True)
    reader = _engine(url, immediate=False)
    try:
        if url.get_backend_name() == "postgresql":
            check_postgres(writer, writes=writes)
        if not migrated:
            migrate(writer, upgrade=upgrade)
    except Exception:
        writer.dispose()
        reader.dispose()
        raise
    return writer, reader


def plain_engine(text: str, *, application_name: str = "blotter") -> Engine:
    """An engine on the database at ``text`` for a caller's own statements (no migration);
    on PostgreSQL its sessions carry ``application_name`` (what ``pg_stat_activity`` shows)."""
    return _engine(parse_url(text), immediate=False, application_name=application_name)


def _engine(url: URL, *, immediate: bool, application_name: str = "blotter") -> Engine:
    try:
        if url.get_backend_name() == "postgresql":
            # A server that does not answer must fail within seconds, not hang the desk.
            engine = create_engine(
                url,
                pool_pre_ping=True,
                connect_args={
                    "connect_timeout": 5,
                    # SQL_ASCII's default would hand text back as bytes, which SQLAlchemy's
                    # first look at the server cannot read: the check below then says why
                    "client_encoding": "utf8",
                    "application_name": application_name[:63],
                    # a connection lost on the way (a NAT, a firewall) is noticed in a minute,
                    # not hours later: the desk's lock is a session of its own
                    "keepalives": 1,
                    "keepalives_idle": 30,
                    "keepalives_interval": 10,
                    "keepalives_count": 3,
                },
            )
        else:
            engine = create_engine(url)
    except ModuleNotFoundError as missing:
        raise StoreError(
            f"the driver for {url.drivername} is not installed ({missing.name}); "
            "install blotter with the 'postgres' extra: pip install 'blotter[postgres]'"
        ) from None
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine, immediate=immediate)
    return engine


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below open transactions instead of the driver's implicit ones.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def check_sqlite_path(url: URL, create: bool) -> None:
    """A SQLite file that may be opened: there, or (``create``) its folder made and writable;
    ``StoreError`` otherwise, creating nothing."""
    database = url.database
    if not database or database == ":memory:":
        raise StoreError("an in-memory SQLite database cannot be shared; give a file path")
    path = database_file(url)
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:  # the replay's workers are handed the path as text
        raise StoreError(
            f"{_printable(path)}: the path is not valid UTF-8; expected a path in UTF-8"
        ) from None
    if path.is_dir():
        raise StoreError(f"{path} is a directory; expected a database file")
    if path.exists() and not path.is_file():  # a device, a FIFO (whose open would hang)...
        raise StoreError(f"{path} is not a regular file; expected a database file")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"{path}: no permission to read and write this database")
        if not create and path.stat().st_size == 0:  # SQLite would make it one, unasked
            raise StoreError(f"{path} is an empty file, not a blotter database")
        if not _starts_as_sqlite(path):  # said before a lock file is made beside it
            raise StoreError(f"{path}: not a blotter database (the file is not SQLite)")
        _refuse_foreign_file(path)
        return
    if not create:
        raise StoreError(f"{path}: no such database")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create the directory {path.parent}: {error.strerror}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise StoreError(f"{path.parent}: no permission to create a database in this directory")


def _printable(path: Path) -> str:
    """A path whose bytes are not UTF-8, with those bytes escaped for a line of text."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


_SQLITE_HEADER = b"SQLite format 3\x00"


def _starts_as_sqlite(path: Path) -> bool:
    """Whether the file is empty (SQLite makes it a database) or begins as SQLite's do."""
    with path.open("rb") as file:
        head = file.read(len(_SQLITE_HEADER))
    return head in (b"", _SQLITE_HEADER)


def check_postgres(engine: Engine, *, writes: bool) -> None:
    """Refuse, before anything is written, a PostgreSQL database blotter cannot keep its log
    in: one not in UTF-8 (names and reasons are Unicode, and SQL_ASCII keeps bytes as given)
    and, for a caller that writes, one that refuses writes (a standby, or
    ``default_transaction_read_only``), which the desk would find only at its first order."""
    url = engine.url
    server = _server(url)
    try:
        with engine.connect() as connection:
            encoding = connection.execute(sql_text("SHOW server_encoding")).scalar()
            read_only = connection.execute(sql_text("SHOW transaction_read_only")).scalar()
    except exc.SQLAlchemyError as error:
        raise StoreError(describe(url, error)) from None
    if encoding != "UTF8":
        raise StoreError(
            f"{server} keeps text in {encoding}; blotter needs a UTF8 database "
            "(createdb --encoding=UTF8 --template=template0)"
        )
    if writes and read_only == "on":
        raise StoreError(
            f"{server} is read-only (a standby, or default_transaction_read_only is on); "
            "blotter writes to it"
        )


def migrate(engine: Engine, *, upgrade: bool = True) -> None:
    """Bring the schema to this blotter's head revision; refuse a newer database.

    ``upgrade=False``, for a reader that does not hold the desk's lock (a migration writes,
    and a desk may be working on the database): refuse an older one instead."""
    # Imported here: replay's worker processes open migrated databases and never need Alembic.
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    try:
        with engine.begin() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            if current is None:
                _refuse_foreign(connection)
            if current is not None and current not in {r.revision for r in script.walk_revisions()}:
                raise StoreError(
                    f"this database has schema revision {current}, written by a newer blotter; "
                    f"this blotter knows up to {script.get_current_head()}: upgrade blotter"
                )
            head = script.get_current_head()
            if not upgrade and current != head:
                raise StoreError(
                    f"this database has schema revision {current or 'none'}, older than this "
                    f"blotter's {head}: open it once with blotter (the desk), headless, "
                    "replay or rebuild, which upgrade it"
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except StoreError:
        raise
    except (exc.SQLAlchemyError, CommandError) as error:
        raise StoreError(describe(engine.url, error)) from None


def _refuse_foreign(connection: Connection) -> None:
    """A database without blotter's schema must be empty: blotter does not add its tables to
    another program's data."""
    _refuse_tables(inspect(connection).get_table_names())


_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"


def _refuse_foreign_file(path: Path) -> None:
    """Another program's SQLite file, refused before it is opened for writing: opening it so
    would switch its journal to WAL and leave the desk's lock file beside it."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            names = [row[0] for row in db.execute(_TABLES)]
    except sqlite3.Error:  # unreadable so: the opening says why (damaged, locked, ...)
        return
    if "alembic_version" not in names:
        _refuse_tables(name for name in names if not name.startswith("sqlite_"))


def _refuse_tables(found: Iterable[str]) -> None:
    tables = sorted(found)
    if tables:
        shown_tables = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(
            f"this database holds other tables ({shown_tables}) and no blotter schema; "
            "give blotter a database of its own"
        )


def _server(url: URL) -> str:
    """A PostgreSQL database as a line names it (never with its password)."""
    return f"PostgreSQL at {url.host}:{url.port or 5432}/{url.database}"


def describe(url: URL, error: BaseException) -> str:
    """One line that says what went wrong with the database at ``url``."""
    where = _hidden(url)  # a query may hold a password too
    original = getattr(error, "orig", None) or error
    text = (
        str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    )
    if url.get_backend_name() == "sqlite":
        lowered = text.lower()
        if "file is not a database" in lowered:
            return f"{url.database}: not a blotter database (the file is not SQLite)"
        if "malformed" in lowered or "corrupt" in lowered:
            return f"{url.database}: the database file is damaged ({text})"
        if "unable to open" in lowered or "readonly" in lowered:
            return f"{url.database}: cannot open the database for writing ({text})"
        if "disk i/o" in lowered:
            return f"{url.database}: the database file cannot be read ({text})"
    if isinstance(error, exc.OperationalError) and url.get_backend_name() == "postgresql":
        server = _server(url)
        _, fatal, answer = text.partition("FATAL:")
        if fatal:  # reached: the server said no (no such database or role, a password...)
            return f"{server} refused the connection: {answer.strip()}"
        if text.startswith("connection failed"):  # no session: whatever it says after
            return f"cannot reach {server}: {text}"
        if "statement timeout" in text:
            return f"{server} stopped a statement at its statement_timeout: {text}"
        if "closed the connection" in text or "terminating connection" in text:
            return f"{server} ended the connection: {text}"
        return f"cannot reach {server}: {text}"
    return f"database {where}: {text}"
