"""Escalation alerts name their order: "order 9193...6c1: the client asks why it is still
working", where they said only the reason, on a list whose stream column shows the case.

The alerts projection is derived from the log, and the fold now words these alerts so: the
alerts stored before are worded again here, from their EscalationOpened events, so that a
replay check of an older database still matches without a rebuild. Only those alerts change.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# An escalation's alert has its EscalationOpened event's id (the ledger's case alerts do).
_OPENED = sa.text(
    "SELECT a.alert_id, e.payload FROM alerts a JOIN events e ON e.event_id = a.alert_id "
    "WHERE e.type = 'EscalationOpened'"
)
_REWORD = sa.text("UPDATE alerts SET message = :message WHERE alert_id = :alert_id")


def upgrade() -> None:
    """Kept apart from the code that folds (blotter.domain.ledger.escalation_alert_text),
    which may change after this revision: these words are this revision's."""
    connection = op.get_bind()
    reworded = [
        {"alert_id": alert_id, "message": _worded(bytes(payload))}
        for alert_id, payload in connection.execute(_OPENED)
    ]
    if reworded:
        connection.execute(_REWORD, reworded)


def downgrade() -> None:
    connection = op.get_bind()
    reworded = [
        {"alert_id": alert_id, "message": _reason(json.loads(bytes(payload)))}
        for alert_id, payload in connection.execute(_OPENED)
    ]
    if reworded:
        connection.execute(_REWORD, reworded)


def _worded(payload: bytes) -> str:
    opened = json.loads(payload)
    return f"order {opened['order_id']}: {_reason(opened)}"


def _reason(opened: dict[str, object]) -> str:
    return str(opened.get("reason") or "EscalationOpened")
