"""Reconciliation, pure: differences, the verdict at and around the tolerances, and a pass that
leaves every position agreeing with its venue or waiting in an open break."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blotter.domain.cases import Case
from blotter.domain.clock import ManualClock
from blotter.domain.events import (
    BreakAcknowledged,
    BreakAdjustmentReversed,
    BreakEscalated,
    BreakExplained,
    BreakOurFigureAccepted,
    BreakResolved,
    BreakVenueFigureAccepted,
    Event,
    Severity,
    StreamKind,
    make_event,
)
from blotter.domain.ids import SequentialIds
from blotter.domain.reconciliation import (
    BreakBook,
    Difference,
    Explained,
    InFlight,
    Key,
    OpenOrder,
    Plan,
    ReconciliationConfig,
    Tolerance,
    Verdict,
    differences,
    judge,
    order_finding,
    plan_pass,
    to_compare,
)
from blotter.domain.values import InvalidValue, Side
from blotter.domain.workflows import BreakState

D = Decimal
CONFIG = ReconciliationConfig(default=Tolerance(quantity=D(5), notional=D(1000)))


def gap(ours: str, theirs: str, instrument: str = "AAPL") -> Difference:
    return Difference(
        venue="XNAS", account="ACC-1", instrument=instrument, ours=D(ours), theirs=D(theirs)
    )


@pytest.mark.parametrize(
    ("theirs", "verdict"),
    [("104", Verdict.AUTO_CORRECT), ("105", Verdict.AUTO_CORRECT), ("106", Verdict.ESCALATE)],
)
def test_the_quantity_tolerance_under_at_and_over(theirs: str, verdict: Verdict) -> None:
    assert judge(gap("100", theirs), CONFIG.default, None, 0, CONFIG)[0] is verdict


@pytest.mark.parametrize(
    ("mark", "verdict"),
    [("199.99", Verdict.AUTO_CORRECT), ("200", Verdict.AUTO_CORRECT), ("200.01", Verdict.ESCALATE)],
)
def test_the_notional_tolerance_under_at_and_over_at_the_mark(mark: str, verdict: Verdict) -> None:
    found, reason = judge(gap("100", "95"), CONFIG.default, D(mark), 0, CONFIG)
    assert found is verdict
    if verdict is Verdict.ESCALATE:
        assert "worth 1,000.05 at 200.01, over the tolerance of 1,000" in reason


def test_a_mark_that_is_a_mean_of_mids_reads_to_four_places() -> None:
    mark = (D("412.29") + D("412.30") + D("412.30")) / 3  # 412.2966666666666666666666667
    _verdict, reason = judge(gap("100", "97"), CONFIG.default, mark, 0, CONFIG)
    assert "worth 1,236.89 at 412.2967, over the tolerance of 1,000" in reason


def test_the_reason_names_the_position_and_the_numbers() -> None:
    _verdict, reason = judge(gap("100", "103"), CONFIG.default, D(10), 0, CONFIG)
    assert reason == (
        "AAPL at XNAS for ACC-1: ours 100, theirs 103: off by 3, within tolerance: "
        "ours set to theirs"
    )


def test_the_reason_groups_thousands_as_every_other_figure_of_the_desk() -> None:
    big = Difference(
        venue="CBSE",
        account="ACC-1",
        instrument="BTC-USD",
        ours=D("1250.5"),
        theirs=D("1200"),
    )
    _verdict, reason = judge(big, CONFIG.default, D("64000.5"), 0, CONFIG)
    assert "ours 1,250.5, theirs 1,200: off by -50.5, over the tolerance of 5" in reason
    _verdict, reason = judge(gap("100", "95"), CONFIG.default, D("1250"), 0, CONFIG)
    assert "worth 6,250.00 at 1,250, over the tolerance of 1,000" in reason


def test_a_position_corrected_twice_already_is_escalated() -> None:
    assert judge(gap("100", "101"), CONFIG.default, None, 1, CONFIG)[0] is Verdict.AUTO_CORRECT
    verdict, reason = judge(gap("100", "101"), CONFIG.default, None, 2, CONFIG)
    assert verdict is Verdict.ESCALATE
    assert reason.endswith("corrected 2 times already")


def test_tolerances_per_instrument_and_refused_when_negative() -> None:
    config = ReconciliationConfig(instruments={"BTC-USD": Tolerance(quantity=D("0.001"))})
    assert config.tolerance_for("BTC-USD").quantity == D("0.001")
    assert config.tolerance_for("AAPL") == config.default
    with pytest.raises(InvalidValue, match="quantity"):
        Tolerance(quantity=D(-1))


def test_differences_are_where_ours_and_theirs_disagree_a_missing_one_being_zero() -> None:
    a, b, c = ("XNAS", "A", "AAPL"), ("XNAS", "A", "MSFT"), ("ARCX", "A", "AAPL")
    found = differences({a: D(10), b: D(5)}, {a: D(10), c: D(2)}, [a, b, c])
    assert [(d.key, d.delta) for d in found] == [(c, D(2)), (b, D(-5))]


# --- a pass, folded as the OMS folds it --------------------------------------------------------


class Desk:
    """Runs passes the way the reconciler does, recording the breaks' events in a book."""

    def __init__(self) -> None:
        self.book = BreakBook()
        self.events: list[Event] = []
        self._clock, self._ids = ManualClock(), SequentialIds("break")

    def run(self, fills: dict[Key, Decimal], theirs: dict[Key, Decimal]) -> Plan:
        ours = self.book.ours(fills)
        self.book.observe(ours, theirs, {*ours, *theirs})  # as the reconciler does
        plan = plan_pass(ours, theirs, {*ours, *theirs}, self.book, CONFIG, {"AAPL": D(10)})
        for explained in plan.explain:
            since = self.book.cases[explained.break_id].version
            self._record(explained.break_id, [BreakExplained(reversed=explained.reversed)], since)
        for finding in plan.open:
            break_id = self._ids.new_id()
            self._record(break_id, finding.payloads())
            self.book.compared.add(break_id)  # the pass compared it: at the figures it opened
        return plan

    def restarted(self) -> BreakBook:
        """The book a new session folds from the same events (what passes saw is not kept)."""
        book, cases = BreakBook(), dict[str, Case]()
        for event in self.events:
            case = cases.setdefault(event.stream_id, Case(event.stream_id, StreamKind.BREAK))
            case.apply(event)
            book.apply(case, event)
        return book

    def _record(self, break_id: str, payloads: list[object], after: int = 0) -> None:
        case = self.book.cases.get(break_id) or Case(break_id, StreamKind.BREAK)
        for version, payload in enumerate(payloads, start=after + 1):
            event = make_event(
                payload,  # type: ignore[arg-type]
                stream_id=break_id,
                stream_version=version,
                actor="system",
                correlation_id=break_id,
                clock=self._clock,
                ids=self._ids,
            )
            case.apply(event)
            self.book.apply(case, event)
            self.events.append(event)


