"""Running the activity's own code: in a context of its own, on the loop or in a thread.

Two promises live here.

Every activity starts in a fresh copy of the worker's context. The common path runs the
coroutine in the slot's task (spawning a task per activity costs more than the rest of the
framework's work around it), so without care a ``ContextVar.set()`` or a structlog
``bind_contextvars()`` in one activity would be seen by the next one in the same slot, and by
the worker's own log lines about it. :class:`InContext` drives a coroutine step by step inside
a given :class:`contextvars.Context`, which costs one ``Context.run`` per step and no task.

A thread keeps its concurrency capacity until it really returns. Python cannot stop a thread;
when a blocking activity ignores its stop request, the worker answers without it and the
thread is abandoned, but its code still runs. :class:`ThreadWatch` tells the slot whether the
thread is still running, and wakes it when the thread finally returns, so that the slot does
not poll for more work meanwhile and ``max_concurrency`` bounds the user code actually running.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Generator
from contextvars import Context
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["InContext", "ThreadWatch"]


class InContext:
    """Await ``awaitable`` with each of its steps run inside ``context``.

    The task awaiting this is the one the awaitable runs in, so cancel scopes, timeouts and
    ``current_task()`` behave as for a plain ``await``; only context variables differ.
    """

    __slots__ = ("_awaitable", "_context")

    def __init__(self, awaitable: Awaitable[Any], context: Context) -> None:
        self._awaitable = awaitable
        self._context = context

    def __await__(self) -> Generator[Any, Any, Any]:
        run = self._context.run
        steps = run(self._awaitable.__await__)
        send, throw = steps.send, steps.throw
        message: Any = None
        error: BaseException | None = None
        while True:
            try:
                yielded = run(send, message) if error is None else run(throw, error)
            except StopIteration as stop:
                return stop.value
            finally:
                # A reference from this frame to a raised error would form a cycle.
                error = None
            try:
                message = yield yielded
            except GeneratorExit:
                close = getattr(steps, "close", None)
                if close is not None:
                    run(close)
                raise
            except BaseException as thrown:
                message, error = None, thrown


class ThreadWatch:
    """Whether an activity's thread still runs; set up on the loop, told by the thread."""

    __slots__ = ("_lock", "_returned", "_running", "_token")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = True
        self._returned: anyio.Event | None = None
        self._token = anyio.lowlevel.current_token()

    def finished(self) -> None:
        """Called by the thread as its very last step."""
        with self._lock:
            self._running = False
            returned = self._returned
        if returned is not None:
            # RuntimeError: the event loop has ended meanwhile; nobody waits any more.
            with contextlib.suppress(RuntimeError):
                anyio.from_thread.run_sync(returned.set, token=self._token)

    def abandoned(self) -> anyio.Event | None:
        """Called on the loop once the worker no longer waits for the thread: None if it has
        returned already, else an event set when it does."""
        with self._lock:
            if not self._running:
                return None
            if self._returned is None:
                self._returned = anyio.Event()
            return self._returned
