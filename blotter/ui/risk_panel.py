"""The risk panel: each account's limits and their usage as gauges, the restrictions in force
(who, when, why) with the buttons that lift them, and the latest risk rejections.

The panel reads the OMS's risk desk and decides nothing: the gauges are ``RiskDesk.usage``, the
restrictions ``AccountRisk.restrictions``, and every button is an OMS command that records the
operator and the reason asked for here. ``refresh`` re-reads the desk in place (a few dozen
accounts, the last 50 rejections): rows are updated, never rebuilt, so the selection stays.
"""

from __future__ import annotations

import asyncio
import functools
import html
import math
from bisect import bisect_left
from collections.abc import Coroutine, Iterable, Mapping
from decimal import Decimal
from enum import IntEnum
from typing import Any, NamedTuple

import shiboken6
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QMessageBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from blotter.domain.risk import CENT, LimitUsage, RiskLimits, Rule, format_number, money_text
from blotter.domain.workflows import ACCOUNT, AccountState
from blotter.oms.commands import CancelScope
from blotter.oms.manager import OrderManager
from blotter.oms.risk import AccountRisk, RiskDesk, RiskRejection
from blotter.ui.models import NO_INDEX, Index, clock_time, header_data
from blotter.ui.panels import (
    LEFT,
    RIGHT,
    Operation,
    OperatorAction,
    OperatorActions,
    Run,
    ask,
    bold_font,
    cancels_text,
    pane,
    queue_table,
    selected_data,
    set_text,
    split,
    stretch_last,
    table,
    tell,
    text_line,
    title,
    utc_seconds,
)

GAUGE_ROLE = Qt.ItemDataRole.UserRole + 10  # the column's LimitUsage, or None
ACCOUNT_ROLE = Qt.ItemDataRole.UserRole + 11  # the row's account, in every column
WARN_AT = 0.75  # a gauge turns amber at 75 % of its limit, red at 100 %


class RiskColors:
    """What a theme gives the panel: state colors, gauge colors, the gauge's track."""

    def __init__(
        self,
        *,
        active: str,
        blocked: str,
        reduce_only: str,
        ok: str,
        warn: str,
        over: str,
        track: str,
        muted: str,
        fill_alpha: int,
    ) -> None:
        self.states = {
            AccountState.ACTIVE: QColor(active),
            AccountState.BLOCKED: QColor(blocked),
            AccountState.REDUCE_ONLY: QColor(reduce_only),
            AccountState.BLOCKED_REDUCE_ONLY: QColor(blocked),
        }
        self.ok, self.warn, self.over = QColor(ok), QColor(warn), QColor(over)
        self.track = QColor(track)
        self.muted = QColor(muted)
        self.fill_alpha = fill_alpha

    def gauge(self, fraction: float) -> QColor:
        """Green under 75 %, amber under 100 %, red at or over the limit."""
        if fraction < WARN_AT:
            return self.ok
        return self.warn if fraction < 1.0 else self.over


DARK_RISK = RiskColors(
    active="#7bd88f",
    blocked="#ff6b6b",
    reduce_only="#e6c75a",
    ok="#3fb950",
    warn="#d29922",
    over="#f85149",
    track="#2b333d",
    muted="#8a93a0",
    fill_alpha=150,
)
LIGHT_RISK = RiskColors(
    active="#1e7b34",
    blocked="#b3261e",
    reduce_only="#8a6d00",
    ok="#2da44e",
    warn="#d4a72c",
    over="#e5534b",
    track="#e6eaef",
    muted="#57606a",
    fill_alpha=140,
)


# --- formatting ---------------------------------------------------------------------------

_SCALES = ((Decimal(10**3), "K"), (Decimal(10**6), "M"), (Decimal(10**9), "B"))
_TRILLION = Decimal(10**12)
_TENTH = Decimal("0.1")
_SMALL = Decimal("0.0001")  # a crypto lot; a loss of cents reads 0.1735


