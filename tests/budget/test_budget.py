"""HeartbeatBudget: plain arithmetic on a clock the tests drive."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from heartbeat_worker._budget import (
    ARRIVAL_SPREAD,
    PACING_TOLERANCE,
    HeartbeatBudget,
    Plan,
    parse_share,
)

# The documented figures (README, "The heartbeat budget"; docs/performance.md), written out
# rather than imported, so that a change of the code's constants fails here.
LATEST_SAFE = 0.75
"""Jittered intervals never stretch beyond three quarters of the heartbeat timeout."""
CEILING = 0.95
"""Beyond that, unjittered intervals stretch up to 0.95 of the timeout (the default)."""
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
    spacing = (1.0 + ARRIVAL_SPREAD) / 2  # two calls per window, evenly paced
    for _ in range(4):
        budget.offer(0.0, "x")
    assert budget.wait_time(0.0) == 0
    assert budget.take(0.0) == "x"
    assert budget.take(0.25) is None  # too soon after the last: not at the even pace
    assert budget.wait_time(0.25) == pytest.approx(spacing - PACING_TOLERANCE - 0.25)
    assert budget.take(spacing - PACING_TOLERANCE) == "x"
    # Two calls in this window: the next waits for the first to leave it.
    assert budget.wait_time(spacing) == pytest.approx(1.0 + ARRIVAL_SPREAD - spacing)
    assert budget.take(1.0 + ARRIVAL_SPREAD) == "x"


def test_calls_leave_evenly_paced_not_in_a_burst() -> None:
    budget = HeartbeatBudget(160)
    taken = take_all_you_can(budget, offers=640, step=0.001)
    # A tenth of a second never holds much more than a tenth of the budget: with the
    # window alone, the first 160 calls all left at once.
    assert most_in_any_window(taken, 0.1) <= 0.1 * 160 + PACING_TOLERANCE * 160 + 1


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(min_value=20, max_value=500),
    seed=st.integers(0, 2**32 - 1),
)
def test_calls_that_arrive_late_do_not_push_a_second_over_the_budget(
    rate: float, seed: int
) -> None:
    # Each call reaches the service up to ARRIVAL_SPREAD after it left, at random: the
    # service's count of any one second still stays within the budget.
    budget = HeartbeatBudget(rate)
    delays = random.Random(seed)
    taken = take_all_you_can(budget, offers=int(rate * 4) + 3, step=0.003)
    arrived = sorted(at + delays.uniform(0, ARRIVAL_SPREAD) for at in taken)
    assert most_in_any_window(arrived, 1.0) <= int(rate)


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
    # Evenly paced at the sustained rate, from the first call to the last.
    assert (1000 - 1) / seconds == pytest.approx(budget.sustained_rate, rel=0.02)
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


def test_stretching_stops_at_the_ceiling() -> None:
    budget = HeartbeatBudget(10)
    for _ in range(1000):
        budget.join(30.0)
    assert budget.interval(10.0, 30.0) == 30.0 * CEILING
    assert budget.interval(10.0, None) > 30.0  # no timeout: no limit to stretching


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


# -- closer to the ceiling -----------------------------------------------------------------


def test_beyond_three_quarters_intervals_grow_unjittered_up_to_the_ceiling() -> None:
    budget = HeartbeatBudget(160)
    for _ in range(8000):
        budget.join(60.0)
    plan = budget.plan(20.0, 60.0)
    assert not plan.jitter
    assert 45.0 < plan.interval <= 60.0 * CEILING
    # Unjittered, 8,000 activities then need no more than the planned share of the budget.
    assert 8000 / plan.interval <= 160 * PLANNED


def test_the_ceiling_caps_the_interval_and_three_quarters_keeps_todays_planning() -> None:
    crowded = HeartbeatBudget(10)
    today = HeartbeatBudget(10, ceiling=0.75)
    for _ in range(1000):
        crowded.join(30.0)
        today.join(30.0)
    assert crowded.plan(10.0, 30.0).interval == 30.0 * CEILING
    assert today.plan(10.0, 30.0) == Plan(22.5, jitter=True)  # three quarters of 30 s
    with pytest.raises(ValueError, match="ceiling"):
        HeartbeatBudget(10, ceiling=0.7)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.01, 10_000),
    members=st.integers(1, 3000),
    timeout=st.floats(0.5, 86_400),
    fraction=st.floats(0.01, 0.75),
    jitter=st.floats(0, 0.9),
    ceiling=st.floats(0.75, 1.0),
)
def test_an_interval_never_passes_the_ceiling_and_is_jittered_only_below_three_quarters(  # noqa: PLR0917 (hypothesis draws each by name)
    rate: float, members: int, timeout: float, fraction: float, jitter: float, ceiling: float
) -> None:
    budget = HeartbeatBudget(rate, jitter=jitter, ceiling=ceiling)
    for _ in range(members):
        budget.join(timeout)
    nominal = timeout * fraction
    plan = budget.plan(nominal, timeout)
    assert nominal <= plan.interval <= timeout * ceiling
    if plan.jitter:
        assert plan.interval <= max(nominal, timeout * LATEST_SAFE)


# -- admission -----------------------------------------------------------------------------


def test_admission_closes_when_one_more_activity_would_not_fit_at_the_ceiling() -> None:
    budget = HeartbeatBudget(160)
    # 152.4 calls/s pass the limiter; 95% of that for activities beating every 57 s.
    fits = math.floor(160 / (1 + ARRIVAL_SPREAD) * 0.95 * 60 * CEILING)
    assert fits >= 8000
    for _ in range(fits - 1):
        budget.join(60.0)
    assert budget.fits()
    assert not budget.fits(reserved=1)  # a poll in flight may bring the last one
    budget.join(60.0)
    assert not budget.fits()
    budget.leave(60.0)
    assert budget.fits()


def test_admission_reserves_for_the_most_demanding_activity_seen() -> None:
    budget = HeartbeatBudget(10)
    budget.join(600.0)
    assert budget.fits(reserved=85)
    budget.join(10.0)  # one task with a short timeout: the next may be one too
    assert budget.largest_need == pytest.approx(1 / (10.0 * CEILING))
    assert not budget.fits(reserved=85)


def test_before_the_first_task_admission_takes_one_at_a_time() -> None:
    budget = HeartbeatBudget(160)
    # Nothing is known of what a task needs until one has joined.
    assert budget.fits()
    assert not budget.fits(reserved=1)
    budget.join(60.0)
    assert budget.fits(reserved=100)


def test_without_admission_control_there_is_always_room() -> None:
    budget = HeartbeatBudget(1, admission=False)
    for _ in range(100):
        budget.join(1.0)
    assert budget.fits(reserved=10)


def test_admission_logs_once_when_it_closes_and_once_when_it_reopens() -> None:
    budget = HeartbeatBudget(10)
    with capture_logs() as logs:
        for _ in range(200):
            if budget.has_room(now=0.0):
                budget.join(10.0)
        for _ in range(5):
            assert not budget.has_room(now=1.0)
        budget.leave(10.0)
        assert budget.has_room(now=2.0)
        budget.join(10.0)
        # Full again at once: counted, not logged again so soon.
        assert not budget.has_room(now=2.5)
        budget.leave(10.0)
        assert budget.has_room(now=3.0)
    events = [(entry["log_level"], entry["event"].split(";")[0]) for entry in logs]
    assert events == [
        ("warning", "heartbeat budget full"),
        ("info", "heartbeat budget has room again"),
    ]
    closed, reopened = logs
    # 9.5 calls/s pass the limiter, 95% of that for activities beating every 9.5 s.
    assert closed["running_activities"] == math.floor(10 / 1.05 * 0.95 * 10 * CEILING) == 85
    assert closed["needed_per_second"] <= closed["admission_per_second"] == 9.0
    assert reopened["closed_for"] == 2.0
    assert budget.admission_closed_count == 2


# -- fleet share ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "share"), [("1/4", 0.25), ("0.25", 0.25), ("25%", 0.25), ("1", 1.0), (" 3/8 ", 0.375)]
)
def test_a_share_is_a_fraction_a_decimal_or_a_percentage(text: str, share: float) -> None:
    assert parse_share(text) == pytest.approx(share)


@pytest.mark.parametrize("text", ["0", "5/4", "-1/4", "1/0", "a quarter", "", "150%"])
def test_a_share_outside_zero_to_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"share|fraction"):
        parse_share(text)
