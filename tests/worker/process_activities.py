"""Process activities for the tests of the process executor (module level, so that the
child processes, and a worker started with
``heartbeat-worker run tests.worker.process_activities``, import them).

Each one reports its process ID in its heartbeat details, which the tests read from the
dev server: the path a decider would see, and proof that the details crossed from the
child to the worker's heartbeater.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from typing import Any

from heartbeat_worker import ActivityCancelled, activity, cancel_requested, heartbeat, info


@activity(executor="process", heartbeat_timeout=60, start_to_close_timeout=300)
def beating(steps: int, step_seconds: float) -> dict[str, Any]:
    """Reports its progress after every step, then describes where it ran."""
    for step in range(1, steps + 1):
        time.sleep(step_seconds)
        heartbeat({"pid": os.getpid(), "step": step})
    task = info()
    return {
        "pid": os.getpid(),
        "activity_id": task.activity_id,
        "heartbeat_timeout": task.heartbeat_timeout,
        "checkpoint": task.checkpoint,
    }


@activity(executor="process", heartbeat_timeout=60, start_to_close_timeout=300)
def cooperative(_: Any = None) -> str:
    """Works until cancelled, noticing it in heartbeat(); sends what its cleanup did."""
    try:
        while True:
            heartbeat({"pid": os.getpid(), "phase": "working"})
            time.sleep(0.02)
    except ActivityCancelled:
        raise ActivityCancelled(
            details={"pid": os.getpid(), "cleaned_up": True, "asked": cancel_requested()}
        ) from None


@activity(executor="process", heartbeat_timeout=60, start_to_close_timeout=300)
def ignoring(ignore_sigterm: bool = False) -> str:
    """Never looks at its stop flag (and, if told, ignores SIGTERM too)."""
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    heartbeat({"pid": os.getpid(), "phase": "ignoring"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return "too late"


@activity(executor="process", heartbeat_timeout=60, start_to_close_timeout=300)
def crashing(how: str) -> str:
    """Dies without answering: a segfault, an immediate exit with a status, or SIGKILL."""
    if how == "segfault":
        ctypes.string_at(0)
    elif how == "exit":
        os._exit(3)
    elif how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


@activity(executor="process", heartbeat_timeout=60, start_to_close_timeout=300)
def failing(message: str) -> None:
    """Raises, so that the type, message and traceback must cross back."""
    raise ValueError(message)


@activity(executor="process", heartbeat_timeout=60, start_to_close_timeout=300)
def where() -> int:
    """A no-op process activity: the process it ran in."""
    return os.getpid()


@activity(executor="process", heartbeat_timeout=60, start_to_close_timeout=300)
def unserializable(_: Any = None) -> object:
    return object()


@activity(executor="process", heartbeat_timeout=60, start_to_close_timeout=300)
def oversized(size: int) -> None:
    """Heartbeats details over SWF's limit: heartbeat() raises in the child."""
    heartbeat("x" * size)


@activity(executor="process", heartbeat_timeout=60, start_to_close_timeout=300)
def rapid(calls: int) -> None:
    """Calls heartbeat() as fast as it can, then waits to be cancelled without a call."""
    for number in range(calls):
        heartbeat({"pid": os.getpid(), "call": number})
    while not cancel_requested():
        time.sleep(0.01)
    raise ActivityCancelled("stopped as asked")