positions = st.dictionaries(
    st.tuples(st.sampled_from(["XNAS", "ARCX"]), st.sampled_from(["A", "B"]), st.just("AAPL")),
    st.integers(-500, 500).map(D),
    max_size=4,
)
drifts = st.lists(st.integers(-30, 30).map(D), min_size=4, max_size=4)


@given(fills=positions, drift=drifts)
def test_after_a_pass_every_position_agrees_or_has_an_open_break_and_replay_agrees(
    fills: dict[Key, Decimal], drift: list[Decimal]
) -> None:
    keys = [*sorted(fills), ("XNAS", "C", "AAPL")]  # one position only the venue knows of
    theirs = {key: fills.get(key, D(0)) + step for key, step in zip(keys, drift, strict=False)}
    desk = Desk()
    desk.run(fills, theirs)
    ours = desk.book.ours(fills)
    for key in {*fills, *theirs}:
        agrees = ours.get(key, D(0)) == theirs.get(key, D(0))
        assert agrees or desk.book.open_on(key), key
    assert desk.run(fills, theirs) == Plan(explain=[], open=[])  # nothing new a second time
    replayed = BreakBook()
    cases: dict[str, Case] = {}
    for event in desk.events:
        case = cases.setdefault(event.stream_id, Case(event.stream_id, StreamKind.BREAK))
        case.apply(event)
        replayed.apply(case, event)
    assert replayed.adjustments == desk.book.adjustments
    assert sorted(replayed.open_breaks()) == sorted(desk.book.open_breaks())
    assert replayed.corrections == desk.book.corrections