def compact(value: Decimal, *, exact: bool = False) -> str:
    """A gauge's number, short: ``12.3M``, ``100.0K``, ``950``, ``0.25`` (exact in tooltips);
    ``exact``: under 1,000 as it is (a position's quantity, on its lot), not rounded."""
    return _shown(value, exact)[0]


def _shown(value: Decimal, exact: bool) -> tuple[str, Decimal]:
    """``compact``'s text, and the value it reads as."""
    magnitude = abs(value)
    if magnitude < 1000:
        shown = value if exact else value.quantize(CENT if magnitude >= 1 else _SMALL)
        return format_number(shown), shown
    for scale, suffix in _SCALES:
        scaled = (value / scale).quantize(_TENTH)
        if abs(scaled) < 1000:  # 999,960 reads 1.0M, not 1000.0K
            return f"{scaled}{suffix}", scaled * scale
    trillions = (value / _TRILLION).quantize(_TENTH)
    return f"{trillions}T", trillions * _TRILLION


def percent(fraction: float) -> str:
    """Whole percents, except that just under or just over a limit never reads as 100%."""
    if math.isinf(fraction):
        return "∞ %"
    shown = f"{fraction * 100:.0f}"
    if shown == "100" and fraction < 1:
        return f"{math.floor(fraction * 1000) / 10:.1f}%"
    if shown == "100" and fraction > 1:
        return f"{math.ceil(fraction * 1000) / 10:.1f}%"
    return f"{shown}%"


def gauge_text(usage: LimitUsage) -> str:
    """``12.3M / 50.0M  25%``; a position gauge names its instrument first. Figures that
    would read as the same number while they differ (99,960 and 100,000: 100.0K; 999.999
    and 1,000: "1,000" and "1.0K") are given whole."""
    exact = usage.rule is Rule.POSITION
    (used, used_reads), (limit, limit_reads) = _shown(usage.used, exact), _shown(usage.limit, exact)
    if used_reads == limit_reads and usage.used != usage.limit:
        used, limit = _whole(usage)
    text = f"{used} / {limit}  {percent(usage.fraction)}"
    return f"{usage.instrument}  {text}" if usage.instrument else text


def _whole(usage: LimitUsage) -> tuple[str, str]:
    """Used and limit in full: money to the cent, toward the side of the limit it is on; a
    position's quantity as it is (on its lot)."""
    if usage.rule is Rule.POSITION:  # one with nothing held names no instrument
        return format_number(usage.used), format_number(usage.limit)
    return money_text(usage.used, usage.limit), format_number(usage.limit, 2)


def gauge_tip(usage: LimitUsage) -> str:
    what = usage.rule.label + (f" ({usage.instrument})" if usage.instrument else "")
    used, limit = _whole(usage)
    return f"{what}: {used} of {limit} ({percent(usage.fraction)})"


def rule_label(rule: str | None) -> str:
    """A rule's name for people; an unknown rule (a newer build's) as it was recorded."""
    if rule is None:
        return ""
    try:
        return Rule(rule).label
    except ValueError:
        return rule


def limit_lines(limits: RiskLimits) -> list[tuple[str, str]]:
    """Every limit that is set, labelled as its rule is, formatted for people."""
    count, window = limits.max_orders_per_window, limits.rate_window_seconds
    restricted = ", ".join(sorted(limits.restricted))
    duplicate = limits.duplicate_window_seconds
    entries = (
        (Rule.MAX_QUANTITY, _number(limits.max_order_quantity)),
        (Rule.MAX_NOTIONAL, _number(limits.max_order_notional, 2)),
        (Rule.PRICE_COLLAR, _collar(limits)),
        (Rule.CREDIT, _number(limits.credit_limit, 2)),
        (Rule.POSITION, _positions(limits)),
        (Rule.DUPLICATE, None if duplicate is None else f"within {duplicate:g} s"),
        (Rule.ORDER_RATE, None if count is None else f"{count:,} per {window:g} s"),
        (Rule.RESTRICTED, restricted),
        (Rule.MAX_LOSS, _number(limits.max_loss, 2)),
    )
    return [(rule.label, text) for rule, text in entries if text]


