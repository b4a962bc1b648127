"""Activities that misbehave the ways real code does: stray cancellations, SystemExit from a
library, context variables left set, task groups, wrappers, threads that ignore cancellation.
Module level, so that a worker process started with ``heartbeat-worker run`` finds them."""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import structlog

from heartbeat_worker import ActivityCancelled, activity, heartbeat

from .activities import event

# -- item 1: a BaseException that is not the framework's stop ---------------------------------


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def stray_cancel(_: Any = None) -> str:
    """Awaits a future that was cancelled: a CancelledError the worker never asked for."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.cancel()
    await future
    return "never"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def argparse_exit(_: Any = None) -> str:
    """A library that calls sys.exit(): argparse on arguments it does not know."""
    argparse.ArgumentParser(prog="library").parse_args(["--no-such-option"])
    return "never"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
def blocking_exit(_: Any = None) -> str:
    raise SystemExit(3)


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def keyboard_interrupt(_: Any = None) -> str:
    raise KeyboardInterrupt


# -- item 3: context variables ------------------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def leave_context(value: str) -> dict[str, Any]:
    """Sets a context variable and binds a structlog field, then reads both back."""
    seen = {"var": request_id.get(), "bound": dict(structlog.contextvars.get_contextvars())}
    request_id.set(value)
    structlog.contextvars.bind_contextvars(leaked=value)
    return seen


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
def leave_context_blocking(value: str) -> dict[str, Any]:
    seen = {"var": request_id.get(), "bound": dict(structlog.contextvars.get_contextvars())}
    request_id.set(value)
    structlog.contextvars.bind_contextvars(leaked=value)
    return seen


# -- item 5: task groups inside activities ------------------------------------------------------


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def group_cancelled(_: Any = None) -> str:
    """A child task answers its cancellation with ActivityCancelled and its details."""

    async def child() -> None:
        heartbeat({"phase": "child working"})
        event("group_cancelled.started").set()
        try:
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            raise ActivityCancelled(details={"child": "rolled back"}) from None

    async with anyio.create_task_group() as group:
        group.start_soon(child)
        await anyio.sleep(3600)
    return "never"


def _lookup(table: dict[str, int], key: str) -> int:
    return table[key]


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def group_key_error(_: Any = None) -> str:
    async def child() -> None:
        _lookup({}, "missing-key")

    async with anyio.create_task_group() as group:
        group.start_soon(child)
        await anyio.sleep(3600)
    return "never"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def chained(_: Any = None) -> int:
    try:
        return _lookup({}, "the-cause-key")
    except KeyError as error:
        raise RuntimeError("could not load the row") from error


# -- item 7: oversized cancel details -----------------------------------------------------------


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def huge_cancel_details(size: int) -> str:
    event("huge_cancel_details.started").set()
    try:
        await anyio.sleep(3600)
    except anyio.get_cancelled_exc_class():
        raise ActivityCancelled(details={"rows": ["r" * 10] * (size // 13)}) from None
    return "never"


# -- item 8: threads that ignore cancellation ---------------------------------------------------


class ThreadCount:
    """How many threads run the activity now, and the most that ever did at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def reset(self) -> None:
        with self.lock:
            self.running = self.most = 0

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1


deaf_threads = ThreadCount()


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
def deaf_thread(seconds: float) -> str:
    """Ignores every stop request for ``seconds``, counting how many run at once."""
    deaf_threads.enter()
    try:
        event("deaf_thread.started").set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not event("deaf_thread.release").is_set():
            time.sleep(0.01)
        return "done"
    finally:
        deaf_threads.leave()


# -- item 9: a shielded cleanup longer than the hard deadline -----------------------------------


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def long_shielded_cleanup(seconds: float) -> str:
    event("long_shielded_cleanup.started").set()
    try:
        await anyio.sleep(3600)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(seconds)
    return "never"


# -- item 10: plain functions that return awaitables --------------------------------------------


async def _add(a: int, b: int) -> int:
    await anyio.lowlevel.checkpoint()
    return a + b


def _logged(function: Callable[..., Awaitable[int]]) -> Callable[..., Awaitable[int]]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Awaitable[int]:
        return function(*args, **kwargs)

    return wrapper


@activity(name="wrapped_add", heartbeat_timeout=60, start_to_close_timeout=300)
@_logged
async def wrapped_add(a: int, b: int) -> int:
    return await _add(a, b)


def _returns_awaitable(a: int, b: int) -> Awaitable[int]:
    return _add(a, b)


partial_add = activity(
    functools.partial(_returns_awaitable, b=40),  # type: ignore[arg-type]
    name="partial_add",
    heartbeat_timeout=60,
    start_to_close_timeout=300,
)


# -- item 12: a slow cleanup during which SWF asks to cancel -----------------------------------


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def slow_cleanup(_: Any = None) -> str:
    event("slow_cleanup.started").set()
    try:
        await anyio.sleep(3600)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(event("slow_cleanup.release").wait, 20)
    return "never"
