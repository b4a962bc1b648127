"""Activities used by the worker's integration tests (module level, so that a worker
process started with ``heartbeat-worker run tests.worker.activities`` finds them too)."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.to_thread

from heartbeat_worker import ActivityCancelled, activity, cancel_requested, heartbeat, info

# Each test registers types with heartbeat timeouts of its own through the schedule
# decision; the registered defaults below are deliberately long.
events: dict[str, threading.Event] = {}
log: list[Any] = []


def event(name: str) -> threading.Event:
    return events.setdefault(name, threading.Event())


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def sleeper(seconds: float) -> dict[str, Any]:
    """Sleeps without a line of heartbeat code."""
    await anyio.sleep(seconds)
    return {"slept": seconds, "heartbeat_timeout": info().heartbeat_timeout}


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def progress(steps: int, step_seconds: float) -> int:
    """Reports progress after every step."""
    for step in range(1, steps + 1):
        await anyio.sleep(step_seconds)
        heartbeat({"step": step, "of": steps})
    return steps


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def reporter(details: Any) -> str:
    """Reports ``details`` once, then waits for the test to release it (30 s at most)."""
    heartbeat(details)
    await anyio.to_thread.run_sync(event("reporter.release").wait, 30)
    return "released"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def cancellable(_: Any = None) -> str:
    """Runs until cancelled; its cleanup awaits (shielded) and records what it did."""
    heartbeat({"phase": "working"})
    event("cancellable.started").set()
    try:
        await anyio.sleep(3600)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.05)
            log.append("async cleanup ran")
            heartbeat({"phase": "cleaned up"})
    return "never"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
def blocking_cancellable(_: Any = None) -> str:
    """A blocking loop that notices cancellation through heartbeat()."""
    event("blocking.started").set()
    try:
        while True:
            time.sleep(0.02)
            heartbeat({"phase": "working"})
    except ActivityCancelled:
        log.append("sync cleanup ran")
        raise ActivityCancelled(details={"undone": "everything"}) from None


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
def cancelled_with_long_details(size: int) -> str:
    """Answers a cancel request with details of ``size`` characters between two markers."""
    event("long_details.started").set()
    try:
        while True:
            time.sleep(0.02)
            heartbeat({"phase": "working"})
    except ActivityCancelled:
        raise ActivityCancelled(details="HEAD" + "x" * size + "TAIL") from None


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
def polite_blocking(_: Any = None) -> str:
    """A blocking loop that checks cancel_requested() and returns normally anyway."""
    while not cancel_requested():
        time.sleep(0.02)
    log.append("polite noticed")
    return "finished anyway"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def failing(message: str) -> None:
    raise ValueError(message)


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def huge_result(size: int) -> str:
    return "x" * size


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def unserializable(_: Any = None) -> object:
    return object()


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def add(a: int, b: int) -> int:
    return a + b


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
def stubborn(_: Any = None) -> str:
    """Ignores every request to stop."""
    event("stubborn.started").set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not event("stubborn.release").is_set():
        time.sleep(0.02)
    return "too late"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def shouting(size: int) -> None:
    raise RuntimeError("m" * size)


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def loop_blocker(seconds: float) -> str:
    """Wrongly calls blocking code from a coroutine."""
    time.sleep(seconds)  # noqa: ASYNC251 - the mistake under test
    return "done"
