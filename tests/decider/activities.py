"""Activities the decider tests schedule (module level, so that a worker process started with
``heartbeat-worker run decider.activities`` from ``tests/`` serves them too)."""

from __future__ import annotations

from typing import Any

import anyio

from heartbeat_worker import activity, heartbeat, info

# Registered defaults are long: each test sets the timeouts it needs when it schedules.
attempts_seen: dict[str, list[Any]] = {}
"""Per workflow id, the checkpoint each attempt received, in order."""


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def double(value: int) -> int:
    return 2 * value


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def broken(message: str) -> None:
    raise RuntimeError(message)


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def flaky(message: str) -> str:
    """Fails on its first attempt of each workflow, succeeds on the next."""
    seen = attempts_seen.setdefault(info().workflow_id, [])
    seen.append(info().checkpoint)
    if len(seen) == 1:
        raise RuntimeError(message)
    return f"attempt {len(seen)} succeeded"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def patient(_: Any = None) -> str:
    """Reports progress, then waits until it is cancelled, and says what it undid."""
    heartbeat({"phase": "waiting"})
    try:
        await anyio.sleep(3600)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.01)  # the clean-up's own awaits
            heartbeat({"phase": "rolled back"})
    return "never"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def stalling(job: dict[str, int]) -> dict[str, Any]:
    """Counts ``job["steps"]`` steps; the first attempt stalls after ``job["stall_at"]``.

    The stall outlives the start-to-close timeout the test sets, so SWF times the attempt
    out with the last progress it recorded; the next attempt resumes from that checkpoint.
    """
    checkpoint = info().checkpoint
    attempts_seen.setdefault(info().workflow_id, []).append(checkpoint)
    start = 0 if checkpoint is None else int(checkpoint["done"])
    for done in range(start + 1, job["steps"] + 1):
        heartbeat({"done": done})
        if checkpoint is None and done == job["stall_at"]:
            await anyio.sleep(3600)
    return {"resumed_from": checkpoint, "done": job["steps"]}


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def forgetful(_: Any = None) -> None:
    """Reports progress on its first attempt only; every attempt then hangs, so that SWF
    times each out, the later ones with no heartbeat details."""
    if info().checkpoint is None:
        heartbeat({"done": 1})
    await anyio.sleep(3600)


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def counting(job: dict[str, float]) -> int:
    """Counts to ``job["total"]``, a step every ``job["step"]`` seconds, reporting progress as
    a ``done``/``total`` pair."""
    total = int(job["total"])
    for done in range(total):
        heartbeat({"done": done, "total": total})
        await anyio.sleep(job["step"])
    return total
