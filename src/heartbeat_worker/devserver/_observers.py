"""Watching the calls the dev server handles: what a test asserts SWF received.

A test that checks what reached SWF (the tokens handed out, when each heartbeat arrived,
what a worker answered) needs the server's side of the conversation, not the worker's. An
observer sees every call the server applied or refused, after the fact: it cannot change
the answer, and a fault that acted before the call (a throttle, a dropped connection) is
not a call the server handled, so it is not seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Call", "Observer", "Observers"]


@dataclass(frozen=True, slots=True)
class Call:
    """One call the dev server handled."""

    operation: str
    """The SWF operation, such as ``"RecordActivityTaskHeartbeat"``."""
    request: Mapping[str, Any]
    """The decoded request body."""
    reply: Mapping[str, Any] | None
    """The reply body, or None when the call was refused (see :attr:`error`)."""
    error: str | None
    """The SWF error code the call was refused with (``"UnknownResourceFault"``...)."""
    at: float
    """``time.monotonic()`` when the server had handled it."""


Observer = Callable[[Call], None]


class Observers:
    """The callbacks :meth:`~heartbeat_worker.devserver.DevServer.observe` registered."""

    def __init__(self) -> None:
        self._callbacks: list[Observer] = []

    def add(self, callback: Observer) -> Callable[[], None]:
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def notify(
        self,
        operation: str,
        request: Mapping[str, Any],
        reply: Mapping[str, Any] | None,
        error: str | None = None,
    ) -> None:
        if not self._callbacks:
            return
        call = Call(operation, request, reply, error, time.monotonic())
        for callback in tuple(self._callbacks):
            callback(call)
