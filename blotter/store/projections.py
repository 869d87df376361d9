"""Read-model rows derived from the ledger: what the projection tables hold, row by row.

The writer upserts the rows an appended batch touched; ``blotter replay`` derives every row
from scratch with the same functions and compares. One definition serves both.

Enum columns read ``member._value_`` (the documented attribute behind ``value``): on CPython
3.11 ``value`` is a Python-level descriptor, and the writer builds these rows for every event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import Table

from blotter.domain.cases import Case
from blotter.domain.events import Event, Severity
from blotter.domain.ledger import Alert, Changes, Ledger
from blotter.domain.order import ChildOrder, Fill, OrderAggregate
from blotter.domain.positions import Position
from blotter.store import schema

Row = tuple[Any, ...]  # one projection row in its table's column order, in driver types


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def order_row(order: OrderAggregate) -> Row:
    ticket = order.ticket
    assert ticket is not None  # the ledger keeps only orders that were created
    return (
        order.order_id,
        ticket.client_order_id,
        ticket.account,
        ticket.instrument,
        ticket.side._value_,
        ticket.order_type._value_,
        ticket.time_in_force._value_,
        ticket.venue,
        str(order.quantity),
        _text(ticket.limit_price),
        str(order.filled),
        str(order.leaves),
        str(order.canceled),
        _text(order.avg_price),
        order.state._value_,
        ",".join(order.venues),
        order.reject_reason,
        len(order.anomalies),
        order.created_at,
        order.updated_at,
        order.version,
    )


def child_row(order_id: str, child: ChildOrder) -> Row:
    return (
        child.child_id,
        order_id,
        child.client_order_id,
        child.venue,
        child.venue_order_id,
        str(child.quantity),
        str(child.filled),
        str(child.leaves),
        str(child.canceled),
        _text(child.avg_price),
        child.state._value_,
        child.updated_at,
    )


def fill_row(order: OrderAggregate, fill: Fill) -> Row:
    ticket = order.ticket
    assert ticket is not None
    return (
        fill.event_id,
        order.order_id,
        fill.child_id,
        fill.venue,
        fill.exec_id,
        ticket.account,
        ticket.instrument,
        ticket.side._value_,
        str(fill.quantity),
        str(fill.price),
        str(fill.fee),
        fill.liquidity._value_,
        fill.occurred_at,
    )


def position_row(position: Position) -> Row:
    return (
        position.account,
        position.instrument,
        str(position.quantity),
        str(position.cost),
        str(position.realized_pnl),
        str(position.fees),
        position.updated_at,
    )


def position_from_row(row: Any) -> Position:
    position = Position(row.account, row.instrument)
    position.quantity = row.quantity
    position.cost = row.cost
    position.realized_pnl = row.realized_pnl
    position.fees = row.fees
    position.updated_at = row.updated_at
    return position


def stream_row(last: Event) -> Row:
    """The streams table's row for a stream whose latest event is ``last``."""
    return (last.stream_id, type(last.payload).STREAM._value_, last.stream_version, last.seq)


def alert_row(alert: Alert) -> Row:
    return (
        alert.alert_id,
        alert.severity._value_,
        alert.source,
        alert.stream_id,
        alert.message,
        alert.occurred_at,
        alert.acknowledged,
    )


def alert_from_row(row: Any) -> Alert:
    """An alert as the projection stores it (to acknowledge it in a later batch)."""
    return Alert(
        alert_id=row.alert_id,
        severity=Severity(row.severity),
        source=row.source,
        stream_id=row.stream_id,
        message=row.message,
        occurred_at=row.occurred_at,
        acknowledged=bool(row.acknowledged),
    )


def case_row(case: Case) -> Row:
    return (
        case.stream_id,
        case.kind._value_,
        str(case.state),
        case.assignee,
        case.version,
        case.updated_at,
    )


def changed_rows(ledger: Ledger, changes: Changes) -> dict[Table, list[Row]]:
    """The rows to write after a batch: everything the batch touched, each row once."""
    touched = [ledger.orders[order_id] for order_id in changes.orders]
    return {
        schema.orders: [order_row(o) for o in touched if o.ticket is not None],
        schema.children: [
            child_row(oid, ledger.orders[oid].children[cid]) for oid, cid in changes.children
        ],
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


def key_of(table: Table) -> Callable[[Row], Any]:
    """The function that picks a row's primary key out of it."""
    return itemgetter(*[i for i, c in enumerate(table.columns) if c.primary_key])


def keyed(table: Table, rows: Iterable[Row]) -> dict[Any, Row]:
    """Rows by primary key, ready to compare with what the database returns."""
    key = key_of(table)
    return {key(row): row for row in rows}
