"""HeartbeatBudget: plain arithmetic on a clock the tests drive."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from heartbeat_worker._budget import ARRIVAL_SPREAD, HeartbeatBudget

# The documented figures (README, "The heartbeat budget"; docs/performance.md), written out
# rather than imported, so that a change of the code's constants fails here.
LATEST_SAFE = 0.75
"""Intervals never stretch beyond three quarters of the heartbeat timeout."""
PLANNED = 0.9
"""Stretched intervals plan to use 90% of the budget."""


def test_rejects_a_budget_that_is_not_a_positive_rate() -> None:
    for rate in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive"):
            HeartbeatBudget(rate)


# -- ordering ------------------------------------------------------------------------------


def test_serves_the_nearest_deadline_first() -> None:
    budget = HeartbeatBudget(1000)
    for deadline, name in [(30.0, "c"), (10.0, "a"), (float("inf"), "e"), (20.0, "b")]:
        budget.offer(deadline, name)
    budget.offer(20.0, "b2")  # equal deadlines keep their order of arrival
    taken = [budget.take(0.0) for _ in range(5)]
    assert taken == ["a", "b", "b2", "c", "e"]
    assert budget.take(0.0) is None


def test_an_item_offered_later_with_a_nearer_deadline_goes_first() -> None:
    budget = HeartbeatBudget(1)
    budget.offer(50.0, "late")
    assert budget.take(0.0) == "late"  # the one call of this window
    budget.offer(60.0, "far")
    budget.offer(40.0, "near")
    assert budget.take(0.5) is None  # the window is used up
    assert budget.take(1.0 + ARRIVAL_SPREAD) == "near"


def test_items_no_longer_live_are_dropped_without_using_the_budget() -> None:
    budget = HeartbeatBudget(1)
    budget.offer(1.0, "gone")
    budget.offer(2.0, "alive")
    assert budget.take(0.0, live=lambda item: item != "gone") == "alive"
    assert budget.queued == 0
    assert budget.wait_time(0.0) > 0


# -- the limit -----------------------------------------------------------------------------


def test_wait_time_says_when_the_next_call_may_go() -> None:
    budget = HeartbeatBudget(2)
    for _ in range(3):
        budget.offer(0.0, "x")
    assert budget.wait_time(0.0) == 0
    assert budget.take(0.0) == "x"
    assert budget.take(0.25) == "x"
    assert budget.take(0.5) is None
    assert budget.wait_time(0.5) == pytest.approx(1.0 + ARRIVAL_SPREAD - 0.5)
    assert budget.take(1.0 + ARRIVAL_SPREAD) == "x"


def take_all_you_can(budget: HeartbeatBudget, offers: int, step: float) -> list[float]:
    """Offer everything at once, then take at every clock step; the times of the takes."""
    for index in range(offers):
        budget.offer(float(index), index)
    taken = []
    now = 0.0
    while budget.queued:
        while budget.take(now) is not None:
            taken.append(now)
        now += step
    return taken


def most_in_any_window(times: list[float], width: float) -> int:
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= width:
            start += 1
        most = max(most, end - start + 1)
    return most


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=500),
    step=st.sampled_from([0.0007, 0.003, 0.01, 0.13]),
)
def test_no_window_of_one_second_ever_holds_more_than_the_budget(rate: float, step: float) -> None:
    budget = HeartbeatBudget(rate)
    taken = take_all_you_can(budget, offers=int(rate * 4) + 3, step=step)
    if rate >= 1:
        # Even for calls that reach the service up to ARRIVAL_SPREAD apart from their
        # sending: a second never holds more than the budget.
        assert most_in_any_window(taken, 1.0 + ARRIVAL_SPREAD) <= int(rate)
    else:
        assert most_in_any_window(taken, 1 / rate + ARRIVAL_SPREAD) <= 1


def test_the_limit_still_lets_the_budget_through_over_time() -> None:
    budget = HeartbeatBudget(100)
    taken = take_all_you_can(budget, offers=1000, step=0.001)
    seconds = taken[-1] - taken[0]
    # The first window's calls go at once; the rest follow one window after another.
    assert (1000 - 100) / seconds == pytest.approx(budget.sustained_rate, rel=0.02)
    assert budget.sustained_rate == pytest.approx(100 / (1 + ARRIVAL_SPREAD))


# -- stretching ----------------------------------------------------------------------------


def test_intervals_stay_nominal_while_the_budget_suffices() -> None:
    budget = HeartbeatBudget(100)
    for _ in range(100):
        budget.join(30.0)
    assert budget.interval(10.0, 30.0) == 10.0  # 100 activities / 10 s = 10 calls/s


def test_intervals_stretch_to_fit_the_planned_share_of_the_budget() -> None:
    budget = HeartbeatBudget(100, jitter=0.2)
    for _ in range(1500):
        budget.join(30.0)
    planned = budget.interval(10.0, 30.0)
    assert 10.0 < planned < 22.5
    # Beats are drawn uniformly in [0.8, 1.0] x planned: on average 0.9 x planned.
    rate = 1500 / (planned * 0.9)
    assert rate == pytest.approx(100 * PLANNED)


def test_stretching_stops_at_the_latest_safe_interval() -> None:
    budget = HeartbeatBudget(10)
    for _ in range(1000):
        budget.join(30.0)
    assert budget.interval(10.0, 30.0) == 22.5  # three quarters of 30 s
    assert budget.interval(10.0, None) > 30.0  # no timeout: no limit to stretching


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.01, 10_000),
    members=st.integers(1, 3000),
    timeout=st.floats(0.5, 86_400),
    fraction=st.floats(0.01, 0.75),
    jitter=st.floats(0, 0.9),
)
def test_an_interval_never_stretches_beyond_three_quarters_of_the_timeout(
    rate: float, members: int, timeout: float, fraction: float, jitter: float
) -> None:
    budget = HeartbeatBudget(rate, jitter=jitter)
    for _ in range(members):
        budget.join(timeout)
    nominal = timeout * fraction
    planned = budget.interval(nominal, timeout)
    assert nominal <= planned <= timeout * LATEST_SAFE


def test_stretching_follows_the_activities_that_leave() -> None:
    budget = HeartbeatBudget(100)
    for _ in range(2000):
        budget.join(30.0)
    stretched = budget.interval(10.0, 30.0)
    for _ in range(1900):
        budget.leave(30.0)
    assert budget.interval(10.0, 30.0) == 10.0 < stretched
    assert budget.members == 100


def test_a_jittered_stretched_schedule_stays_under_the_budget() -> None:
    """Simulate: every activity beats at the planned interval, shortened at random."""
    rng = random.Random(7)
    budget = HeartbeatBudget(100, jitter=0.2)
    for _ in range(1500):
        budget.join(30.0)
    beats = 0
    for _ in range(1500):
        now = rng.uniform(0, 20)
        while now < 200:
            now += budget.interval(10.0, 30.0) * (1 - rng.uniform(0, 0.2))
            beats += now < 200
    assert beats / 200 < 100


# -- the warning ---------------------------------------------------------------------------


def test_warns_with_the_numbers_when_activities_cannot_all_be_served_in_time() -> None:
    budget = HeartbeatBudget(100)
    with capture_logs() as logs:
        for _ in range(1000):
            budget.join(10.0)  # in turn, 1000 activities at 95 calls/s: 10.5 s apart
    assert len(logs) == 1, "one warning, not one per activity"
    warning = logs[0]
    assert warning["log_level"] == "warning"
    assert "too small" in warning["event"]
    assert warning["budget_per_second"] == 100
    assert warning["needed_per_second"] > warning["sustained_per_second"]
    assert 800 < warning["running_activities"] < 1000


def test_no_warning_while_the_activities_can_be_served_in_time() -> None:
    budget = HeartbeatBudget(100)
    with capture_logs() as logs:
        for _ in range(2000):
            budget.join(30.0)  # in turn: 21 s apart, within 90% of 30 s
        for _ in range(300):
            budget.join(60.0)
    assert logs == []


def test_warns_again_only_when_the_shortfall_grows_by_half_or_returns() -> None:
    budget = HeartbeatBudget(10)
    with capture_logs() as logs:
        for _ in range(300):
            budget.join(10.0)
    needed = [entry["needed_per_second"] for entry in logs]
    assert 2 <= len(needed) <= 4
    assert all(later >= 1.5 * earlier - 0.1 for earlier, later in itertools.pairwise(needed))
    with capture_logs() as logs:
        for _ in range(300):
            budget.leave(10.0)
        for _ in range(100):
            budget.join(10.0)  # short again after it fitted: say so again
    assert len(logs) == 1
