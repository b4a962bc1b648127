"""The test kit runs activities through the worker's real execution and heartbeater."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from heartbeat_worker import (
    ActivityCancelled,
    SWFLimitError,
    activity,
    cancel_requested,
    heartbeat,
    info,
)
from heartbeat_worker.testing import (
    ActivityOutcome,
    Status,
    run_activity,
    run_activity_sync,
    start_activity,
)

pytestmark = pytest.mark.anyio


@activity(heartbeat_timeout=30)
async def add(numbers: list[int]) -> int:
    for index, _ in enumerate(numbers):
        heartbeat({"done": index + 1})
        await anyio.lowlevel.checkpoint()
    return sum(numbers)


@activity
def multiply(factors: list[int]) -> int:
    product = 1
    for index, factor in enumerate(factors):
        product *= factor
        heartbeat({"done": index + 1})
    return product


@activity
async def wait_forever() -> None:
    heartbeat({"stage": "waiting"})
    await anyio.sleep_forever()


@activity
async def clean_up_when_cancelled() -> None:
    heartbeat({"stage": "holding"})
    try:
        await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await anyio.lowlevel.checkpoint()  # cleanup that awaits needs the shield
        raise ActivityCancelled(details={"undone": ["lock", "temp file"]}) from None


def _block_until_cancelled() -> None:
    """A blocking activity: checks for cancellation between small units of work."""
    step = 0
    stop = threading.Event()
    try:
        while not cancel_requested():
            step += 1
            heartbeat({"step": step})  # raises if the request came since the check above
            stop.wait(0.005)
    except ActivityCancelled:
        pass
    raise ActivityCancelled(details={"stopped_at": step})


async def test_async_activity_completes_with_every_heartbeat_recorded() -> None:
    outcome = await run_activity(add, [1, 2, 3])
    assert outcome.status == Status.COMPLETED
    assert outcome.completed
    assert outcome.result == 6
    assert outcome.expect_completed() == 6
    assert outcome.heartbeats == ({"done": 1}, {"done": 2}, {"done": 3})
    assert outcome.answer is not None
    assert outcome.answer.result == "6"


def test_sync_activity_completes_from_a_plain_test() -> None:
    outcome = run_activity_sync(multiply, [2, 3, 7])
    assert outcome.expect_completed() == 42
    assert [beat["done"] for beat in outcome.heartbeats] == [1, 2, 3]


async def test_a_plain_function_needs_no_decorator() -> None:
    def double(value: int) -> int:
        return value * 2

    assert (await run_activity(double, 21)).result == 42


async def test_sent_heartbeats_carry_the_latest_details() -> None:
    release = anyio.Event()

    async def report_then_wait() -> str:
        heartbeat({"progress": 50})
        await release.wait()
        return "done"

    async with start_activity(report_then_wait) as run:
        await run.wait_for_heartbeats(1)
        await run.wait_for_beats(len(run.sent) + 1)
        assert run.sent[-1] == {"progress": 50}
        release.set()
        outcome = await run.wait()
    assert outcome.result == "done"
    assert outcome.last_sent == {"progress": 50}
    assert run.client.calls[-1] == "RespondActivityTaskCompleted"


async def test_info_reports_overridden_timeouts_and_the_checkpoint() -> None:
    async def describe(job: dict[str, Any]) -> dict[str, Any]:
        task = info()
        return {
            "job": job,
            "checkpoint": task.checkpoint,
            "heartbeat_timeout": task.heartbeat_timeout,
            "start_to_close_timeout": task.start_to_close_timeout,
        }

    outcome = await run_activity(
        describe,
        {"rows": 5},
        checkpoint={"rows_done": 2},
        heartbeat_timeout=4,
        start_to_close_timeout=None,
    )
    assert outcome.result == {
        "job": {"rows": 5},
        "checkpoint": {"rows_done": 2},
        "heartbeat_timeout": 4,
        "start_to_close_timeout": None,
    }


async def test_exception_fails_with_reason_and_traceback() -> None:
    async def broken() -> None:
        raise ValueError("boom")

    outcome = await run_activity(broken)
    assert outcome.failed
    assert outcome.reason == "ValueError: boom"
    assert isinstance(outcome.details, str)
    assert "Traceback" in outcome.details
    assert outcome.details.endswith("ValueError: boom")
    with pytest.raises(AssertionError, match="ValueError: boom"):
        outcome.expect_completed()


async def test_cancel_after_the_nth_heartbeat_uses_the_latest_details() -> None:
    outcome = await run_activity(wait_forever, cancel_after_heartbeats=1)
    assert outcome.canceled
    assert outcome.details == {"stage": "waiting"}


async def test_async_cleanup_reports_what_it_undid() -> None:
    outcome = await run_activity(clean_up_when_cancelled, cancel_after_heartbeats=1)
    assert outcome.status == "canceled"
    assert outcome.details == {"undone": ["lock", "temp file"]}


async def test_sync_activity_sees_cancel_requested() -> None:
    outcome = await run_activity(_block_until_cancelled, cancel_after_heartbeats=3)
    assert outcome.canceled
    stopped_at = outcome.details["stopped_at"]
    assert stopped_at >= 3
    assert len(outcome.heartbeats) == stopped_at


async def test_sync_activity_is_stopped_by_heartbeat_raising() -> None:
    def heartbeat_only() -> None:
        stop = threading.Event()
        step = 0
        while True:
            step += 1
            heartbeat({"step": step})
            stop.wait(0.005)

    outcome = await run_activity(heartbeat_only, cancel_after_heartbeats=2)
    assert outcome.canceled
    assert outcome.details["step"] >= 2


async def test_cancel_from_the_test_through_the_handle() -> None:
    async with start_activity(clean_up_when_cancelled) as run:
        await run.wait_for_heartbeats(1)
        assert not run.done
        run.request_cancel()
        outcome = await run.wait()
    assert outcome.details == {"undone": ["lock", "temp file"]}
    assert run.outcome == outcome


async def test_an_activity_that_finishes_anyway_completes() -> None:
    def ignores_cancellation() -> str:
        # Cancellation is requested during this call. Whether the call itself then raises
        # depends on whether the next automatic beat (every 50 ms) brought the request back
        # before the call returned: on a busy machine it may. The activity finishes either way.
        with contextlib.suppress(ActivityCancelled):
            heartbeat({"step": 1})
        return "finished"

    outcome = await run_activity(ignores_cancellation, cancel_after_heartbeats=1)
    assert outcome.result == "finished"


async def test_cleanup_longer_than_the_grace_period_is_not_waited_for() -> None:
    release = anyio.Event()

    async def slow_cleanup() -> None:
        heartbeat({"stage": "working"})
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await release.wait()

    async with start_activity(slow_cleanup, cancel_grace_period=0.2) as run:
        await run.wait_for_heartbeats(1)
        run.request_cancel()
        outcome = await run.wait()
        assert outcome.details == {"stage": "working"}
        release.set()


async def test_shutdown_fails_the_task_with_the_latest_progress() -> None:
    outcome = await run_activity(wait_forever, shutdown_after_heartbeats=1)
    assert outcome.failed
    assert outcome.reason == "worker shutdown"
    assert outcome.details == '{"stage":"waiting"}'


async def test_shutdown_of_a_blocking_activity_through_the_handle() -> None:
    async with start_activity(_block_until_cancelled) as run:
        await run.wait_for_heartbeats(2)
        run.request_shutdown()
        outcome = await run.wait()
    assert outcome.reason == "worker shutdown"


async def test_lost_task_is_left_without_an_answer() -> None:
    cleaned_up = anyio.Event()

    async def hold() -> None:
        heartbeat({"stage": "holding"})
        try:
            await anyio.sleep_forever()
        finally:
            cleaned_up.set()

    async with start_activity(hold) as run:
        await run.wait_for_heartbeats(1)
        run.lose_task()
        outcome = await run.wait()
    assert outcome.left
    assert outcome.answer is None
    assert outcome.reason == "SWF closed the task"
    assert cleaned_up.is_set()
    assert "RecordActivityTaskHeartbeat" in run.client.calls


async def test_start_to_close_timeout_leaves_the_task() -> None:
    outcome = await run_activity(wait_forever, start_to_close_timeout=0.1)
    assert outcome.status == Status.LEFT


@pytest.mark.parametrize(
    ("raw_input", "expected"),
    [
        ("{not json", "bad input: input is not valid JSON"),
        ('{"unexpected": 1}', "bad input: input does not fit the activity's signature"),
    ],
)
async def test_bad_input_fails_without_running(raw_input: str, expected: str) -> None:
    ran = False

    def takes_two(first: int, second: int) -> None:
        nonlocal ran
        ran = True

    outcome = await run_activity(takes_two, raw_input=raw_input)
    assert outcome.failed
    assert outcome.reason is not None
    assert outcome.reason.startswith(expected)
    assert not ran
    assert outcome.sent == ()


async def test_oversized_details_raise_where_heartbeat_is_called() -> None:
    async def too_chatty() -> dict[str, Any]:
        try:
            heartbeat("x" * 3000)
        except SWFLimitError as error:
            return {"field": error.field, "limit": error.limit}
        return {}

    outcome = await run_activity(too_chatty)
    assert outcome.result == {"field": "heartbeat details", "limit": 2048}
    assert outcome.heartbeats == ()  # the refused call recorded nothing


async def test_oversized_details_not_caught_fail_the_task() -> None:
    def too_chatty() -> None:
        heartbeat({"blob": "x" * 3000})

    outcome = await run_activity(too_chatty)
    assert outcome.reason is not None
    assert outcome.reason.startswith("SWFLimitError: heartbeat details is")
    assert "2048" in outcome.reason


async def test_oversized_result_fails_naming_the_limit() -> None:
    async def too_big() -> str:
        return "x" * 40_000

    outcome = await run_activity(too_big)
    assert outcome.failed
    assert outcome.reason is not None
    assert outcome.reason.startswith("result too large")
    assert "32768" in outcome.reason


async def test_waiting_for_heartbeats_that_never_come_says_so() -> None:
    async with start_activity(wait_forever) as run:
        with pytest.raises(TimeoutError, match="for 5 heartbeat"):
            await run.wait_for_heartbeats(5, timeout=0.2)
        run.request_cancel()


async def test_waiting_for_heartbeats_after_the_end_fails_at_once() -> None:
    async with start_activity(add, [1]) as run:
        with pytest.raises(AssertionError, match="ended"):
            await run.wait_for_heartbeats(10)
        outcome: ActivityOutcome | None = run.outcome
    assert outcome is not None
    assert outcome.result == 1


async def test_a_run_past_its_timeout_raises() -> None:
    async def ignore_everything() -> None:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.5)

    with pytest.raises(TimeoutError, match="the end of the run"):
        await run_activity(ignore_everything, timeout=0.1)


async def test_raw_input_and_input_are_exclusive() -> None:
    with pytest.raises(ValueError, match="raw_input"):
        await run_activity(add, [1], raw_input="[1]")
