"""The current schema: one append-only ``events`` table and the projections derived from it.

Migrations in ``migrations/versions`` bring any older database to this shape; a test checks
that the migrated schema and this metadata agree.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

from blotter.domain.values import MAX_NAME


def as_given(length: int) -> TypeEngine[str]:
    """Text as a ticket or a person gave it, kept whatever its length: a refused ticket is
    recorded as it came (an account of 200 characters, a price of 80 digits), and a cause
    names whoever acted. PostgreSQL's column is text; SQLite keeps any length in any column,
    so its declared type stays as the first schema made it."""
    return String(length).with_variant(Text(), "postgresql")


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as text: SQLite's NUMERIC would round it through a float."""

    impl = as_given(64)  # a refused ticket's price may be 80 digits long
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


# SQLite's rowid alias must be INTEGER; PostgreSQL gets a 64-bit sequence number.
Seq = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("stream_id", String(64), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("schema_version", SmallInteger, nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
    Column("actor", String(MAX_NAME), nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("causation_id", as_given(64)),
    Column("payload", LargeBinary, nullable=False),
    UniqueConstraint("stream_id", "stream_version", name="uq_events_stream_version"),
)

streams = Table(
    "streams",
    metadata,
    Column("stream_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_seq", Seq, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("client_order_id", as_given(64), nullable=False),
    Column("account", as_given(64), nullable=False),
    Column("instrument", as_given(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(8), nullable=False),
    Column("time_in_force", String(8), nullable=False),
    Column("venue_choice", as_given(32)),
    Column("quantity", DecimalText, nullable=False),
    Column("limit_price", DecimalText),
    Column("filled", DecimalText, nullable=False),
    Column("leaves", DecimalText, nullable=False),
    Column("canceled", DecimalText, nullable=False),
    Column("avg_price", DecimalText),
    Column("state", String(20), nullable=False),
    Column("venues", String(256), nullable=False),
    Column("reject_reason", Text),
    Column("anomalies", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
)

children = Table(
    "children",
    metadata,
    # Child ids are unique within their order; the order id makes them unique on the desk.
    Column("child_id", String(64), primary_key=True),
    Column("order_id", String(64), primary_key=True),
    Column("client_order_id", String(64), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("venue_order_id", String(64)),
    Column("quantity", DecimalText, nullable=False),
    Column("filled", DecimalText, nullable=False),
    Column("leaves", DecimalText, nullable=False),
    Column("canceled", DecimalText, nullable=False),
    Column("avg_price", DecimalText),
    Column("state", String(20), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

fills = Table(
    "fills",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("child_id", String(64), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("exec_id", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("instrument", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("price", DecimalText, nullable=False),
    Column("fee", DecimalText, nullable=False),
    Column("liquidity", String(8), nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
)

positions = Table(
    "positions",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("instrument", String(32), primary_key=True),
    Column("quantity", DecimalText, nullable=False),
    Column("cost", DecimalText, nullable=False),
    Column("realized_pnl", DecimalText, nullable=False),
    Column("fees", DecimalText, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(128), primary_key=True),
    Column("severity", String(16), nullable=False),
    Column("source", String(32), nullable=False),
    Column("stream_id", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Column("acknowledged", Boolean, nullable=False, default=False),
)

cases = Table(
    "cases",
    metadata,
    Column("stream_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(20), nullable=False),
    Column("assignee", String(MAX_NAME)),
    Column("version", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

PROJECTIONS = (orders, children, fills, positions, alerts, cases)
