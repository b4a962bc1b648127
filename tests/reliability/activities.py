"""Activities of the reliability tests (module level, so that a worker process started with
``heartbeat-worker run tests.reliability.activities`` serves them too)."""

from __future__ import annotations

import random
import time
from typing import Any

import anyio

from heartbeat_worker import SWFLimitError, activity, heartbeat


@activity(heartbeat_timeout=3, start_to_close_timeout=120)
async def quick(n: int) -> int:
    """A short job that reports progress once: 0.1 to 0.9 s."""
    await anyio.sleep(random.uniform(0.05, 0.45))
    heartbeat({"n": n, "half": True})
    await anyio.sleep(random.uniform(0.05, 0.45))
    return n * n


@activity(heartbeat_timeout=2, start_to_close_timeout=120)
async def steady(seconds: float) -> float:
    """Sleeps, reporting progress every 0.1 s."""
    deadline = anyio.current_time() + seconds
    while anyio.current_time() < deadline:
        heartbeat({"left": round(deadline - anyio.current_time(), 1)})
        await anyio.sleep(0.1)
    return seconds


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def long_sleeper(seconds: float) -> float:
    """Cooperative (an await): a shutdown cancels it at once."""
    await anyio.sleep(seconds)
    return seconds


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
def ignores_cancellation(seconds: float) -> str:
    """A blocking loop that never checks for cancellation and never calls heartbeat()."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return "too late"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def oversize_progress(catch: bool) -> dict[str, Any]:
    """Records 3000 characters of progress: heartbeat() refuses it where it is called."""
    try:
        heartbeat({"blob": "x" * 3000})
    except SWFLimitError as error:
        if not catch:
            raise
        heartbeat({"blob": "small"})
        return {"caught": str(error)}
    return {"caught": None}
