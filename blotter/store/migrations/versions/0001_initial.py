"""The first schema: the event log, the stream index and the projections.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from blotter.store.schema import Seq

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _decimal(name: str, nullable: bool = False) -> sa.Column[object]:
    # as DecimalText stored them then: a migration keeps the schema of its day (0002 widens)
    return sa.Column(name, sa.String(64), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", Seq, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("type", sa.String(64), nullable=False, index=True),
        sa.Column("schema_version", sa.SmallInteger, nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("causation_id", sa.String(64)),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("stream_id", "stream_version", name="uq_events_stream_version"),
    )
    op.create_table(
        "streams",
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("last_seq", Seq, nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), primary_key=True, index=True),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("instrument", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(8), nullable=False),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        sa.Column("venue_choice", sa.String(32)),
        _decimal("quantity"),
        _decimal("limit_price", nullable=True),
        _decimal("filled"),
        _decimal("leaves"),
        _decimal("canceled"),
        _decimal("avg_price", nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("venues", sa.String(256), nullable=False),
        sa.Column("reject_reason", sa.Text),
        sa.Column("anomalies", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "children",
        sa.Column("child_id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("venue_order_id", sa.String(64)),
        _decimal("quantity"),
        _decimal("filled"),
        _decimal("leaves"),
        _decimal("canceled"),
        _decimal("avg_price", nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "fills",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(64), nullable=False, index=True),
        sa.Column("child_id", sa.String(64), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("exec_id", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("instrument", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        _decimal("quantity"),
        _decimal("price"),
        _decimal("fee"),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "positions",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("instrument", sa.String(32), primary_key=True),
        _decimal("quantity"),
        _decimal("cost"),
        _decimal("realized_pnl"),
        _decimal("fees"),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(128), primary_key=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("acknowledged", sa.Boolean, nullable=False),
    )
    op.create_table(
        "cases",
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("assignee", sa.String(128)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "cases",
        "alerts",
        "positions",
        "fills",
        "children",
        "orders",
        "streams",
        "events",
    ):
        op.drop_table(table)
