"""The blocking example computes in a thread (or a child process) while the heartbeater
keeps beating."""

from __future__ import annotations

import pytest
from examples.blocking import count_primes, count_primes_process, primes_below

from heartbeat_worker.testing import run_activity, start_activity

pytestmark = pytest.mark.anyio


def test_primes_below() -> None:
    assert primes_below(30) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert primes_below(2) == []


async def test_counts_primes_with_progress() -> None:
    outcome = await run_activity(count_primes, {"limit": 100_000, "segment": 20_000})
    result = outcome.expect_completed()
    assert result["primes"] == 9_592
    assert [beat["checked"] for beat in outcome.heartbeats] == [
        19_999,
        39_999,
        59_999,
        79_999,
        99_999,
        100_000,
    ]
    assert outcome.heartbeats[-1] == {"checked": 100_000, "primes": 9_592, "percent": 100.0}


async def test_heartbeats_flow_while_it_computes() -> None:
    # One segment: the activity makes no heartbeat() call until it has counted everything.
    job = {"limit": 1_000_000, "segment": 1_000_001}
    async with start_activity(count_primes, job, cancel_grace_period=30) as run:
        await run.wait_for_beats(3)
        assert run.heartbeats == [], "the computation ended before three beats"
        run.request_cancel()
        outcome = await run.wait()
    # Cancellation reaches a blocking activity at its next heartbeat() call, which raises.
    assert outcome.canceled
    assert outcome.details == {"checked": 1_000_000, "primes": 78_498, "percent": 100.0}
    assert len(outcome.sent) >= 3


async def test_the_process_variant_counts_the_same_in_a_child() -> None:
    outcome = await run_activity(count_primes_process, {"limit": 100_000, "segment": 20_000})
    assert outcome.expect_completed()["primes"] == 9_592
    assert outcome.heartbeats[-1] == {"checked": 100_000, "primes": 9_592, "percent": 100.0}


async def test_the_process_variant_is_stopped_in_the_middle_of_a_segment() -> None:
    # One segment far too long to finish: the thread variant could only be abandoned.
    job = {"limit": 10**9, "segment": 10**9 + 1}
    async with start_activity(count_primes_process, job, cancel_grace_period=0.2) as run:
        await run.wait_for_beats(2)
        run.request_cancel()
        outcome = await run.wait()
    assert outcome.canceled
    assert outcome.heartbeats == ()
