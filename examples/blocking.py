"""A CPU-bound blocking activity: the worker keeps heartbeating while it computes.

``count_primes`` counts the primes up to ``limit`` by trial division, in plain Python, one
segment at a time. It is an ordinary ``def``: the worker runs it in a worker thread, so the
event loop stays free, and the background heartbeater goes on beating every interval even
though the activity only calls ``heartbeat()`` once per segment (the interpreter hands the
loop the GIL every few milliseconds). The activity does not have to heartbeat on time; it
only reports progress, and its ``heartbeat()`` call is also where a cancellation reaches it
(``ActivityCancelled`` is raised there), so a segment should take well under a second.

``count_primes_process`` is the same function as a process activity
(``executor="process"``): it runs in a child process of the worker's pool, so several of them
use several cores at once (threads share one, the interpreter lock), and one that is
cancelled in the middle of a long segment is stopped for real: its process is terminated at
the end of the cancel grace period, where a thread could only be abandoned.

Input, a JSON object::

    {"limit": 2000000, "segment": 20000}

Serve it::

    heartbeat-worker run examples.blocking --domain D --task-list T
    python -m examples.blocking --domain D --task-list T --endpoint-url URL --register
"""

from __future__ import annotations

import math
import time
from typing import Any

from heartbeat_worker import activity, heartbeat

__all__ = ["count_primes", "count_primes_process", "primes_below"]


def primes_below(bound: int) -> list[int]:
    """The primes below ``bound`` (a small sieve, for the divisors)."""
    if bound < 3:
        return []
    sieve = bytearray([1]) * bound
    sieve[0] = sieve[1] = 0
    for number in range(2, math.isqrt(bound - 1) + 1):
        if sieve[number]:
            sieve[number * number :: number] = bytes(len(range(number * number, bound, number)))
    return [number for number, is_prime in enumerate(sieve) if is_prime]


def _count_segment(start: int, stop: int, divisors: list[int]) -> int:
    count = 0
    for number in range(max(start, 2), stop):
        for divisor in divisors:
            if divisor * divisor > number:
                count += 1
                break
            if number % divisor == 0:
                break
        else:
            count += 1
    return count


@activity(name="count_primes", heartbeat_timeout=10, start_to_close_timeout=3600)
def count_primes(job: dict[str, Any]) -> dict[str, Any]:
    """Count the primes up to ``job["limit"]``, reporting progress after each segment."""
    limit, segment = int(job["limit"]), int(job.get("segment", 20_000))
    if limit < 0 or segment < 1:
        raise ValueError("limit must be at least 0 and segment at least 1")
    began = time.monotonic()
    divisors = primes_below(math.isqrt(limit) + 1)
    primes = 0
    for start in range(0, limit + 1, segment):
        stop = min(start + segment, limit + 1)
        primes += _count_segment(start, stop, divisors)
        heartbeat(
            {
                "checked": stop - 1,
                "primes": primes,
                "percent": round(100 * stop / (limit + 1), 1),
            }
        )
    return {"limit": limit, "primes": primes, "seconds": round(time.monotonic() - began, 3)}


@activity(
    name="count_primes_process",
    executor="process",
    heartbeat_timeout=10,
    start_to_close_timeout=3600,
)
def count_primes_process(job: dict[str, Any]) -> dict[str, Any]:
    """``count_primes`` in a child process: one core per running activity."""
    return count_primes(job)


if __name__ == "__main__":
    from examples._serve import serve

    serve("examples.blocking")
