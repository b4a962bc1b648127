"""The test kit runs process activities too: in a child process, through the worker's real
execution, with the same read-outs as for the other kinds."""

from __future__ import annotations

import os

import anyio
import pytest
from tests.worker import process_activities

from heartbeat_worker import SWFLimitError
from heartbeat_worker.testing import Status, run_activity, run_activity_sync, start_activity

pytestmark = pytest.mark.anyio


async def test_a_process_activity_runs_in_a_child_and_its_heartbeats_are_seen() -> None:
    outcome = await run_activity(process_activities.beating, [3, 0.01], checkpoint={"at": 2})
    result = outcome.expect_completed()
    assert result["pid"] != os.getpid()
    assert result["checkpoint"] == {"at": 2}
    assert outcome.heartbeats == tuple({"pid": result["pid"], "step": s} for s in (1, 2, 3))


async def test_a_process_activity_hears_of_cancellation_and_sends_its_details() -> None:
    outcome = await run_activity(process_activities.cooperative, cancel_after_heartbeats=3)
    assert outcome.status is Status.CANCELED
    assert outcome.details["cleaned_up"] is True
    assert outcome.details["asked"] is True


async def test_a_process_activity_ignoring_cancel_is_ended_after_the_grace_period() -> None:
    async with start_activity(process_activities.ignoring, cancel_grace_period=0.2) as run:
        await run.wait_for_heartbeats(1)
        [pid] = [details["pid"] for details in run.heartbeats]
        run.request_cancel()
        outcome = await run.wait()
    assert outcome.status is Status.CANCELED
    with anyio.fail_after(5):
        while _alive(pid):  # noqa: ASYNC110 (nothing signals another process's end)
            await anyio.sleep(0.02)


def test_run_activity_sync_reports_a_crash_as_a_failure() -> None:
    outcome = run_activity_sync(process_activities.crashing, "exit")
    assert outcome.status is Status.FAILED
    assert outcome.reason is not None
    assert outcome.reason.endswith("exited with code 3")


async def test_heartbeat_details_over_the_limit_raise_in_the_child() -> None:
    outcome = await run_activity(process_activities.oversized, 3000)
    assert outcome.status is Status.FAILED
    assert outcome.reason is not None
    assert outcome.reason.startswith(f"{SWFLimitError.__name__}: heartbeat details is 3002 ")
    assert outcome.heartbeats == ()  # refused where it was made, never recorded


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