def _number(value: Decimal | None, decimals: int = 0) -> str | None:
    return None if value is None else format_number(value, decimals)


def _positions(limits: RiskLimits) -> str | None:
    """``100,000 (BTC-USD 50, ETH-USD 1,000)``: the limit of every other instrument first."""
    named = ", ".join(f"{s} {format_number(q)}" for s, q in sorted(limits.position_limits.items()))
    default = _number(limits.position_limit)
    if default is None:
        return named
    return f"{default} ({named})" if named else default


def _collar(limits: RiskLimits) -> str | None:
    """``10%``, ``5 ticks``, or both: the tighter of them holds."""
    percent, ticks = limits.price_collar_percent, limits.price_collar_ticks
    parts = [
        text
        for text in (
            None if percent is None else f"{format_number(percent)}%",
            None if ticks is None else f"{ticks:,} ticks",
        )
        if text is not None
    ]
    return " or ".join(parts) + (", the tighter" if len(parts) == 2 else "")


# --- the accounts -------------------------------------------------------------------------


class AccountColumn(IntEnum):
    ACCOUNT = 0
    STATE = 1
    CREDIT = 2
    LOSS = 3
    POSITION = 4
    RESTRICTION = 5


ACCOUNT_HEADERS = (
    "Account",
    "State",
    "Credit used / limit",
    "Loss / max loss",
    "Nearest position / limit",
    "Restriction in force",
)
_GAUGES = {
    AccountColumn.CREDIT: Rule.CREDIT,
    AccountColumn.LOSS: Rule.MAX_LOSS,
    AccountColumn.POSITION: Rule.POSITION,
}
_GAUGE_COLUMNS = frozenset(_GAUGES)


class Restriction(NamedTuple):
    """One restriction in force, as the event that put it there says."""

    kind: str  # "Blocked" or "Reduce-only"
    rule: str
    actor: str
    at: int
    reason: str
    limit: str
    value: str


class AccountRow(NamedTuple):
    """What one row shows; compared with the last one to repaint only what changed."""

    state: AccountState
    gauges: dict[Rule, LimitUsage]
    restrictions: tuple[Restriction, ...]


_KINDS = (("blocked", "Blocked"), ("reduce_only", "Reduce-only"))


def account_row(risk: RiskDesk, account: AccountRisk, marks: Mapping[str, Decimal]) -> AccountRow:
    restrictions = []
    for key, kind in _KINDS:
        found = account.restrictions.get(key)
        if found is not None:
            event, payload = found
            restrictions.append(
                Restriction(
                    kind,
                    rule_label(payload.rule),
                    event.actor,
                    event.occurred_at,
                    payload.reason,
                    payload.limit,
                    payload.value,
                )
            )
    gauges = {u.rule: u for u in risk.usage(account.account, marks)}
    return AccountRow(account.state, gauges, tuple(restrictions))


def _worth_showing(account: AccountRisk) -> bool:
    """An account with a restrictions stream, a position or open orders. (The ticket's
    pre-check makes the desk know every account name as it is typed: those stay hidden.)"""
    exposure = account.exposure
    return account.listed or bool(exposure.positions) or exposure.open_notional() != 0


