"""How each venue has answered our recent orders: the smart router's reliability input."""

from __future__ import annotations

from collections import deque

from blotter.domain.events import ChildAcknowledged, ChildRejected, Payload

WINDOW = 200  # answers remembered per venue: recent enough to notice a venue going bad


class VenueAnswers:
    """The share of a venue's recent answers that accepted the order (acknowledged it)."""

    __slots__ = ("_accepted", "_answers")

    def __init__(self, window: int = WINDOW) -> None:
        self._answers: deque[bool] = deque(maxlen=window)
        self._accepted = 0

    def answer(self, accepted: bool) -> None:
        answers = self._answers
        if len(answers) == answers.maxlen and answers[0]:
            self._accepted -= 1
        answers.append(accepted)
        self._accepted += accepted

    @property
    def success_rate(self) -> float | None:
        """Accepted over answered; None before the first answer (the router stays neutral)."""
        return self._accepted / len(self._answers) if self._answers else None


def accepted(payload: Payload) -> bool | None:
    """True for a venue's acceptance of a child, False for its refusal, None for the rest."""
    kind = type(payload)
    if kind is ChildAcknowledged:
        return True
    if kind is ChildRejected:
        return False
    return None
