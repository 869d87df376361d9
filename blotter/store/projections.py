"""Read-model rows derived from the ledger: what the projection tables hold, row by row.

The writer upserts the rows an appended batch touched; ``blotter replay`` derives every row
from scratch with the same functions and compares. One definition serves both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from blotter.domain.cases import Case
from blotter.domain.ledger import Alert, Changes, Ledger
from blotter.domain.order import ChildOrder, Fill, OrderAggregate
from blotter.domain.positions import Position
from blotter.store import schema

Row = dict[str, Any]


def order_row(order: OrderAggregate) -> Row:
    ticket = order.ticket
    assert ticket is not None  # the ledger keeps only orders that were created
    return {
        "order_id": order.order_id,
        "client_order_id": ticket.client_order_id,
        "account": ticket.account,
        "instrument": ticket.instrument,
        "side": ticket.side.value,
        "order_type": ticket.order_type.value,
        "time_in_force": ticket.time_in_force.value,
        "venue_choice": ticket.venue,
        "quantity": order.quantity,
        "limit_price": ticket.limit_price,
        "filled": order.filled,
        "leaves": order.leaves,
        "canceled": order.canceled,
        "avg_price": order.avg_price,
        "state": order.state.value,
        "venues": ",".join(order.venues),
        "reject_reason": order.reject_reason,
        "anomalies": len(order.anomalies),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "version": order.version,
    }


def child_row(order_id: str, child: ChildOrder) -> Row:
    return {
        "child_id": child.child_id,
        "order_id": order_id,
        "client_order_id": child.client_order_id,
        "venue": child.venue,
        "venue_order_id": child.venue_order_id,
        "quantity": child.quantity,
        "filled": child.filled,
        "leaves": child.leaves,
        "canceled": child.canceled,
        "avg_price": child.avg_price,
        "state": child.state.value,
        "updated_at": child.updated_at,
    }


def fill_row(order: OrderAggregate, fill: Fill) -> Row:
    ticket = order.ticket
    assert ticket is not None
    return {
        "event_id": fill.event_id,
        "order_id": order.order_id,
        "child_id": fill.child_id,
        "venue": fill.venue,
        "exec_id": fill.exec_id,
        "account": ticket.account,
        "instrument": ticket.instrument,
        "side": ticket.side.value,
        "quantity": fill.quantity,
        "price": fill.price,
        "fee": fill.fee,
        "liquidity": fill.liquidity.value,
        "occurred_at": fill.occurred_at,
    }


def position_row(position: Position) -> Row:
    return {
        "account": position.account,
        "instrument": position.instrument,
        "quantity": position.quantity,
        "cost": position.cost,
        "realized_pnl": position.realized_pnl,
        "fees": position.fees,
        "updated_at": position.updated_at,
    }


def position_from_row(row: Any) -> Position:
    position = Position(row.account, row.instrument)
    position.quantity = row.quantity
    position.cost = row.cost
    position.realized_pnl = row.realized_pnl
    position.fees = row.fees
    position.updated_at = row.updated_at
    return position


def alert_row(alert: Alert) -> Row:
    return {
        "alert_id": alert.alert_id,
        "severity": alert.severity.value,
        "source": alert.source,
        "stream_id": alert.stream_id,
        "message": alert.message,
        "occurred_at": alert.occurred_at,
        "acknowledged": False,
    }


def case_row(case: Case) -> Row:
    return {
        "stream_id": case.stream_id,
        "kind": case.kind.value,
        "state": str(case.state),
        "assignee": case.assignee,
        "version": case.version,
        "updated_at": case.updated_at,
    }


def changed_rows(ledger: Ledger, changes: Changes) -> dict[Table, list[Row]]:
    """The rows to write after a batch: everything the batch touched, each row once."""
    touched = [ledger.orders[order_id] for order_id in changes.orders]
    return {
        schema.orders: [order_row(o) for o in touched if o.ticket is not None],
        schema.children: [child_row(o.order_id, c) for o in touched for c in o.children.values()],
        schema.fills: [fill_row(ledger.orders[oid], fill) for oid, fill in changes.fills],
        schema.positions: [position_row(ledger.positions[key]) for key in changes.positions],
        schema.alerts: [alert_row(alert) for alert in changes.alerts],
        schema.cases: [case_row(ledger.cases[sid]) for sid in changes.cases],
    }


def all_rows(ledger: Ledger) -> dict[Table, Iterator[Row]]:
    """Every projection row the ledger implies, for a comparison with what is stored."""
    orders = [o for o in ledger.orders.values() if o.ticket is not None]
    return {
        schema.orders: (order_row(o) for o in orders),
        schema.children: (child_row(o.order_id, c) for o in orders for c in o.children.values()),
        schema.fills: (fill_row(o, f) for o in orders for f in o.fills),
        schema.positions: (position_row(p) for p in ledger.positions.values()),
        schema.alerts: (alert_row(a) for a in ledger.alerts),
        schema.cases: (case_row(c) for c in ledger.cases.values()),
    }


# Rows that never change once written are inserted; the rest are upserted.
_APPEND_ONLY = frozenset({"fills", "alerts"})


def write_rows(connection: Connection, rows: dict[Table, list[Row]]) -> None:
    for table, table_rows in rows.items():
        if table_rows:
            connection.execute(_upsert(connection, table), table_rows)


def _upsert(connection: Connection, table: Table) -> Any:
    dialect = sqlite if connection.dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    if table.name in _APPEND_ONLY:
        return statement.on_conflict_do_nothing(index_elements=keys)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)


def comparable(value: Any) -> Any:
    """How a value compares across a round trip: decimals by their stored text."""
    return str(value) if isinstance(value, Decimal) else value


def keyed(table: Table, rows: Iterable[Row]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Rows by primary key, values in column order, ready to compare."""
    keys = [c.name for c in table.primary_key.columns]
    names = [c.name for c in table.columns]
    return {tuple(row[k] for k in keys): tuple(comparable(row[n]) for n in names) for row in rows}
