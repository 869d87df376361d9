"""Alerts of a halt, an account's block or reduce-only and a venue's fall say what happened:
"trading halted by olga: runaway algo", "blocked by risk: ...", "DOWN: heartbeat lost" (the
alert's stream names the account or venue), where they said only the reason ("runaway
algo"), which does not tell a halt from a block.

The alerts projection is derived from the log, and the fold now words these alerts so: the
alerts stored before are worded again here, from their events, so that a replay check of an
older database still matches without a rebuild. Only those alerts change.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Such an alert has its event's id (the ledger's case alerts do).
_STOPS = sa.text(
    "SELECT a.alert_id, e.type, e.actor, e.payload FROM alerts a "
    "JOIN events e ON e.event_id = a.alert_id WHERE e.type IN "
    "('KillSwitchEngaged', 'AccountBlocked', 'AccountReduceOnly', 'VenueDown', 'VenueDegraded')"
)
_REWORD = sa.text("UPDATE alerts SET message = :message WHERE alert_id = :alert_id")


def upgrade() -> None:
    """Kept apart from the code that folds (blotter.domain.ledger.stop_alert_text), which may
    change after this revision: these words are this revision's."""
    _reword(_worded)


def downgrade() -> None:
    _reword(lambda kind, _actor, reason: reason or kind)


Words = Callable[[str, str, str], str]  # (event type, actor, reason) -> message


def _reword(words: Words) -> None:
    connection = op.get_bind()
    reworded = [
        {"alert_id": alert_id, "message": words(kind, actor, _reason(payload))}
        for alert_id, kind, actor, payload in connection.execute(_STOPS)
    ]
    if reworded:
        connection.execute(_REWORD, reworded)


def _reason(payload: bytes) -> str:
    return str(json.loads(bytes(payload)).get("reason") or "")


def _worded(kind: str, actor: str, reason: str) -> str:
    said = {
        "KillSwitchEngaged": f"trading halted by {actor}",
        "AccountBlocked": f"blocked by {actor}",
        "AccountReduceOnly": f"reduce-only by {actor}",
        "VenueDown": "DOWN",
        "VenueDegraded": "DEGRADED",
    }[kind]
    return f"{said}: {reason}" if reason else said
