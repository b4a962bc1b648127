"""The activities of the chaos test: coroutines, threads, task groups, and threads that ignore
every request to stop. Each takes the seconds it should work."""

from __future__ import annotations

import time

import anyio

from heartbeat_worker import ActivityCancelled, activity, heartbeat

HEARTBEAT_TIMEOUT = 6


@activity(heartbeat_timeout=HEARTBEAT_TIMEOUT, start_to_close_timeout=120)
async def chaos_async(seconds: float) -> float:
    steps = max(1, int(seconds / 0.25))
    for step in range(steps):
        await anyio.sleep(seconds / steps)
        heartbeat({"step": step})
    return seconds


@activity(heartbeat_timeout=HEARTBEAT_TIMEOUT, start_to_close_timeout=120)
def chaos_blocking(seconds: float) -> float:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
        heartbeat({"left": round(deadline - time.monotonic(), 2)})  # raises once stopped
    return seconds


@activity(heartbeat_timeout=HEARTBEAT_TIMEOUT, start_to_close_timeout=120)
async def chaos_group(seconds: float) -> float:
    """Two children; on cancellation one of them answers with ActivityCancelled details."""

    async def child(name: str) -> None:
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            if name == "first":
                raise ActivityCancelled(details={"child": name}) from None
            raise

    async with anyio.create_task_group() as group:
        group.start_soon(child, "first")
        group.start_soon(child, "second")
    return seconds


@activity(heartbeat_timeout=HEARTBEAT_TIMEOUT, start_to_close_timeout=120)
def chaos_deaf(seconds: float) -> float:
    """A thread that never looks at cancellation."""
    time.sleep(seconds)
    return seconds
