"""Noticing an activity that blocks the event loop.

A coroutine activity that calls blocking code (``time.sleep``, a synchronous driver, a long
computation) freezes the whole worker: no heartbeat leaves for any activity, so SWF times
them all out while the culprit runs. The loop cannot report its own stall, so a thread
watches a timestamp the loop refreshes; when it goes stale for longer than the shortest
heartbeat interval in use, the thread looks at the loop thread's stack to name the activity
responsible, and logs a warning that says how to fix it.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from types import CodeType, FrameType

import anyio
from structlog.typing import FilteringBoundLogger

__all__ = ["LoopWatchdog"]

_TICK = 0.1


class LoopWatchdog:
    def __init__(
        self,
        threshold: Callable[[], float | None],
        activity_names: dict[CodeType, str],
        log: FilteringBoundLogger,
    ) -> None:
        """``threshold`` gives the stall (seconds) worth a warning now, or None for none."""
        self._threshold = threshold
        self._activity_names = activity_names
        self._log = log
        self._last_tick = time.monotonic()
        self._stop = threading.Event()
        self.warnings = 0
        self.last_blocked_at = -math.inf
        """When the monitor last saw the loop blocked past the threshold (monotonic)."""
        self.longest_block = 0.0
        """The longest stall the monitor saw past the threshold, in seconds."""
        self._recent_block = 0.0
        self.lag_observer: Callable[[float], None] | None = None
        """Called on the loop at each tick with how late it woke (seconds): for metrics."""

    def blocked_within(self, seconds: float) -> float | None:
        """The stall seen if the loop is blocked past the threshold now or was within the
        last ``seconds``; None if not. For health checks, which run on the loop and so are
        served only once a block is over."""
        now = time.monotonic()
        stalled = now - self._last_tick
        threshold = self._threshold()
        if threshold is not None and stalled >= max(threshold, _TICK * 3):
            return stalled
        if now - self.last_blocked_at <= seconds:
            return self._recent_block
        return None

    async def run(self) -> None:
        """Refresh the timestamp from the loop while a thread checks it; until cancelled."""
        loop_thread = threading.get_ident()
        monitor = threading.Thread(
            target=self._monitor, args=(loop_thread,), name="heartbeat-worker watchdog", daemon=True
        )
        monitor.start()
        try:
            while True:
                now = time.monotonic()
                observer = self.lag_observer
                if observer is not None:
                    observer(max(0.0, now - self._last_tick - _TICK))
                self._last_tick = now
                await anyio.sleep(_TICK)
        finally:
            self._stop.set()

    def _monitor(self, loop_thread: int) -> None:
        warned = False
        while not self._stop.wait(_TICK):
            stalled = time.monotonic() - self._last_tick
            if stalled < _TICK * 3:
                warned = False
                continue
            threshold = self._threshold()
            if threshold is None or stalled < threshold:
                continue
            self._recent_block = stalled
            self.longest_block = max(self.longest_block, stalled)
            self.last_blocked_at = time.monotonic()
            if warned:
                continue
            warned = True
            self.warnings += 1
            culprit = self._culprit(sys._current_frames().get(loop_thread))
            self._log.warning(
                "the event loop is blocked: no heartbeat can be sent until it is free",
                blocked_for=round(stalled, 2),
                activity=culprit or "unknown",
                hint="use `await` for waits, or a blocking `def` activity (run in a thread)",
            )

    def _culprit(self, frame: FrameType | None) -> str | None:
        while frame is not None:
            name = self._activity_names.get(frame.f_code)
            if name is not None:
                return name
            frame = frame.f_back
        return None