class AccountsModel(QAbstractTableModel):
    """One row per account, in name order: state, gauges and the restrictions in force."""

    def __init__(
        self,
        risk: RiskDesk,
        marks: Mapping[str, Decimal],
        colors: RiskColors = DARK_RISK,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._risk = risk
        self._marks = marks
        self.colors = colors
        self._names: list[str] = []
        self._rows: dict[str, AccountRow] = {}

    @property
    def accounts(self) -> list[str]:
        return list(self._names)

    def refresh(self) -> None:
        """New accounts get their row in name order; changed rows are repainted."""
        risk = self._risk
        seen = set(self._rows)
        fresh = {n for n, a in risk.accounts.items() if n not in seen and _worth_showing(a)}
        fresh |= {r.account for r in risk.rejections if r.account not in seen}
        for name in sorted(fresh):
            row = bisect_left(self._names, name)
            self.beginInsertRows(QModelIndex(), row, row)
            self._names.insert(row, name)
            self._rows[name] = account_row(risk, risk.account(name), self._marks)
            self.endInsertRows()
        last = self.columnCount() - 1
        for row, name in enumerate(self._names):
            if name in fresh:
                continue
            now = account_row(risk, risk.account(name), self._marks)
            if now != self._rows[name]:
                self._rows[name] = now
                self.dataChanged.emit(self.index(row, 0), self.index(row, last))

    def row_of(self, account: str) -> QModelIndex:
        try:
            return self.index(self._names.index(account), 0)
        except ValueError:
            return QModelIndex()

    def state_of(self, account: str) -> AccountState | None:
        row = self._rows.get(account)
        return None if row is None else row.state

    def restrictions_of(self, account: str) -> tuple[Restriction, ...]:
        row = self._rows.get(account)
        return () if row is None else row.restrictions

    def rowCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(self._names)

    def columnCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(ACCOUNT_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.ToolTipRole
            and orientation is Qt.Orientation.Horizontal
            and section == AccountColumn.RESTRICTION
        ):
            return "rule · by whom · since (UTC) · why; the selected account's in full below"
        return header_data(ACCOUNT_HEADERS, _GAUGE_COLUMNS, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        name = self._names[index.row()]
        row = self._rows[name]
        column = AccountColumn(index.column())
        gauge = row.gauges.get(_GAUGES[column]) if column in _GAUGE_COLUMNS else None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(name, row, column, gauge)
        if role == ACCOUNT_ROLE:
            return name
        if role == GAUGE_ROLE:
            return gauge
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return RIGHT if column in _GAUGE_COLUMNS else LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(name, row, column, gauge)
        return self._style(row, column, gauge, role)

    def _text(
        self, name: str, row: AccountRow, column: AccountColumn, gauge: LimitUsage | None
    ) -> str:
        if column == AccountColumn.ACCOUNT:
            return name
        if column == AccountColumn.STATE:
            return row.state.value
        if column in _GAUGE_COLUMNS:
            return "no limit" if gauge is None else gauge_text(gauge)
        return "  |  ".join(
            f"{r.rule} · {r.actor} · {clock_time(r.at)[:8]} · {r.reason}" for r in row.restrictions
        )

    def _tip(
        self, name: str, row: AccountRow, column: AccountColumn, gauge: LimitUsage | None
    ) -> str | None:
        if column == AccountColumn.ACCOUNT:
            lines = limit_lines(self._risk.limits(name))
            return "\n".join([f"Limits of {name}:", *(f"{k}: {v}" for k, v in lines)])
        if column in _GAUGE_COLUMNS:
            return None if gauge is None else gauge_tip(gauge)
        if column == AccountColumn.STATE or not row.restrictions:
            return None
        return "\n".join(restriction_text(r) for r in row.restrictions)

    def _style(
        self, row: AccountRow, column: AccountColumn, gauge: LimitUsage | None, role: int
    ) -> Any:
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == AccountColumn.STATE:
                return self.colors.states[row.state]
            if column in _GAUGE_COLUMNS and gauge is None:
                return self.colors.muted
        restricted = row.state is not AccountState.ACTIVE
        if role == Qt.ItemDataRole.FontRole and column == AccountColumn.STATE and restricted:
            return bold_font()
        return None


def restriction_text(restriction: Restriction) -> str:
    """``Blocked (Order rate: 3 over 2) by system at 2026-01-01 14:03:27 UTC: why``."""
    numbers = (
        f": {restriction.value} over {restriction.limit}"
        if restriction.value and restriction.limit
        else ""
    )
    return (
        f"{restriction.kind} ({restriction.rule}{numbers}) by {restriction.actor} at "
        f"{utc_seconds(restriction.at)}: {restriction.reason or '(no reason given)'}"
    )


class GaugeDelegate(QStyledItemDelegate):
    """A bar filled to ``used / limit`` under the gauge's text: green, amber at 75 %, red at
    or over the limit. Cells without a limit are drawn as text."""

    def __init__(self, colors: RiskColors, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.colors = colors

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        usage = index.data(GAUGE_ROLE)
        if not isinstance(usage, LimitUsage):
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text, opt.text = opt.text, ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        bar = QRectF(opt.rect.adjusted(3, 3, -3, -3))
        fraction = usage.fraction
        color = QColor(self.colors.gauge(fraction))
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.colors.track)
        painter.drawRoundedRect(bar, 3, 3)
        filled = QRectF(bar)
        filled.setWidth(bar.width() * min(max(fraction, 0.0), 1.0))
        if filled.width() > 0:
            color.setAlpha(self.colors.fill_alpha)
            painter.setBrush(color)
            painter.drawRoundedRect(filled, 3, 3)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = opt.palette.ColorRole.HighlightedText if selected else opt.palette.ColorRole.Text
        painter.setPen(opt.palette.color(role))
        painter.setFont(opt.font)
        painter.drawText(bar.adjusted(6, 0, -6, 0), int(RIGHT), text)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(hint.width() + 12, hint.height())


# --- the rejections -----------------------------------------------------------------------


class RejectionColumn(IntEnum):
    TIME = 0
    ORDER_ID = 1
    ACCOUNT = 2
    INSTRUMENT = 3
    RULE = 4
    VALUE = 5
    LIMIT = 6
    REASON = 7


REJECTION_HEADERS = (
    "Time (UTC)",
    "Order id",
    "Account",
    "Instrument",
    "Rule",
    "Value",
    "Limit",
    "Reason",
)
_REJECTION_NUMERIC = frozenset({RejectionColumn.VALUE, RejectionColumn.LIMIT})


class RejectionsModel(QAbstractTableModel):
    """The desk's latest risk rejections (``RiskDesk.rejections``), newest first."""

    def __init__(self, rejections: Iterable[RiskRejection], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source = rejections
        self._rows: list[RiskRejection] = []  # oldest first, as the desk keeps them

    def refresh(self) -> None:
        """New rejections on top; those the desk has forgotten leave at the bottom."""
        now = list(self._source)
        old = self._rows
        if len(now) == len(old) and (not now or now[-1] is old[-1]):
            return
        last = next((i for i in range(len(now) - 1, -1, -1) if old and now[i] is old[-1]), None)
        if last is None and old:  # nothing shown is left: start over
            self.beginResetModel()
            self._rows = now
            self.endResetModel()
            return
        added = len(now) - 1 - last if last is not None else len(now)
        dropped = len(old) + added - len(now)
        if dropped > 0:  # the oldest, at the bottom
            self.beginRemoveRows(QModelIndex(), len(old) - dropped, len(old) - 1)
            del self._rows[:dropped]
            self.endRemoveRows()
        if added > 0:
            self.beginInsertRows(QModelIndex(), 0, added - 1)
            self._rows.extend(now[len(now) - added :])
            self.endInsertRows()

    def rejection_at(self, row: int) -> RiskRejection:
        return self._rows[len(self._rows) - 1 - row]

    def rowCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(REJECTION_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        return header_data(REJECTION_HEADERS, _REJECTION_NUMERIC, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        column = RejectionColumn(index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return RIGHT if column in _REJECTION_NUMERIC else LEFT
        rejection = self.rejection_at(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(rejection, column)
        if role == ACCOUNT_ROLE:
            return rejection.account
        if role == Qt.ItemDataRole.ToolTipRole and column == RejectionColumn.REASON:
            return rejection.refused.reason
        if role == Qt.ItemDataRole.ToolTipRole and column == RejectionColumn.TIME:
            return utc_seconds(rejection.at)
        return None

    @staticmethod
    def _text(rejection: RiskRejection, column: RejectionColumn) -> str:
        refused = rejection.refused
        texts = {
            RejectionColumn.TIME: lambda: clock_time(rejection.at),
            RejectionColumn.ORDER_ID: lambda: rejection.order_id,
            RejectionColumn.ACCOUNT: lambda: rejection.account,
            RejectionColumn.INSTRUMENT: lambda: rejection.instrument,
            RejectionColumn.RULE: lambda: rule_label(refused.rule),
            RejectionColumn.VALUE: lambda: refused.value or "",
            RejectionColumn.LIMIT: lambda: refused.limit or _limit(refused.expected),
            RejectionColumn.REASON: lambda: refused.reason,
        }
        return texts[column]()


def _limit(expected: str | None) -> str:
    """The limit a refused value was held to, from a refusal recorded before refusals named
    it; the column's title says it is a maximum."""
    if expected is None:
        return ""
    return expected.removeprefix("at most ")


# --- the operator's actions -----------------------------------------------------------------

AccountOperation = Operation[OrderManager, Coroutine[Any, Any, Any]]  # (oms, account, why, actor)
# Each question is formatted with: what (the account).
OPERATIONS = (
    AccountOperation(
        "Block account…",
        "blockAccount",
        "AccountBlocked",
        "Block account",
        "Why block {what}?",
        lambda oms, account, why, actor: oms.block_account(account, actor=actor, reason=why),
    ),
    AccountOperation(
        "Unblock…",
        "unblockAccount",
        "AccountUnblocked",
        "Unblock account",
        "{what} may trade again. Reason:",
        lambda oms, account, why, actor: oms.unblock_account(account, actor=actor, reason=why),
    ),
    AccountOperation(
        "Clear reduce-only…",
        "clearReduceOnly",
        "AccountReduceOnlyCleared",
        "Clear reduce-only",
        "{what} may increase its exposure again. Reason:",
        lambda oms, account, why, actor: oms.clear_reduce_only(account, actor=actor, reason=why),
    ),
)


# What an operation that changes nothing says (unblocking an account that is not blocked).
_UNCHANGED = {
    "AccountUnblocked": "{account} was not blocked: nothing changed",
    "AccountReduceOnlyCleared": "{account} was not reduce-only: nothing changed",
}
_DONE = {
    "AccountBlocked": "{account} blocked",
    "AccountUnblocked": "{account} unblocked: it may trade again",
    "AccountReduceOnlyCleared": "{account} reduce-only cleared",
}


def outcome_text(trigger: str, account: str, result: object) -> str:
    """What an operation on ``account`` did, from the OMS command's answer: a block's cancels
    of the account's open orders, or whether a restriction was lifted."""
    if isinstance(result, list):
        return f"{_DONE[trigger].format(account=account)}: {cancels_text(result)}"
    return (_DONE if result else _UNCHANGED)[trigger].format(account=account)


# --- the panel ----------------------------------------------------------------------------


class RiskPanel(QWidget):
    """Accounts with their gauges and restrictions, the actions that lift them, rejections."""

    def __init__(
        self,
        oms: OrderManager,
        run: Run,
        actor: str,
        dark: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("riskPanel")
        self._oms = oms
        self._run = run
        self._actor = actor
        colors = DARK_RISK if dark else LIGHT_RISK
        self.accounts = AccountsModel(oms.risk, oms.marks, colors, self)
        self.rejections = RejectionsModel(oms.risk.rejections, self)
        self._gauges = GaugeDelegate(colors, self)
        self._build_actions()
        self.accounts_view = self._accounts_view()
        self.rejections_view = table(self.rejections, "riskRejectionsView")
        stretch_last(self.rejections_view)
        self.details = text_line("riskDetails", selectable=True)
        self.rejections_note = text_line("riskRejectionsNote", wrap=False)
        self._layout()
        self.set_theme(dark)
        self.refresh()

    # --- building -------------------------------------------------------------------------

    def _build_actions(self) -> None:
        self._actions = OperatorActions(self, OPERATIONS, ACCOUNT, self.act)
        self.block, self.unblock, self.clear = self._actions.entries
        self.block_action, self.block_button = self.block.action, self.block.button
        self.unblock_button = self.unblock.button
        self.clear_action, self.clear_button = self.clear.action, self.clear.button

    def _accounts_view(self) -> QTableView:
        view = queue_table(
            self.accounts, "riskAccountsView", self._actions.menu, self._selection_changed
        )
        stretch_last(view)
        for column in _GAUGE_COLUMNS:
            view.setItemDelegateForColumn(column, self._gauges)
        return view

    def _layout(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(title("Accounts"))
        buttons.addStretch(1)
        for entry in self._actions.entries:
            buttons.addWidget(entry.button)
        view = self.accounts_view
        top = pane((0, 0, 0, 0), buttons, view, self.details, grow=view)
        rejections = self.rejections_view
        heading = QHBoxLayout()
        heading.addWidget(title("Latest risk rejections"))
        heading.addSpacing(8)
        heading.addWidget(self.rejections_note, 1)
        bottom = pane((0, 4, 0, 0), heading, rejections, grow=rejections)
        split(self, top, bottom, (2, 1))

    # --- reading the desk ---------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the risk desk: cheap, in place, the selection kept."""
        self.accounts.refresh()
        self.rejections.refresh()
        none = "none yet: every order so far passed the risk checks"
        set_text(self.rejections_note, "" if self.rejections.rowCount() else none)
        self._selection_changed()

    def set_theme(self, dark: bool) -> None:
        colors = DARK_RISK if dark else LIGHT_RISK
        self.accounts.colors = colors
        self._gauges.colors = colors
        self.rejections_note.setStyleSheet(f"color: {colors.muted.name()};")
        self.accounts_view.viewport().update()
        self.rejections_view.viewport().update()

    def selected_account(self) -> str | None:
        account = selected_data(self.accounts_view, ACCOUNT_ROLE)
        return account if isinstance(account, str) else None

    def select_account(self, account: str) -> None:
        self.accounts_view.setCurrentIndex(self.accounts.row_of(account))

    def _selection_changed(self) -> None:
        account = self.selected_account()
        self._actions.follow(None if account is None else self.accounts.state_of(account))
        text = "Select an account to see its limits." if account is None else self._details(account)
        set_text(self.details, text)

    def _details(self, account: str) -> str:
        limits = " · ".join(
            f"{label} {value}" for label, value in limit_lines(self._oms.risk.limits(account))
        )
        lines = [
            f"<b>{r.kind}</b>{html.escape(restriction_text(r).removeprefix(r.kind))}"
            for r in self.accounts.restrictions_of(account)
        ]
        lines.append(f"<b>{html.escape(account)}</b> limits: {html.escape(limits or 'none')}")
        return "<br>".join(lines)

    # --- the operator's actions ---------------------------------------------------------

    def act(self, entry: OperatorAction[OrderManager, Coroutine[Any, Any, Any]]) -> None:
        """Ask the operator why (a block is confirmed first: it cancels the account's open
        orders); on a reason (not Cancel, not blank), run the OMS's command, which records the
        operator and the reason."""
        account = self.selected_account()
        if account is None or (entry is self.block and not self._block_confirmed(account)):
            return
        operation = entry.operation
        reason = ask(self, operation, what=account)
        if reason is None:
            return
        coroutine = operation.perform(self._oms, account, reason, self._actor)
        task = self._run(coroutine, f"{operation.title.lower()} {account}")
        task.add_done_callback(functools.partial(self._command_done, operation.trigger, account))

    def _block_confirmed(self, account: str) -> bool:
        live = len(self._oms.live_orders(CancelScope(account=account)))
        cancels = (
            f"This cancels its {live} open order{'' if live == 1 else 's'} and refuses"
            if live
            else "It has no open order; this refuses"
        )
        # No is the default, as for Cancel all: Enter must not block an account's book
        answer = QMessageBox.question(
            self,
            "Block account",
            f"Block {account}? {cancels} its new orders until an operator unblocks it.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _command_done(self, trigger: str, account: str, task: asyncio.Task[Any]) -> None:
        """Show what the command did; a failure is the window's runner's to show."""
        if not shiboken6.isValid(self):  # the window may have gone meanwhile
            return
        self.refresh()
        if not task.cancelled() and task.exception() is None:
            tell(self, outcome_text(trigger, account, task.result()), 10_000)