def test_a_break_whose_difference_goes_away_is_explained_unless_it_adjusted() -> None:
    key = ("XNAS", "A", "AAPL")
    desk = Desk()
    [large] = desk.run({key: D(100)}, {key: D(150)}).open
    assert large.verdict is Verdict.ESCALATE
    plan = desk.run({key: D(150)}, {key: D(150)})  # the fill we were missing arrived
    assert len(plan.explain) == 1
    small = Desk()
    small.run({key: D(100)}, {key: D(102)})  # corrected: ours is theirs now
    assert small.run({key: D(100)}, {key: D(102)}).explain == []
    [corrected] = small.book.cases.values()
    assert corrected.state is BreakState.AUTO_CORRECTED


def test_a_correction_that_a_late_fill_makes_unneeded_is_taken_back() -> None:
    key = ("XNAS", "A", "AAPL")
    desk = Desk()
    [small] = desk.run({key: D(100)}, {key: D(103)}).open
    assert small.verdict is Verdict.AUTO_CORRECT
    assert desk.book.ours({key: D(100)})[key] == 103
    plan = desk.run({key: D(103)}, {key: D(103)})  # the fill the correction stood in for
    [explained] = plan.explain
    assert (explained.key, explained.reversed, plan.open) == (key, D(3), [])
    assert desk.book.ours({key: D(103)})[key] == 103
    assert desk.book.cases[explained.break_id].state is BreakState.RESOLVED
    assert desk.run({key: D(103)}, {key: D(103)}) == Plan(explain=[], open=[])


def test_only_a_run_of_the_latest_adjustments_that_adds_up_exactly_is_taken_back() -> None:
    key = ("XNAS", "A", "AAPL")
    desk = Desk()
    desk.run({key: D(100)}, {key: D(102)})  # +2
    desk.run({key: D(100)}, {key: D(105)})  # +3 more
    assert desk.book.made_unneeded(key, D(3)) != []
    assert len(desk.book.made_unneeded(key, D(5))) == 2
    assert desk.book.made_unneeded(key, D(2)) == []  # not the latest: the venue moved since
    assert desk.book.made_unneeded(("ARCX", "A", "AAPL"), D(3)) == []


def test_a_decision_that_would_change_nothing_or_contradict_the_one_in_force_is_refused() -> None:
    key = ("XNAS", "A", "AAPL")
    desk = Desk()
    [found] = desk.run({key: D(100)}, {key: D(150)}).open
    [break_id] = desk.book.cases
    book = desk.book
    after = 2  # opened and escalated
    assert book.refusal(break_id, "BreakAdjustmentReversed") == (
        "no adjustment of this break is in force"
    )
    assert book.refusal(break_id, "BreakVenueFigureAccepted") is None
    desk._record(break_id, [BreakAcknowledged(reason="looking")], after)
    desk._record(break_id, [BreakVenueFigureAccepted(adjustment=D(50))], after + 1)
    assert "nothing is left to accept" in str(book.refusal(break_id, "BreakVenueFigureAccepted"))
    assert "adjustment of +50 is in force" in str(book.refusal(break_id, "BreakOurFigureAccepted"))
    desk._record(break_id, [BreakAdjustmentReversed(adjustment=D(50))], after + 2)
    assert book.refusal(break_id, "BreakOurFigureAccepted") is None
    desk._record(break_id, [BreakOurFigureAccepted()], after + 3)
    assert book.disputed[key] == found.difference.delta
    assert "already kept" in str(book.refusal(break_id, "BreakOurFigureAccepted"))
    desk._record(break_id, [BreakVenueFigureAccepted(adjustment=D(50))], after + 4)
    assert key not in book.disputed  # the venue's figure stands: no dispute left


def test_a_break_opened_by_a_pass_takes_another_breaks_adjustment_of_the_position() -> None:
    key = ("XNAS", "A", "AAPL")
    desk = Desk()
    desk.run({key: D(100)}, {key: D(103)})  # auto-corrected: ours 103
    [small] = desk.book.cases
    desk.run({key: D(100)}, {key: D(163)})  # ours 103 against 163: escalated
    large = next(b for b in desk.book.cases if b != small)
    assert desk.book.figures(large) == (D(103), D(163))
    desk._record(small, [BreakAdjustmentReversed(adjustment=D(3))], 2)
    assert desk.book.figures(large) == (D(100), D(163))  # accepting it would set ours to 163


