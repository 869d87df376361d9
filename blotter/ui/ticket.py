"""The order ticket: a form that checks itself as you type and says what is wrong, where.

The checks are the OMS's own (``check_ticket``, or the OMS's ``precheck``, which adds the kill
switch and the risk rules), so the ticket never disagrees with the OMS; the fields only parse
text into a ``NewOrder``.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QResizeEvent, QValidator
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from blotter.domain.values import (
    Instrument,
    InvalidValue,
    OrderType,
    RoutingStrategy,
    Side,
    TimeInForce,
)
from blotter.oms.commands import NewOrder, Rejection, check_ticket
from blotter.ui.models import decimals_of

AUTO = "auto"
FIELDS = (
    "account",
    "instrument",
    "side",
    "order_type",
    "quantity",
    "limit_price",
    "time_in_force",
    "venue",
    "strategy",
)
_LABELS = {
    "account": "Account",
    "instrument": "Instrument",
    "side": "Side",
    "order_type": "Type",
    "quantity": "Quantity",
    "limit_price": "Limit price",
    "time_in_force": "Time in force",
    "venue": "Venue",
    "strategy": "Router",
    "risk": "Risk",
}
MAX_PRICE = 1e12  # the price box's top: above any instrument's price, never in the way
FIXED = RoutingStrategy.FIXED.value
_STRATEGIES = [s.value for s in RoutingStrategy if s is not RoutingStrategy.FIXED]
# Ticket ids must never repeat across sessions: the OMS answers a repeated id from memory.
_SESSION = uuid.uuid4().hex[:8]
_ticket_numbers = itertools.count(1)
# Commas group thousands and nothing else: "0,5" is no number here, rather than 5.
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")
_GROUPING = "commas only between thousands"
NON_BREAKING_HYPHEN = "\u2011"
_INNER_HYPHEN = re.compile(r"(?<=\w)-(?=\w)")  # BTC-USD, ACC-ALPHA; not "-5" or " - "


def ungrouped(text: str) -> str | None:
    """``text`` without the commas that group its thousands; None if a comma is elsewhere
    (a decimal comma, say, which would make 0,5 into 5)."""
    text = text.strip()
    if "," not in text:
        return text
    return text.replace(",", "") if _GROUPED.fullmatch(text) else None


class PriceBox(QDoubleSpinBox):
    """A limit price box on the instrument's tick grid: shown in the tick's decimals, it also
    takes a few more as typed, so an off-tick price gets the OMS's reason rather than a key
    that does nothing; the arrows step to the next tick on the grid."""

    EXTRA_PLACES = 4  # typed past the tick's decimals before the box stops taking digits

    def __init__(self) -> None:
        super().__init__()
        self.setRange(0, MAX_PRICE)
        self.set_tick(Decimal("0.01"))
        self.refused: str | None = None  # text the box went back from (``fixup``)
        self.lineEdit().textEdited.connect(self._typed)

    def set_tick(self, tick: Decimal) -> None:
        self.tick = tick
        self.tick_places = decimals_of(tick)
        self.setDecimals(self.tick_places + self.EXTRA_PLACES)
        self.setSingleStep(float(tick))

    def validate(self, text: str, pos: int, /) -> tuple[QValidator.State, str, int]:
        """Qt's C locale takes a comma anywhere as grouping (187,50 would be 18750): a comma
        out of place leaves the text unfinished, which the ticket refuses. So does a minus:
        Qt would drop the digits typed after it, without a word."""
        if ungrouped(text) is None or _negative(text):
            return QValidator.State.Intermediate, text, pos
        return super().validate(text, pos)

    def fixup(self, text: str) -> str:
        """Qt's fixup drops every comma (Enter made 195,50 into 19550): a misplaced one stays,
        so the box goes back to its last price; ``refused`` keeps what was typed, for the
        ticket to refuse until the trader types again or a price is set."""
        if ungrouped(text) is None or _negative(text):
            self.refused = text
            return text
        return super().fixup(text)

    def setValue(self, value: float) -> None:
        # a price set for the trader, or by the arrows, replaces the one refused
        self.refused = None
        super().setValue(value)

    def _typed(self) -> None:
        self.refused = None

    def price(self) -> Decimal:
        """The price as typed: in the tick's decimals unless more were typed (whether it is
        on the tick is the OMS's check, which names the tick)."""
        exact = self._decimal(self.value())
        in_tick_places = exact.quantize(Decimal(1).scaleb(-self.tick_places))
        return in_tick_places if in_tick_places == exact else exact.normalize()

    def _decimal(self, value: float) -> Decimal:
        """The decimal the box's float stands for: its shortest repr, not its binary digits
        (123456789012.34 is 123456789012.339996 in the box's decimals)."""
        return Decimal(repr(value)).quantize(Decimal(1).scaleb(-self.decimals()))

    def textFromValue(self, value: float) -> str:
        text = super().textFromValue(value)
        point = self.locale().decimalPoint()
        whole = text.partition(point)[0]
        places = f"{self._decimal(value):f}".partition(".")[2]
        kept = places.rstrip("0").ljust(self.tick_places, "0")
        return f"{whole}{point}{kept}" if kept else whole

    def stepBy(self, steps: int) -> None:
        self.interpretText()  # a price still being typed is the one stepped from
        ticks = self.price() / self.tick
        # from an off-tick price, the first step lands on the grid's next tick that way
        base = ticks.to_integral_value(ROUND_FLOOR if steps > 0 else ROUND_CEILING)
        self.setValue(float((base + steps) * self.tick))
        self.selectAll()  # as a spin box does after a step: typing replaces the new price


