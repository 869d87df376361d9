"""Text as given: what a ticket or a person gave is kept whatever its length on PostgreSQL.

A refused ticket is recorded as it came, and a cause names whoever acted: a long account,
client order id or user name overflowed PostgreSQL's varchar columns, the store refused the
write and the OMS stopped. Decimals become text too (a refused ticket's price may be 80
digits long). SQLite keeps any length in any column: nothing changes there. On PostgreSQL
varchar to text rewrites no rows.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Each column, with the length its varchar had.
_WIDENED = {
    "events": {"causation_id": 64},
    "orders": {
        "client_order_id": 64,
        "account": 64,
        "instrument": 32,
        "venue_choice": 32,
        **dict.fromkeys(
            ("quantity", "limit_price", "filled", "leaves", "canceled", "avg_price"), 64
        ),
    },
    "children": dict.fromkeys(("quantity", "filled", "leaves", "canceled", "avg_price"), 64),
    "fills": dict.fromkeys(("quantity", "price", "fee"), 64),
    "positions": dict.fromkeys(("quantity", "cost", "realized_pnl", "fees"), 64),
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in _WIDENED.items():
            for name in columns:
                op.alter_column(table, name, type_=sa.Text())


def downgrade() -> None:
    """Fails, naming the row, if a text no longer fits its old column."""
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in _WIDENED.items():
            for name, length in columns.items():
                op.alter_column(table, name, type_=sa.String(length))
