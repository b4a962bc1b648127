"""A warning that every heartbeat would repeat, logged once in a while instead.

An error that every heartbeat meets (expired credentials, a denied permission) would write
a line per call for every running activity: thousands of identical lines a minute that
bury everything else. :class:`RepeatedWarnings` logs the first, counts the next ones for
:data:`WARNING_PERIOD`, and says how many it left out in the next line it writes.
"""

from __future__ import annotations

from typing import Any

import anyio
from structlog.typing import FilteringBoundLogger

__all__ = ["WARNING_PERIOD", "RepeatedWarnings"]

WARNING_PERIOD = 10.0
"""The same warning (message and error) is logged at most once per this many seconds per
worker; the next line says how many were left out."""

_WARNING_KEYS_MAX = 256
"""Distinct warnings remembered for the rate limit; beyond this the memory starts afresh."""


class RepeatedWarnings:
    """Logs a warning at most once per :data:`WARNING_PERIOD` for each (message, error).

    An error that every heartbeat meets (expired credentials, a denied permission) would
    otherwise write a line per call for every running activity.
    """

    def __init__(self, period: float = WARNING_PERIOD) -> None:
        self.period = period
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def warn(self, log: FilteringBoundLogger, event: str, error: str, **fields: Any) -> None:
        now = anyio.current_time()
        key = (event, error)
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.period:
            self._seen[key] = (last[0], last[1] + 1)
            return
        if len(self._seen) >= _WARNING_KEYS_MAX:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if last is not None and last[1]:
            fields["repeated"] = last[1]
            fields["repeated_over_s"] = round(now - last[0], 1)
        log.warning(event, error=error, **fields)
