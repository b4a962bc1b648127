"""Task lists: FIFO hand-off of tasks to long polls.

A task is handed to exactly one poll, oldest task first and oldest poll first. The hand-off
(``take``) runs synchronously in the same loop step that decides who gets the task, so a task
can never be both given to a poll and timed out, nor given to two polls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["TaskQueue"]

T = TypeVar("T")
R = TypeVar("R")


class _Waiter(Generic[T, R]):
    __slots__ = ("future", "handle", "take")

    def __init__(self, future: asyncio.Future[R | None], take: Callable[[T], R | None]) -> None:
        self.future = future
        self.take = take
        self.handle: asyncio.TimerHandle | None = None


class TaskQueue(Generic[T, R]):
    """Pending tasks of one task list, and the polls waiting on it."""

    __slots__ = ("pending", "waiters")

    def __init__(self) -> None:
        self.pending: deque[T] = deque()
        self.waiters: deque[_Waiter[T, R]] = deque()

    def put(self, item: T) -> None:
        """Give ``item`` to the oldest waiting poll, or keep it for the next one."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if waiter.future.done():
                continue
            if waiter.handle is not None:
                waiter.handle.cancel()
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

    async def get(self, timeout: float, take: Callable[[T], R | None]) -> R | None:
        """The first task ``take`` accepts, or None once ``timeout`` seconds have passed."""
        while self.pending:
            result = take(self.pending.popleft())
            if result is not None:
                return result
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R | None] = loop.create_future()
        waiter: _Waiter[T, R] = _Waiter(future, take)
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
