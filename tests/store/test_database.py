"""What a database's failure is called, in the one line a command prints."""

from __future__ import annotations

import pytest
from sqlalchemy import exc
from sqlalchemy.engine import make_url

from blotter.store.database import describe

SERVER = make_url("postgresql+psycopg://u:secret@db.example:5433/desk")


@pytest.mark.parametrize(
    ("said", "line"),
    [
        (
            'connection failed: FATAL:  database "desk" does not exist',
            'PostgreSQL at db.example:5433/desk refused the connection: database "desk" does',
        ),
        (
            "canceling statement due to statement timeout",
            "PostgreSQL at db.example:5433/desk stopped a statement at its statement_timeout",
        ),
        (
            "server closed the connection unexpectedly",
            "PostgreSQL at db.example:5433/desk ended the connection",
        ),
        (
            "terminating connection due to administrator command",
            "PostgreSQL at db.example:5433/desk ended the connection",
        ),
        ("connection refused", "cannot reach PostgreSQL at db.example:5433/desk"),
        (  # no session yet: something else answered on the port
            "connection failed: server closed the connection unexpectedly",
            "cannot reach PostgreSQL at db.example:5433/desk",
        ),
    ],
)
def test_a_server_s_answer_is_told_from_no_answer(said: str, line: str) -> None:
    """A statement timeout or a killed session was called 'cannot reach' the server."""
    described = describe(SERVER, exc.OperationalError("SELECT 1", {}, Exception(said)))
    assert described.startswith(line)
    assert "secret" not in described