class TicketForm(QWidget):
    """The fields of a ticket and, under each, the reason it is refused (if it is)."""

    changed = Signal()

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        venues_listing: Callable[[str], Sequence[str]],
        venue_names: Sequence[str],
        actor: str,
        parent: QWidget | None = None,
        precheck: Callable[[NewOrder], Rejection | None] | None = None,
        reference: Callable[[str], Decimal] | None = None,
    ) -> None:
        super().__init__(parent)
        self._instruments = instruments
        self._reference = reference  # the instrument's price to start a ticket at
        self._venues_listing = venues_listing
        self._venue_names = list(venue_names)
        self._actor = actor
        self._precheck = precheck
        self.account = QLineEdit("ACC-ALPHA")
        self.instrument = QComboBox()
        self.instrument.setEditable(True)
        # what is typed is checked, never made a choice (Enter would add "zzz" to the list)
        self.instrument.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.instrument.addItems(sorted(instruments))
        completer = QCompleter(sorted(instruments), self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.instrument.setCompleter(completer)
        self.side = _combo([s.value for s in Side])
        self.order_type = _combo([OrderType.LIMIT.value, OrderType.MARKET.value])
        self.quantity = QLineEdit("100")
        self.limit_price = PriceBox()
        self.time_in_force = _combo([t.value for t in TimeInForce])
        self.venue = _combo([AUTO, *self._venue_names])
        self.strategy = _combo(_STRATEGIES)
        self._router_choice = self.strategy.currentText()  # kept while a venue is fixed
        self.strategy.setToolTip(
            "split: the best venue, or the top three when none scores 0.80; best: the top "
            "score; sweep: in proportion to the size each venue shows at your limit"
        )
        self.errors = {name: _error_label() for name in (*FIELDS, "risk")}
        self._priced_for: str | None = None  # the instrument whose tick and price are set
        layout = QFormLayout(self)
        for name in FIELDS:
            layout.addRow(_LABELS[name], self._field(name))
            layout.addRow("", self.errors[name])
        layout.addRow("", self.errors["risk"])  # what a risk rule would say, before sending
        self._connect()
        self._instrument_changed()

    def _field(self, name: str) -> QWidget:
        widget: QWidget = getattr(self, name)
        return widget

    def _connect(self) -> None:
        for line in (self.account, self.quantity):
            line.textChanged.connect(self.changed)
        self.instrument.currentTextChanged.connect(self._instrument_changed)
        for combo in (self.side, self.order_type, self.time_in_force, self.strategy):
            combo.currentTextChanged.connect(self.changed)
        self.venue.currentTextChanged.connect(self._venue_changed)  # checked once it is set
        self.order_type.currentTextChanged.connect(self._type_changed)
        self.limit_price.valueChanged.connect(self.changed)
        self.limit_price.lineEdit().textChanged.connect(self.changed)  # blank: no new value

    def _instrument_changed(self) -> None:
        """Tick stepping and decimals follow the instrument; the price starts at the reference
        (not again when the same instrument is typed back: the trader's price stays)."""
        instrument = self._instruments.get(self.instrument.currentText().strip().upper())
        if instrument is not None and instrument.symbol != self._priced_for:
            self._priced_for = instrument.symbol
            self.limit_price.set_tick(instrument.tick_size)
            if self._reference is not None:  # another instrument's price means nothing here
                self.set_price(self._reference(instrument.symbol))
            self._offer_venues(instrument.symbol)
        self.changed.emit()

    def _offer_venues(self, symbol: str) -> None:
        """The venues that list ``symbol``; a venue chosen before that does not stays chosen,
        and its field says why the ticket cannot go (the trader's choice is not undone)."""
        chosen = self.venue.currentText()
        listing = set(self._venues_listing(symbol))
        offered = [AUTO, *(name for name in self._venue_names if name in listing)]
        if chosen not in offered:
            offered.append(chosen)
        self.venue.blockSignals(True)
        self.venue.clear()
        self.venue.addItems(offered)
        self.venue.setCurrentText(chosen)
        self.venue.blockSignals(False)

    def _venue_changed(self) -> None:
        """A venue chosen by the trader is the fixed strategy: the router has no say; back
        to auto, the router chosen before comes back."""
        fixed = self.venue.currentText() != AUTO
        strategy = self.strategy
        strategy.blockSignals(True)
        if fixed:
            if strategy.findText(FIXED) < 0:
                self._router_choice = strategy.currentText()
                strategy.addItem(FIXED)
            strategy.setCurrentText(FIXED)
        elif strategy.findText(FIXED) >= 0:
            strategy.removeItem(strategy.findText(FIXED))
            strategy.setCurrentText(self._router_choice)
        strategy.blockSignals(False)
        strategy.setEnabled(not fixed)
        self.changed.emit()

    def _type_changed(self) -> None:
        self.limit_price.setEnabled(self.order_type.currentText() == OrderType.LIMIT.value)

    def set_price(self, price: Decimal) -> None:
        self.limit_price.setValue(float(price))

    def ticket(self) -> NewOrder | Rejection:
        """The ticket the fields describe, or the first thing wrong with them."""
        try:
            ticket = self._parse()
        except InvalidValue as invalid:
            return Rejection.of_invalid(invalid)
        if self._precheck is not None:
            return self._precheck(ticket) or ticket
        return check_ticket(ticket, self._instruments, self._lists) or ticket

    def _lists(self, venue: str, symbol: str) -> bool | None:
        if venue not in self._venue_names:
            return None
        return venue in self._venues_listing(symbol)

    def _parse(self) -> NewOrder:
        order_type = OrderType(self.order_type.currentText())
        price: Decimal | None = None
        if order_type is OrderType.LIMIT:
            typed = self.limit_price.cleanText().strip()
            if not typed:  # the box keeps its last value
                raise InvalidValue("limit_price", "", "a price for a limit order")
            refused = self.limit_price.refused
            if refused is not None:  # the box went back to its last price from this text
                expected = f"{_price_expected(refused)} ({refused} was not taken)"
                raise InvalidValue("limit_price", refused, expected)
            if not self.limit_price.hasAcceptableInput():  # "-5", ".", "187,5"
                raise InvalidValue("limit_price", typed, _price_expected(typed))
            price = self.limit_price.price()
        venue = self.venue.currentText()
        return NewOrder(
            client_order_id=f"UI-{_SESSION}-{next(_ticket_numbers)}",
            account=self.account.text().strip().upper(),  # one spelling per account
            instrument=self.instrument.currentText().strip().upper(),
            side=Side(self.side.currentText()),
            order_type=order_type,
            quantity=_decimal("quantity", self.quantity.text()),
            limit_price=price,
            time_in_force=TimeInForce(self.time_in_force.currentText()),
            venue=None if venue == AUTO else venue,
            strategy=RoutingStrategy(self.strategy.currentText()),
            actor=self._actor,
        )

    def show_problem(self, rejection: Rejection | None) -> None:
        """The reason next to its field (or under the form when no field is to blame)."""
        for label in self.errors.values():
            label.clear()
            label.hide()  # an empty row would leave a gap under every field
        if rejection is None:
            return
        if rejection.source in ("risk", "kill switch", "oms"):
            label = self.errors["risk"]
            text = f"would be refused: {rejection.reason}"
        else:
            label = self.errors[rejection.field if rejection.field in self.errors else "venue"]
            expected = rejection.expected
            text = f"expected {expected}" if expected else rejection.reason
        label.setText(unbroken(text))
        self._fit_reason(label)  # before it shows: showing it lays the dialog out at once
        label.show()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        for label in self.errors.values():
            if not label.isHidden():
                self._fit_reason(label)

    def _fit_reason(self, label: QLabel) -> None:
        """Give a reason the lines it needs at the fields' width: a form layout sizes a
        wrapped label for a narrower width than it gets, which left a blank line under it."""
        label.setFixedHeight(label.heightForWidth(self.quantity.width()))


class TicketDialog(QDialog):
    """New order: Submit stays disabled while the ticket is refused, and says why."""

    def __init__(self, form: TicketForm, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fitted = -1  # the height its reasons needed when last looked at
        self.setWindowTitle("New order")
        self.setMinimumWidth(420)
        self.form = form
        self.sending = False  # submitted, waiting for the OMS's answer
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)
        self.outcome.setObjectName("outcome")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.submit_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.submit_button.setText("Submit")
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(form)
        layout.addWidget(self.outcome)
        layout.addWidget(self.buttons)
        form.changed.connect(self.validate)
        form.changed.connect(self.outcome.clear)  # the OMS's refusal was of the ticket before
        self.validate()

    def validate(self) -> NewOrder | None:
        """Check the fields now; the ticket if it may be sent."""
        result = self.form.ticket()
        refusal = result if isinstance(result, Rejection) else None
        self.form.show_problem(refusal)
        self.submit_button.setEnabled(refusal is None)
        self._fit_reason()
        return None if isinstance(result, Rejection) else result

    def _fit_reason(self) -> None:
        """Make room for a reason that wraps to more lines (a form layout gives a label the
        height of one line otherwise, and the rest is cut off), and give it back once the
        reason is shorter or gone; a height the operator chose stays."""
        needed = self.needed_height()
        fitted = self.height() == self._fitted  # as its reasons needed, whoever grew it
        if self.height() < needed or (fitted and needed < self.height()):
            self.resize(self.width(), needed)
        self._fitted = needed

    def needed_height(self) -> int:
        """The height the fields and their reasons need at the dialog's width."""
        wrapped = self.heightForWidth(self.width())  # -1 while no reason wraps
        return wrapped if wrapped >= 0 else self.sizeHint().height()

    def show_refusal(self, rejection: Rejection) -> None:
        """The OMS refused it after all (a venue down, say): say so in words."""
        self.outcome.setText(f"Refused: {rejection.reason}")


def _negative(text: str) -> bool:
    return text.strip().startswith("-")


def _price_expected(text: str) -> str:
    return "a positive price" if _negative(text) else f"a price, with {_GROUPING}"


# Digits as a trader types them: not 1e3, 1_000 or other scripts' digits, which Decimal
# takes (and the log would keep 1E+3 as typed).
_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")


def _decimal(field: str, text: str) -> Decimal:
    plain = ungrouped(text)
    if plain is None:
        raise InvalidValue(field, text, f"a number, with {_GROUPING}")
    if not _PLAIN_NUMBER.fullmatch(plain):
        raise InvalidValue(field, text, "a number in digits, e.g. 1,500 or 0.25")
    return Decimal(plain)


def _combo(items: list[str]) -> QComboBox:
    combo = QComboBox()
    combo.addItems(items)
    return combo


def unbroken(text: str) -> str:
    """``text`` with its symbols' and ids' hyphens made non-breaking: a wrapped reason must
    not read ``BTC-`` on one line and ``USD`` on the next."""
    return _INNER_HYPHEN.sub(NON_BREAKING_HYPHEN, text)


def _error_label() -> QLabel:
    label = QLabel()
    label.setObjectName("fieldError")
    label.setWordWrap(True)
    return label
