"""An order's history reads in words: each event's name as people say it and what it says in
one line, in the instrument's decimals; the stored payload stays in the tooltip."""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtCore import Qt

from blotter.domain.events import (
    AnomalyKind,
    AnomalyRecorded,
    ChildCanceled,
    ChildFill,
    ChildSlice,
    OrderRejected,
    OrderRouted,
    OrderSettlementFailed,
    RoutingDecision,
    Severity,
)
from blotter.domain.values import Liquidity, RoutingStrategy
from blotter.ui.main_window import order_header_text
from blotter.ui.order_history import OrderEventText, refusal_text, slice_label, spoken
from blotter.ui.panels import HistoryColumn, HistoryModel
from blotter.venues.sim.catalog import INSTRUMENTS
from tests.domain.builders import OrderStory

D = Decimal
BY_SYMBOL = {i.symbol: i for i in INSTRUMENTS}


def test_an_event_type_reads_as_words() -> None:
    assert spoken("OrderCreated") == "Order created"
    assert spoken("ChildCancelRejected") == "Child cancel rejected"
    assert spoken("RoutingDecision") == "Routing decision"
    assert spoken("Unknown") == "Unknown"
    assert slice_label("O-1.2") == ".2"


def test_each_step_of_an_order_says_what_happened_in_its_instruments_decimals() -> None:
    story = OrderStory(quantity="100", instrument="AAPL")
    story.add(
        RoutingDecision(strategy=RoutingStrategy.SPLIT, quantity=D(100), reason="split: best")
    )
    story.routed(("1", "XNAS", "60"), ("2", "ARCX", "40"))
    story.live("1")
    story.fill("1", "60", price="187.5")
    story.add(ChildCanceled(child_id="2", reason="on disconnect", returned=True))
    story.add(OrderSettlementFailed(attempt=2, reason="clearing down", gave_up=True))
    text = OrderEventText(BY_SYMBOL)
    text.follow(story.events)
    said = {e.type: text(e) for e in story.events}
    assert said["OrderCreated"] == "BUY 100 AAPL @ 10.00 · LIMIT DAY · ACC-1 · router: split"
    assert said["RoutingDecision"] == "100 · split: best"
    assert said["OrderValidated"] == ""
    assert said["OrderRouted"] == ".1 XNAS 60, .2 ARCX 40"
    assert said["ChildSubmitted"] == ".1"
    assert said["ChildAcknowledged"] == ".1 · venue id V1"
    assert said["ChildFill"] == ".1 · 60 @ 187.50 · fee 0.0100 · TAKER · exec X1"
    assert said["ChildCanceled"] == (
        ".2 · on disconnect · by the venue: its leaves go back to the order"
    )
    assert said["OrderSettlementFailed"] == (
        "attempt 2 · clearing down · no retry: a person must step in"
    )


def test_a_crypto_fill_keeps_its_small_quantity_and_a_late_fill_says_so() -> None:
    story = OrderStory(quantity="0.5", instrument="BTC-USD")
    text = OrderEventText(BY_SYMBOL)
    text.follow(story.events)
    late = story.event(
        ChildFill(
            child_id="A",
            exec_id="CBSE-X-1",
            quantity=D("0.0009"),
            price=D("63998"),
            fee=D("0.023"),
            liquidity=Liquidity.MAKER,
            late=True,
        )
    )
    assert text(late) == (
        ".A · 0.0009 @ 63,998.0 · fee 0.0230 · MAKER · exec CBSE-X-1 · late: the slice was closed"
    )
    anomaly = story.event(
        AnomalyRecorded(
            kind=AnomalyKind.DUPLICATE_EXEC, severity=Severity.WARNING, detail="X1 twice"
        )
    )
    assert text(anomaly) == "WARNING duplicate exec · X1 twice"


def test_a_refusal_names_its_rule_or_field_and_is_escaped_as_html() -> None:
    by_risk = OrderRejected(
        reason="notional 120,000 over the limit",
        source="risk",
        rule="max_order_notional",
        value="120,000",
        expected="at most 100,000",
    )
    assert refusal_text(by_risk).startswith("Refused by risk rule ")
    assert "value 120,000 (at most 100,000). Notional 120,000 over" in refusal_text(by_risk)
    assert "<b>" in refusal_text(by_risk, rich=True)
    by_field = OrderRejected(
        reason="bad", field="instrument", value="<b>X</b>", expected="a listed symbol"
    )
    assert refusal_text(by_field) == (
        "Refused (validation): instrument = <b>X</b>, expected a listed symbol"
    )
    assert "&lt;b&gt;X&lt;/b&gt;" in refusal_text(by_field, rich=True)


def test_the_history_rows_name_events_in_words_and_keep_the_payload_in_the_tooltip(
    qapp: object,
) -> None:
    story = OrderStory.working(quantity="100")
    text = OrderEventText(BY_SYMBOL)
    text.follow(story.events)
    model = HistoryModel(spoken, text)
    model.show(story.events)
    events = [model.index(r, HistoryColumn.EVENT).data() for r in range(model.rowCount())]
    assert events == [
        "Order created",
        "Order validated",
        "Order routed",
        "Child submitted",
        "Child acknowledged",
    ]
    tip = model.index(2, HistoryColumn.EVENT).data(Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("OrderRouted v3 (")
    assert '"venue":"XNAS"' in tip


def test_the_details_header_says_what_of_a_working_order_is_at_no_venue() -> None:
    story = OrderStory(quantity="100", instrument="AAPL")
    story.routed(("1", "XNAS", "60"))
    story.live("1")
    assert "leaves 100 (40 at no venue) · canceled 0" in order_header_text(story.order, BY_SYMBOL)
    rest = ChildSlice(child_id="2", client_order_id="O-1.2", venue="ARCX", quantity=D(40))
    story.add(OrderRouted(slices=(rest,)))
    assert not story.order.anomalies
    assert "leaves 100 · canceled 0" in order_header_text(story.order, BY_SYMBOL)
