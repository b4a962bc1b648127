"""Task lists: FIFO hand-off of tasks to long polls.

A task is handed to exactly one poll, oldest task first and oldest poll first. The hand-off
(``take``) runs synchronously in the same loop step that decides who gets the task, so a task
can never be both given to a poll and timed out, nor given to two polls.

A poll whose client has gone (its HTTP connection closed: a worker killed or restarted) is
skipped rather than handed a task nobody will read, which would sit until its timeout. SWF
does hand tasks to such polls; a waiter without an ``alive`` check keeps that behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Generic, TypeVar

__all__ = ["POLL_CONNECTION_OPEN", "TaskQueue"]

T = TypeVar("T")
R = TypeVar("R")

POLL_CONNECTION_OPEN: ContextVar[Callable[[], bool] | None] = ContextVar(
    "heartbeat_worker_devserver_poll_connection_open", default=None
)
"""For the request being served, whether its client connection is still open (``_http.py``)."""


class _Waiter(Generic[T, R]):
    __slots__ = ("alive", "future", "handle", "identity", "since", "take")

    def __init__(
        self,
        future: asyncio.Future[R | None],
        take: Callable[[T], R | None],
        alive: Callable[[], bool] | None,
        identity: str | None,
    ) -> None:
        self.future = future
        self.take = take
        self.alive = alive
        self.identity = identity
        self.since = time.time()
        self.handle: asyncio.TimerHandle | None = None

    def is_open(self) -> bool:
        """Still waiting, and (when that can be known) its client still there."""
        return not self.future.done() and (self.alive is None or self.alive())


class TaskQueue(Generic[T, R]):
    """Pending tasks of one task list, and the polls waiting on it."""

    __slots__ = ("abandoned", "pending", "waiters")

    def __init__(self) -> None:
        self.pending: deque[T] = deque()
        self.waiters: deque[_Waiter[T, R]] = deque()
        self.abandoned = 0
        """Polls skipped because their client had gone."""

    def put(self, item: T) -> None:
        """Give ``item`` to the oldest waiting poll, or keep it for the next one."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if waiter.future.done():
                continue
            if waiter.handle is not None:
                waiter.handle.cancel()
            if waiter.alive is not None and not waiter.alive():
                self.abandoned += 1
                waiter.future.set_result(None)
                continue
            # take() returns None when the item became stale (its workflow closed...):
            # the poll keeps waiting for the next one.
            result = waiter.take(item)
            if result is None:
                self.waiters.appendleft(waiter)
                return
            waiter.future.set_result(result)
            return
        self.pending.append(item)

    def remove(self, item: T) -> None:
        with contextlib.suppress(ValueError):
            self.pending.remove(item)

    def __len__(self) -> int:
        return len(self.pending)

    async def get(
        self,
        timeout: float,
        take: Callable[[T], R | None],
        alive: Callable[[], bool] | None = None,
        identity: str | None = None,
    ) -> R | None:
        """The first task ``take`` accepts, or None once ``timeout`` seconds have passed.

        ``alive`` says whether the poll's client is still there; without it, a task may be
        handed to a poll nobody waits for any more."""
        while self.pending:
            result = take(self.pending.popleft())
            if result is not None:
                return result
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R | None] = loop.create_future()
        waiter: _Waiter[T, R] = _Waiter(future, take, alive, identity)
        waiter.handle = loop.call_later(timeout, self._expire, waiter)
        self.waiters.append(waiter)
        try:
            return await future
        finally:
            if future.cancelled() or not future.done():
                # The poll itself was cancelled (server shutting down): forget the waiter. A task
                # handed over at that very moment stays started and times out, as on SWF when
                # a poll's connection is lost.
                waiter.handle.cancel()
                self._forget(waiter)

    def open_polls(self) -> list[tuple[str | None, float]]:
        """(identity, epoch seconds it started) of each poll waiting with its client there."""
        return [(waiter.identity, waiter.since) for waiter in self.waiters if waiter.is_open()]

    def release(self) -> None:
        """Answer every waiting poll with no task, as on a timeout: used when shutting down,
        so that stopping the server does not wait for long polls to run out."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if waiter.handle is not None:
                waiter.handle.cancel()
            if not waiter.future.done():
                waiter.future.set_result(None)

    def _expire(self, waiter: _Waiter[T, R]) -> None:
        if not waiter.future.done():
            self._forget(waiter)
            waiter.future.set_result(None)

    def _forget(self, waiter: _Waiter[T, R]) -> None:
        with contextlib.suppress(ValueError):
            self.waiters.remove(waiter)
