"""Routing and risk in the real window: the decision behind an order, the ticket's pre-check."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from blotter.domain.events import OrderCreated, RoutingDecision, VenueScore
from blotter.domain.risk import Rule
from blotter.domain.values import RoutingStrategy
from blotter.ui.routing_panel import (
    COLUMN,
    SIDE_BY_SIDE_WIDTH,
    DecisionModel,
    RoutingPanel,
    ranked_venues,
)
from blotter.ui.theme import muted_color

from .conftest import Session
from .helpers import aapl_ticket
from .test_main_window import resting, state_of

D = Decimal
TOOLTIP = Qt.ItemDataRole.ToolTipRole


def test_the_routing_panel_shows_every_venue_s_scores_and_the_chart_adds_up(
    session: Session, qtmodeltester: ModelTester
) -> None:
    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        result = await oms.submit(resting(1))
        await session.until(lambda: oms.idle)
        await session.until(lambda: window.orders.rowCount() == 1)
        window.select_order(result.order_id)
        routing = window.routing
        await session.until(lambda: routing.decisions.count() == 1)
        qtmodeltester.check(routing.model)
        assert "route: " in routing.decisions.item(0).text()
        venues = [routing.model.index(r, 0).data() for r in range(routing.model.rowCount())]
        assert set(venues) == set(window.desk.gateways)  # every venue, the excluded ones too
        tips = {
            routing.model.index(r, 0).data(): routing.model.index(r, 0).data(TOOLTIP)
            for r in range(routing.model.rowCount())
        }
        excluded = {venue for venue, tip in tips.items() if tip}
        assert excluded == {"CBSE"}  # the crypto venue does not list AAPL
        assert tips["CBSE"] == "CBSE took no part: does not list AAPL"
        assert routing.model.index(0, 0).data(Qt.ItemDataRole.ForegroundRole) is None
        muted = next(r for r in range(routing.model.rowCount()) if tips[venues[r]])
        colored = routing.model.index(muted, 1).data(Qt.ItemDataRole.ForegroundRole)
        assert colored.name() == muted_color(dark=True)
        window.toggle_theme.trigger()  # light: the dark theme's grey is 3.1:1 on white
        colored = routing.model.index(muted, 1).data(Qt.ItemDataRole.ForegroundRole)
        assert colored.name() == muted_color(dark=False)
        window.toggle_theme.trigger()
        align = Qt.ItemDataRole.TextAlignmentRole
        header = routing.model.headerData
        horizontal = Qt.Orientation.Horizontal
        assert header(COLUMN["total"], horizontal, align) & Qt.AlignmentFlag.AlignRight
        assert header(COLUMN["venue"], horizontal, align) & Qt.AlignmentFlag.AlignLeft
        # and under the table, for all the excluded at once
        assert routing.excluded.text() == "Took no part: CBSE does not list AAPL"
        assert routing.excluded.isVisible()
        totals = {
            routing.model.index(r, 0).data(): float(routing.model.index(r, COLUMN["total"]).data())
            for r in range(routing.model.rowCount())
            if routing.model.index(r, 0).data() not in excluded
        }
        drawn = dict(zip(routing.chart.venues, routing.chart.heights, strict=True))
        assert set(drawn) == set(totals)
        for venue, total in totals.items():
            assert drawn[venue] == pytest.approx(total, abs=0.006)  # shown to 2 places
        allocated = sum(
            D(routing.model.index(r, COLUMN["allocation"]).data() or "0")
            for r in range(routing.model.rowCount())
        )
        assert allocated == 10
        # the venues given the order lead, then the others by score; the excluded come last
        rows = [
            (
                D(routing.model.index(r, COLUMN["allocation"]).data() or "0"),
                float(routing.model.index(r, COLUMN["total"]).data() or 0),
                bool(routing.model.index(r, 0).data(TOOLTIP)),
            )
            for r in range(routing.model.rowCount())
        ]
        assert rows == sorted(rows, key=lambda row: (row[2], -row[0], -row[1]))
        assert rows[0][0] > 0
        assert routing.chart.venues == [v for v in venues if v not in excluded]  # same order

    session.run(scenario())


def test_at_the_default_layout_the_routing_table_shows_every_score_and_input(
    session: Session,
) -> None:
    """Docked beside the fills, the panel is too narrow for the table and the chart side by
    side: the chart goes under it, and every column is in view, none cut."""

    async def scenario() -> None:
        window = await session.open()
        window.show_panel("routing")
        result = await window.desk.oms.submit(resting(1))
        await session.until(lambda: window.orders.rowCount() == 1)
        window.select_order(result.order_id)
        routing = window.routing
        await session.until(lambda: routing.decisions.count() == 1)
        await session.until(lambda: routing.split.orientation() is Qt.Orientation.Vertical)
        table, header = routing.table, routing.table.horizontalHeader()
        last = routing.model.columnCount() - 1
        await session.until(
            lambda: (
                header.sectionViewportPosition(last) + header.sectionSize(last)
                <= table.viewport().width()
            )
        )
        assert table.horizontalScrollBar().maximum() == 0  # nothing off the edge to scroll to

    session.run(scenario())


def test_a_narrow_routing_panel_puts_the_chart_under_the_table_and_keeps_its_decisions(
    qtbot: QtBot,
) -> None:
    panel = RoutingPanel({}, 0.8)
    qtbot.addWidget(panel)
    panel.resize(SIDE_BY_SIDE_WIDTH + 200, 400)
    panel.show()
    qtbot.waitUntil(lambda: panel.split.orientation() is Qt.Orientation.Horizontal)
    panel.resize(SIDE_BY_SIDE_WIDTH - 200, 160)  # docked beside the fills, in a short dock
    qtbot.waitUntil(lambda: panel.split.orientation() is Qt.Orientation.Vertical)
    rows = panel.decisions.fontMetrics().height()
    assert panel.decisions.height() >= 2 * rows  # two decisions stay readable
    panel.resize(SIDE_BY_SIDE_WIDTH + 10, 400)
    qtbot.waitUntil(lambda: panel.split.orientation() is Qt.Orientation.Horizontal)


def test_the_ticket_routes_by_the_chosen_strategy_and_a_named_venue_is_fixed(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        dialog = window.open_ticket()
        form = dialog.form
        assert form.strategy.currentText() == "split"
        form.venue.setCurrentText("ARCX")
        assert (form.strategy.currentText(), form.strategy.isEnabled()) == ("fixed", False)
        form.venue.setCurrentText("auto")
        assert form.strategy.isEnabled()
        assert form.strategy.findText("fixed") == -1
        form.strategy.setCurrentText("best")
        form.quantity.setText("5")
        form.set_price(D("180.00"))
        QTest.mouseClick(dialog.submit_button, Qt.MouseButton.LeftButton)
        oms = window.desk.oms
        await session.until(lambda: len(oms.orders) == 1)
        order_id = next(iter(oms.orders))
        await session.until(lambda: len(window.desk.store.read_stream(order_id)) >= 3)
        created = window.desk.store.read_stream(order_id)[0].payload
        assert isinstance(created, OrderCreated)
        assert created.strategy is RoutingStrategy.BEST

    session.run(scenario())


def test_the_ticket_says_which_risk_rule_would_refuse_it_before_it_is_sent(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        dialog, form = aapl_ticket(window)
        form.quantity.setText("10")
        form.set_price(D("100.00"))  # 47% under the market: outside the 10% collar
        risk = form.errors["risk"]
        assert "would be refused" in risk.text()
        assert "100.00" in risk.text()
        assert not dialog.submit_button.isEnabled()
        form.set_price(D("180.00"))
        assert risk.isHidden()
        assert dialog.submit_button.isEnabled()
        assert window.desk.oms.orders == {}  # the pre-check records nothing

    session.run(scenario())


def test_a_refused_order_s_details_show_the_rule_and_the_numbers(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        huge = msgspec.structs.replace(resting(1), quantity=D(200_000))
        result = await oms.submit(huge)
        assert result.rejection is not None
        assert result.rejection.rule == Rule.MAX_QUANTITY
        await session.until(lambda: window.orders.rowCount() == 1)
        window.select_order(result.order_id)
        await session.until(lambda: window.refusal.isVisible())
        text = window.refusal.text()
        assert "Max order quantity" in text
        assert "200,000" in text
        assert "100,000" in text
        assert state_of(window, result.order_id).value == "REJECTED"
        assert "refused before any route" in window.routing.empty.text()

    session.run(scenario())


def scored(venue: str, total: float, allocation: int = 50) -> VenueScore:
    return VenueScore(
        venue=venue,
        health="UP",
        price=D("9.50"),
        liquidity=D(100),
        latency_ms=1.0,
        success_rate=1.0,
        price_score=total,
        liquidity_score=total,
        speed_score=total,
        reliability_score=total,
        total=total,
        allocation=D(allocation),
        excluded="",
    )


def test_venues_that_score_alike_are_listed_as_the_router_ranks_them_by_name() -> None:
    decision = RoutingDecision(
        strategy=RoutingStrategy.SPLIT,
        quantity=D(1000),
        reason="split: best score 0.55 < 0.80, across DRKP, ARCX, XNAS",
        venues=(scored("DRKP", 0.55, 372), scored("XNAS", 0.46, 314), scored("ARCX", 0.46, 314)),
    )
    assert [v.venue for v in ranked_venues(decision)] == ["DRKP", "ARCX", "XNAS"]


def test_a_total_just_under_the_split_threshold_reads_as_the_decision_s_reason_says(
    qapp: object,
) -> None:
    """0.7996 under a threshold of 0.80: "0.80" in the table would contradict the reason."""
    decision = RoutingDecision(
        strategy=RoutingStrategy.SPLIT,
        quantity=D(100),
        reason="split: best score 0.7996 < 0.80, across XNAS, ARCX",
        venues=(scored("XNAS", 0.7996), scored("ARCX", 0.61)),
        weights=(0.4, 0.3, 0.2, 0.1),
        attempt=0,
    )
    model = DecisionModel(0.8)
    model.show(decision, None)
    totals = [model.index(row, COLUMN["total"]).data() for row in range(model.rowCount())]
    assert totals == ["0.7996", "0.61"]
    assert model.index(0, COLUMN["price_score"]).data() == "0.80"  # a component: no threshold
