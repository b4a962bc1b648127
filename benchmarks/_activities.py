"""The activities the benchmarks run: a no-op, and sleepers that only heartbeat.

A task's heartbeat timeout is read from its activity type's registration, so each timeout
the benchmarks use has a type of its own, registered with that default.
"""

from __future__ import annotations

import anyio

from heartbeat_worker import activity

HEARTBEAT_TIMEOUTS = {"noop": 60, "sleep3": 3, "sleep10": 10, "sleep30": 30, "sleep60": 60}
"""Activity type name -> its registered heartbeat timeout (seconds)."""

_FOREVER = 10**6


@activity(name="noop", heartbeat_timeout=60)
async def noop() -> None:
    return None


async def _sleep() -> None:
    await anyio.sleep(_FOREVER)


sleep3 = activity(name="sleep3", heartbeat_timeout=3)(_sleep)
sleep10 = activity(name="sleep10", heartbeat_timeout=10)(_sleep)
sleep30 = activity(name="sleep30", heartbeat_timeout=30)(_sleep)
sleep60 = activity(name="sleep60", heartbeat_timeout=60)(_sleep)