def test_a_take_back_in_a_pass_moves_the_figures_of_another_break_on_the_position() -> None:
    key = ("XNAS", "A", "AAPL")
    desk = Desk()
    desk.run({key: D(100)}, {key: D(102)})  # corrected +2: ours 102
    [first] = desk.book.cases
    desk.run({key: D(100)}, {key: D(105)})  # corrected +3: ours 105
    second = next(b for b in desk.book.cases if b != first)
    reversal = [BreakAdjustmentReversed(adjustment=D(2)), BreakEscalated()]
    desk._record(first, reversal, 2)  # ours 103, the first break a person's again
    plan = desk.run({key: D(100)}, {key: D(100)})  # the venue took both back: ours 3 over
    assert [e.break_id for e in plan.explain] == [second]  # its +3 taken back: ours 100
    assert desk.book.figures(first) == (D(100), D(100))
    assert "nothing is left to accept" in str(desk.book.refusal(first, "BreakVenueFigureAccepted"))


def test_after_a_restart_settled_breaks_keep_their_figures_and_decisions_wait_for_a_pass() -> None:
    key = ("XNAS", "A", "AAPL")
    desk = Desk()
    desk.run({key: D(100)}, {key: D(40)})
    [settled] = desk.book.cases
    desk.run({key: D(100)}, {key: D(35)})  # the venue moved: the pass sees it
    desk._record(settled, [BreakAcknowledged(reason="looking")], 2)
    desk._record(settled, [BreakVenueFigureAccepted(adjustment=D(-65))], 3)
    desk._record(settled, [BreakResolved(reason="booked")], 4)
    desk.run({key: D(100)}, {key: D(55)})  # ours 35 against 55: another break
    waiting = next(b for b in desk.book.cases if b != settled)
    before = {b: desk.book.as_shown(b) for b in (settled, waiting)}
    book = desk.restarted()
    assert {b: book.as_shown(b) for b in (settled, waiting)} == before
    assert before[settled] == (D(100), D(35))  # -65, as adjusted
    assert "no pass has compared" in str(book.refusal(waiting, "BreakVenueFigureAccepted"))
    assert "no pass has compared" in str(book.refusal(waiting, "BreakOurFigureAccepted"))
    book.observe({key: D(35)}, {key: D(55)}, {key})
    assert book.refusal(waiting, "BreakVenueFigureAccepted") is None


def test_a_break_still_differs_until_a_decision_or_the_venue_closes_the_gap() -> None:
    key = ("XNAS", "A", "AAPL")
    desk = Desk()
    desk.run({key: D(100)}, {key: D(150)})
    [break_id] = desk.book.cases
    book = desk.book
    assert book.still_differ(break_id) == (D(100), D(150))
    desk.run({key: D(120)}, {key: D(150)})  # a pass sees the figures of now
    assert book.still_differ(break_id) == (D(120), D(150))
    desk._record(break_id, [BreakAcknowledged(reason="looking")], 2)
    desk._record(break_id, [BreakOurFigureAccepted(difference=D(30))], 3)
    assert book.still_differ(break_id) is None  # kept: the next pass opens nothing
    settled = Desk()
    settled.run({key: D(100)}, {key: D(150)})
    settled.run({key: D(150)}, {key: D(150)})  # the missing fill arrived
    [explained] = settled.book.cases
    assert settled.book.still_differ(explained) is None


def test_an_order_break_has_no_figures_to_decide_on() -> None:
    desk = Desk()
    held = OpenOrder(
        client_order_id="X-1", account="A", instrument="AAPL", side=Side.BUY, leaves=D(5)
    )
    desk._record("break-order", order_finding("XNAS", held).payloads())
    for decision in (
        "BreakVenueFigureAccepted",
        "BreakOurFigureAccepted",
        "BreakAdjustmentReversed",
    ):
        assert "no position to set" in str(desk.book.refusal("break-order", decision))
    assert desk.book.still_differ("break-order") is None  # closed once the order is dealt with


