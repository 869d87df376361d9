"""Risk in the OMS: refusals recorded with their rule, account restrictions an operator clears."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from blotter.domain.events import ChildExpired
from blotter.domain.risk import RiskConfig, RiskLimits, Rule
from blotter.domain.values import InvalidValue, Side, TimeInForce
from blotter.domain.workflows import AccountState, OrderState
from blotter.oms.manager import exposure_moved
from tests.domain.builders import OrderStory

from .world import World, profile, world

D = Decimal
S = OrderState


def limits(**fields: object) -> RiskConfig:
    return RiskConfig(default=RiskLimits(**fields))  # type: ignore[arg-type]


def account_types(w: World, account: str) -> list[str]:
    return [e.type for e in w.store.read_stream(f"account-{account}")]


async def test_a_risk_refusal_names_the_rule_and_the_numbers_and_sends_nothing(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, risk=limits(max_order_notional=D(5_000))) as w:
        result = await w.submit(w.ticket("600", "10.00"))
        rejection = result.rejection
        assert rejection is not None
        assert (rejection.source, rejection.rule) == ("risk", Rule.MAX_NOTIONAL)
        assert rejection.value == "6,000.00"
        assert rejection.expected == "at most 5,000.00"
        assert "6,000.00" in rejection.reason
        assert "5,000.00" in rejection.reason
        assert w.types(result.order_id) == ["OrderCreated", "OrderValidated", "OrderRejected"]
        refused = w.history(result.order_id)[-1].payload
        assert getattr(refused, "rule", None) == Rule.MAX_NOTIONAL
        assert getattr(refused, "limit", None) == "5,000.00"  # the risk panel's Limit column
        assert w.order(result.order_id).state is S.REJECTED
        assert w.venues["XNAS"].submissions(f"{result.order_id}.1") == 0
        # just under the limit passes
        assert (await w.submit(w.ticket("500", "10.00"))).accepted
        assert [r.order_id for r in w.oms.risk.rejections] == [result.order_id]


async def test_a_market_order_with_no_price_anywhere_is_refused_under_a_notional_limit(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, risk=limits(max_order_notional=D(5_000))) as w:
        result = await w.submit(w.ticket("10", None, side=Side.SELL))
        assert result.rejection is not None
        assert result.rejection.rule == Rule.MAX_NOTIONAL
        assert "reference price" in result.rejection.reason


async def test_the_order_rate_throttle_blocks_the_account_until_an_operator_unblocks_it(
    tmp_path: Path,
) -> None:
    risk = limits(max_orders_per_window=2, rate_window_seconds=60.0)
    async with world(tmp_path, risk=risk) as w:
        working = [await w.submit(w.ticket("1", price)) for price in ("10.00", "10.01")]
        assert all(result.accepted for result in working)
        third = await w.submit(w.ticket("1", "10.02"))
        assert third.rejection is not None
        assert third.rejection.rule == Rule.ORDER_RATE
        assert w.oms.risk.account("ACC-1").state is AccountState.BLOCKED
        # the runaway's working orders are pulled, as the account's kill switch would
        await w.until(lambda: all(w.order(r.order_id).state is S.CANCELED for r in working))
        canceled = w.history(working[0].order_id)
        assert any("account blocked" in str(e.payload) for e in canceled)
        assert account_types(w, "ACC-1") == ["AccountListed", "AccountBlocked"]
        # blocked: even an order the rate would now allow is refused, other accounts trade
        blocked = await w.submit(w.ticket("1", "10.03"))
        assert blocked.rejection is not None
        assert blocked.rejection.rule == Rule.ACCOUNT_BLOCKED
        assert (await w.submit(w.ticket("1", "10.00", account="ACC-2"))).accepted
        assert await w.oms.unblock_account("ACC-1", actor="olga", reason="checked the algo")
        await w.settle()
        cleared = w.store.read_stream("account-ACC-1")[-1]
        assert (cleared.type, cleared.actor) == ("AccountUnblocked", "olga")
        assert cleared.payload.reason == "checked the algo"  # type: ignore[attr-defined]
        assert w.oms.risk.account("ACC-1").state is AccountState.ACTIVE
        assert not await w.oms.unblock_account("ACC-1", actor="olga", reason="again")
        # the unblock starts the count again: the orders that tripped it are not counted
        after = [await w.submit(w.ticket("1", price)) for price in ("10.04", "10.05")]
        assert all(result.accepted for result in after)
        assert w.oms.risk.account("ACC-1").state is AccountState.ACTIVE
        over = await w.submit(w.ticket("1", "10.06"))  # its own third within the window
        assert over.rejection is not None
        assert over.rejection.rule == Rule.ORDER_RATE
        await w.settle()
        await w.crash()
        await w.restart()  # the count's start is folded from the log again
        exposure = w.oms.risk.account("ACC-1").exposure
        assert exposure.rate_counted_from == cleared.occurred_at


async def test_the_account_kill_switch_cancels_its_orders_and_refuses_new_ones(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        mine = await w.submit(w.ticket("100", "9.00"))
        theirs = await w.submit(w.ticket("100", "9.00", account="ACC-2"))
        await w.oms.block_account("ACC-1", actor="olga", reason="runaway algo")
        await w.until(lambda: w.order(mine.order_id).state is S.CANCELED)
        assert w.order(theirs.order_id).state is S.ACKNOWLEDGED
        refused = await w.submit(w.ticket("1", "9.00"))
        assert refused.rejection is not None
        assert refused.rejection.rule == Rule.ACCOUNT_BLOCKED
        blocked = w.store.read_stream("account-ACC-1")[-1]
        assert (blocked.type, blocked.actor) == ("AccountBlocked", "olga")


async def test_a_loss_over_the_limit_puts_the_account_into_reduce_only(tmp_path: Path) -> None:
    async with world(tmp_path, risk=limits(max_loss=D(50))) as w:
        w.sell_liquidity("100", "10.00")
        bought = await w.submit(w.ticket("100", "10.00"))
        await w.until(lambda: w.order(bought.order_id).filled == 100)
        adding = await w.submit(w.ticket("5", "8.00"))  # rests: it would add to the long
        taking = await w.submit(w.ticket("5", "12.00", side=Side.SELL))  # rests: it reduces
        # rests: with the 5 before it, it would take the long 101 to a short 199
        flipping = await w.submit(w.ticket("295", "12.00", side=Side.SELL))
        # the market falls: 100 held at 10.00, marked at 9.00 (mid of 8.99 / 9.01) is -100
        w.venues["XNAS"].add_liquidity("AAPL", Side.BUY, D("8.99"), D("10"))
        w.venues["XNAS"].add_liquidity("AAPL", Side.SELL, D("9.01"), D("10"))
        w.sell_liquidity("1", "9.01")
        dip = await w.submit(w.ticket("1", "9.01"))
        await w.until(lambda: w.order(dip.order_id).filled == 1)
        await w.until(lambda: w.oms.risk.account("ACC-1").state is AccountState.REDUCE_ONLY)
        restricted = w.store.read_stream("account-ACC-1")[-1]
        assert restricted.type == "AccountReduceOnly"
        assert restricted.payload.rule == Rule.MAX_LOSS  # type: ignore[attr-defined]
        # the working orders that would add to the position or flip it go; the one that
        # reduces it stays
        await w.until(lambda: w.order(adding.order_id).state is S.CANCELED)
        await w.until(lambda: w.order(flipping.order_id).state is S.CANCELED)
        assert w.order(taking.order_id).is_working
        assert any("reduce-only" in str(e.payload) for e in w.history(adding.order_id))
        more = await w.submit(w.ticket("1", "9.01"))
        assert more.rejection is not None
        assert more.rejection.rule == Rule.REDUCE_ONLY
        reduce = await w.submit(w.ticket("50", "9.00", side=Side.SELL))
        assert reduce.accepted
        assert await w.oms.clear_reduce_only("ACC-1", actor="olga", reason="loss accepted")
        assert w.oms.risk.account("ACC-1").state is AccountState.ACTIVE


async def test_restrictions_and_positions_survive_a_restart(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.sell_liquidity("100", "10.00")
        bought = await w.submit(w.ticket("100", "10.00"))
        await w.until(lambda: w.order(bought.order_id).filled == 100)
        await w.oms.block_account("ACC-1", actor="olga", reason="end of day")
        await w.settle()
        await w.oms.close()
        await w.restart()
        risk = w.oms.risk.account("ACC-1")
        assert risk.state is AccountState.BLOCKED
        assert risk.exposure.position("AAPL") == 100
        event, blocked = risk.restrictions["blocked"]
        assert (event.actor, blocked.reason) == ("olga", "end of day")
        refused = await w.submit(w.ticket("1", "10.00"))
        assert refused.rejection is not None
        assert refused.rejection.rule == Rule.ACCOUNT_BLOCKED
        # the answer to the same ticket is the same after a restart
        again = await w.submit(w.ticket("1", "10.00", client_order_id=refused.client_order_id))
        assert again == refused
        # and the latest refusals are listed again after one more (for the risk panel), though
        # this session's count is its own
        await w.settle()
        await w.oms.close()
        await w.restart()
        assert [r.order_id for r in w.oms.risk.rejections] == [refused.order_id]
        assert w.oms.risk.refused_by_rule == {}


async def test_a_working_sell_under_the_market_is_valued_at_the_mark_after_a_restart(
    tmp_path: Path,
) -> None:
    """Recovery counted it at its limit, under what the same order counted before."""
    async with world(tmp_path, profile("XNAS"), profile("ARCX")) as w:
        w.venues["XNAS"].add_liquidity("AAPL", Side.BUY, D("9.90"), D(10))
        w.venues["ARCX"].add_liquidity("AAPL", Side.BUY, D("10.20"), D(10))
        w.sell_liquidity("10", "10.40", venue="ARCX")
        w.oms.refresh_marks()
        sell = await w.submit(w.ticket("100", "9.95", side=Side.SELL, venue="XNAS"))
        assert w.order(sell.order_id).is_working  # XNAS bids 9.90 only: it rests there
        assert w.oms.risk.account("ACC-1").exposure.open_notional() == D("1030.00")
        await w.settle()
        await w.oms.close()
        await w.restart()
        mark = w.oms.marks["AAPL"]  # XNAS's mid now has our sell in it: 10.1125
        assert mark > D("9.95")
        valued = w.oms.risk.account("ACC-1").exposure.open_notional()
        assert valued > D("995.00")  # at its limit, as recovery counted it
        assert valued == 100 * mark


async def test_the_duplicate_and_rate_windows_remember_orders_across_a_restart(
    tmp_path: Path,
) -> None:
    """Two orders filled and closed before a restart still count: the same order again is a
    duplicate, and a third within the window is over the rate."""
    windows = limits(
        duplicate_window_seconds=60.0, max_orders_per_window=2, rate_window_seconds=60.0
    )
    async with world(tmp_path, risk=windows) as w:
        w.sell_liquidity("20", "10.00")
        first = await w.submit(w.ticket("10", "10.00", tif=TimeInForce.IOC))
        second = await w.submit(w.ticket("10", "10.01", tif=TimeInForce.IOC))
        await w.until(lambda: not w.order(second.order_id).is_working)
        assert not w.order(first.order_id).is_working
        await w.oms.close()
        await w.restart()
        again = await w.submit(w.ticket("10", "10.00", tif=TimeInForce.IOC))
        assert again.rejection is not None
        assert again.rejection.rule == Rule.DUPLICATE
        third = await w.submit(w.ticket("5", "10.00", tif=TimeInForce.IOC))
        assert third.rejection is not None
        assert third.rejection.rule == Rule.ORDER_RATE


async def test_the_pre_check_says_what_would_refuse_and_records_nothing(tmp_path: Path) -> None:
    async with world(tmp_path, risk=limits(max_order_quantity=D(100))) as w:
        recorded = w.oms.events_recorded
        refusal = w.oms.precheck(w.ticket("101", "10.00"))
        assert refusal is not None
        assert refusal.rule == Rule.MAX_QUANTITY
        assert w.oms.precheck(w.ticket("100", "10.00")) is None
        bad = w.oms.precheck(w.ticket("100", "10.003"))
        assert bad is not None
        assert bad.field == "limit_price"
        assert w.oms.events_recorded == recorded
        assert w.oms.orders == {}


async def test_an_account_blocked_is_a_critical_alert_an_operator_acknowledges(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await w.oms.block_account("ACC-1", actor="olga", reason="runaway algo")
        await w.settle()
        [raised] = [a for a in w.store.latest_alerts() if a["source"] == "account"]
        assert (raised["severity"], raised["message"]) == (
            "critical",
            "blocked by olga: runaway algo",
        )
        await w.oms.acknowledge_alerts([raised["alert_id"]], actor="olga", reason="on it")
        [seen] = [a for a in w.store.latest_alerts() if a["source"] == "account"]
        assert seen["acknowledged"] is True
        desk = w.store.read_stream("desk")[-1]
        assert (desk.type, desk.actor) == ("AlertsAcknowledged", "olga")
        with pytest.raises(InvalidValue, match="actor"):
            await w.oms.acknowledge_alerts([raised["alert_id"]], actor="o" * 200)
        await w.oms.acknowledge_alerts([raised["alert_id"]] * 2, actor="olga")
        twice = w.store.read_stream("desk")[-1]
        assert twice.payload.alert_ids == (raised["alert_id"],)  # type: ignore[attr-defined]


def test_a_late_fill_on_a_closed_slice_of_a_working_order_moves_the_exposure() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "50"), ("B", "ARCX", "50"))
    story.live("A", "B")
    story.add(ChildExpired(child_id="A", reason="the venue's session ended"))
    order = story.order
    filled, leaves = order.filled, order.leaves
    assert not exposure_moved(order, filled, leaves)
    story.fill("A", "20", exec_id="XNAS-late")  # B still works: the order's leaves stay 50
    assert (order.leaves, order.is_working) == (leaves, True)
    assert exposure_moved(order, filled, leaves)
