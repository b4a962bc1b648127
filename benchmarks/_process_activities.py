"""The activities of ``process_executor.py``: each one twice, as a thread and as a process
activity, so that the two executors run exactly the same code.

``spin`` is the CPU-bound job: a pure-Python loop of ``rounds`` iterations that holds the
interpreter lock throughout (the benchmark calibrates ``rounds`` to about 2 s). ``noop``
measures what the executor itself costs. ``ignore`` never looks at its stop flag, so only
terminating its process ends it.
"""

from __future__ import annotations

import time

from heartbeat_worker import activity

HEARTBEAT_TIMEOUT = 60
CANCEL_HEARTBEAT_TIMEOUT = 1
"""The ignoring activity's heartbeat timeout: the worker beats every third of a second, so
it hears of a cancel request within that."""


def spin(rounds: int) -> int:
    total = 0
    for number in range(rounds):
        total = (total + number * number) % 1_000_003
    return total


def noop() -> None:
    return None


def ignore() -> None:
    # No heartbeat() call, where the stop flag would raise: only terminating ends it.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        time.sleep(0.01)


spin_thread = activity(name="spin_thread", heartbeat_timeout=HEARTBEAT_TIMEOUT)(spin)
spin_process = activity(
    name="spin_process", heartbeat_timeout=HEARTBEAT_TIMEOUT, executor="process"
)(spin)
noop_thread = activity(name="noop_thread", heartbeat_timeout=HEARTBEAT_TIMEOUT)(noop)
noop_process = activity(
    name="noop_process", heartbeat_timeout=HEARTBEAT_TIMEOUT, executor="process"
)(noop)
ignore_process = activity(
    name="ignore_process", heartbeat_timeout=CANCEL_HEARTBEAT_TIMEOUT, executor="process"
)(ignore)

ALL = [spin_thread, spin_process, noop_thread, noop_process, ignore_process]