def test_fills_in_flight_explain_a_difference_only_in_their_direction_and_size() -> None:
    flying = InFlight().add(Side.BUY, D(10)).add(Side.SELL, D(3)).add(Side.BUY, D(5))
    assert (flying.buys, flying.sells) == (15, 3)
    assert flying.explains(D(100), D(115))  # our live buys may still fill 15
    assert flying.explains(D(100), D(97))  # and our live sells 3
    assert not flying.explains(D(100), D(116))
    assert not flying.explains(D(100), D(96))


def test_a_pass_compares_what_neither_a_move_nor_working_orders_could_explain() -> None:
    quiet, working, past, moved = (("XNAS", "ACC-1", s) for s in ("A", "B", "C", "D"))
    ours = {quiet: D(10), working: D(10), past: D(10), moved: D(10)}
    theirs = {quiet: D(12), working: D(12), past: D(8), moved: D(10)}
    in_flight = {working: InFlight(buys=D(5)), past: InFlight(buys=D(5))}
    compared, left = to_compare(ours, ours, theirs, in_flight, [moved])
    assert compared == {quiet, past}  # past: a buy cannot take the venue's record down
    assert left == {working, moved}


@given(
    st.integers(-50, 50),
    st.integers(0, 20),
    st.integers(0, 20),
)
def test_a_difference_is_left_for_later_exactly_when_the_working_orders_could_make_it(
    delta: int, buys: int, sells: int
) -> None:
    key = ("XNAS", "ACC-1", "AAPL")
    flying = InFlight(buys=D(buys), sells=D(sells))
    compared, left = to_compare([key], {key: D(0)}, {key: D(delta)}, {key: flying}, [])
    assert (key in left) == (-sells <= delta <= buys)
    assert compared | left == {key}
    assert not compared & left


def test_a_kept_disagreement_stays_kept_as_both_figures_move_together() -> None:
    """Our figure kept against the venue's: a fill of ours that the venue books too moves
    both, and the known disagreement does not open again; another difference does."""
    key = ("XNAS", "A", "MSFT")
    desk = Desk()
    desk.run({key: D(63)}, {key: D(3)})
    [break_id] = desk.book.cases
    desk._record(break_id, [BreakAcknowledged(reason="looking")], 2)
    desk._record(break_id, [BreakOurFigureAccepted(reason="their error")], 3)
    desk._record(break_id, [BreakResolved(reason="raised with XNAS")], 4)
    assert desk.run({key: D(73)}, {key: D(13)}).open == []
    [again] = desk.run({key: D(73)}, {key: D(20)}).open
    assert again.difference.delta == -53


def test_a_decision_takes_the_figures_the_latest_pass_compared() -> None:
    """The venue's record moved by 5 after the break opened: accepting its figure sets ours
    to what it says now, not to what it said then."""
    key = ("XNAS", "A", "KO")
    desk = Desk()
    desk.run({key: D(4)}, {key: D(-36)})
    [break_id] = desk.book.cases
    assert desk.book.figures(break_id) == (D(4), D(-36))
    desk.run({key: D(4)}, {key: D(-31)})  # the break waits: no new one, but it is seen
    assert desk.book.figures(break_id) == (D(4), D(-31))
    desk._record(break_id, [BreakAcknowledged(reason="looking")], 2)
    desk._record(break_id, [BreakVenueFigureAccepted(adjustment=D(-35))], 3)
    # what it adjusted moves ours as last compared: accepting again, before any pass, is empty
    assert desk.book.figures(break_id) == (D(-31), D(-31))
    assert "nothing is left" in str(desk.book.refusal(break_id, "BreakVenueFigureAccepted"))


def test_our_figure_is_kept_against_the_venue_s_figure_of_the_decision() -> None:
    """The venue moved from 150 to 155 after the break opened; ours (100) is kept against
    155: a pass that sees 100 and 155 opens nothing, one that sees 160 does."""
    key = ("XNAS", "A", "KO")
    desk = Desk()
    desk.run({key: D(100)}, {key: D(150)})
    [break_id] = desk.book.cases
    desk.run({key: D(100)}, {key: D(155)})
    desk._record(break_id, [BreakAcknowledged(reason="looking")], 2)
    ours, theirs = desk.book.figures(break_id)
    desk._record(break_id, [BreakOurFigureAccepted(difference=theirs - ours)], 3)
    desk._record(break_id, [BreakResolved(reason="raised with XNAS")], 4)
    assert desk.run({key: D(100)}, {key: D(155)}).open == []
    assert len(desk.run({key: D(100)}, {key: D(160)}).open) == 1


def test_a_break_is_shown_at_its_size_beside_what_it_adjusted() -> None:
    key = ("XNAS", "A", "MSFT")
    desk = Desk()
    desk.run({key: D(63)}, {key: D(3)})
    [break_id] = desk.book.cases
    desk._record(break_id, [BreakAcknowledged(reason="looking")], 2)
    desk._record(break_id, [BreakVenueFigureAccepted(adjustment=D(-60))], 3)
    assert desk.book.figures(break_id) == (D(3), D(3))  # ours now: the venue's figure
    assert desk.book.as_shown(break_id) == (D(63), D(3))  # and what made it so: -60
    assert desk.book.made[break_id] == -60


def test_a_settled_break_keeps_its_figures_when_a_later_break_adjusts_the_position() -> None:
    key = ("XNAS", "A", "MSFT")
    desk = Desk()
    desk.run({key: D(100)}, {key: D(40)})
    [first] = desk.book.cases
    desk.run({key: D(100)}, {key: D(40)})  # seen by a pass while it waits
    desk._record(first, [BreakAcknowledged(reason="looking")], 2)
    desk._record(first, [BreakVenueFigureAccepted(adjustment=D(-60))], 3)
    desk._record(first, [BreakResolved(reason="the venue is right")], 4)
    assert desk.book.as_shown(first) == (D(100), D(40))
    desk.run({key: D(100)}, {key: D(20)})  # ours 40 now; the venue moved again: 20
    [second] = [b for b in desk.book.cases if b != first]
    desk._record(second, [BreakAcknowledged(reason="looking")], 2)
    desk._record(second, [BreakVenueFigureAccepted(adjustment=D(-20))], 3)
    assert desk.book.as_shown(second) == (D(40), D(20))
    assert desk.book.as_shown(first) == (D(100), D(40))  # as it was settled


@pytest.mark.parametrize(
    ("theirs", "mark", "severity"),
    [
        ("151", "10", Severity.CRITICAL),  # 51 off: over 10 times the quantity tolerance
        ("150", "10", Severity.WARNING),  # 50 off, worth 500: within 10 times either
        ("100.5", "64000", Severity.CRITICAL),  # half a unit, worth 32,000: the money counts
        ("100.1", "64000", Severity.WARNING),  # worth 6,400: over the tolerance, not 10 times
        ("106", None, Severity.WARNING),  # no mark: the quantity alone decides
    ],
)
def test_a_break_is_critical_far_over_its_quantity_or_its_notional_tolerance(
    theirs: str, mark: str | None, severity: Severity
) -> None:
    key = ("XNAS", "ACC-1", "BTC-USD")
    marks = {} if mark is None else {"BTC-USD": D(mark)}
    ours = {key: D(100)}
    plan = plan_pass(ours, {key: D(theirs)}, [key], BreakBook(), CONFIG, marks)
    [finding] = plan.open
    assert (finding.verdict, finding.severity) == (Verdict.ESCALATE, severity)


def test_a_dispute_ends_when_the_venue_agrees_again_and_a_later_difference_is_new() -> None:
    key = ("XNAS", "ACC-1", "AAPL")
    desk = Desk()
    desk.run({key: D(100)}, {key: D(150)})
    [break_id] = desk.book.cases
    desk._record(break_id, [BreakAcknowledged(reason="looking")], 2)
    desk._record(break_id, [BreakOurFigureAccepted(difference=D(50))], 3)
    desk._record(break_id, [BreakResolved(reason="raised with XNAS")], 4)
    assert desk.run({key: D(100)}, {key: D(150)}).open == []  # the kept dispute: nothing new
    plan = desk.run({key: D(100)}, {key: D(100)})  # XNAS corrected its record
    assert plan.explain == [Explained(break_id=break_id, key=key)]
    assert desk.book.cases[break_id].state is BreakState.RESOLVED
    assert key not in desk.book.disputed
    assert desk.run({key: D(100)}, {key: D(100)}).explain == []  # told once
    [new] = desk.run({key: D(100)}, {key: D(150)}).open  # the same size again: a new break
    assert new.verdict is Verdict.ESCALATE
