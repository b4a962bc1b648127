"""Shared resources: a lifespan opened once per worker, on its loop, around all its tasks.

Activities often need something costly to open and meant to be shared: an HTTP session, a
database pool. Opened per task, it costs a connection set-up per task; opened at import
time, it is bound to no event loop or to the wrong one. So the worker enters the user's
async context manager on its own loop before the first poll and exits it after the last
answer, and what it yields is what :func:`resources` returns in every activity. The value
travels in a context variable set before the worker's slots start, which every activity
inherits (threads too: anyio copies the context into them), so two workers in one process
each see their own.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar, Token
from typing import Any, TypeVar, overload

from ._errors import ConfigurationError

__all__ = [
    "LifespanFactory",
    "lifespan",
    "reset_resources",
    "resources",
    "set_resources",
    "to_factory",
]

T = TypeVar("T")

LifespanFactory = Callable[[], AbstractAsyncContextManager[Any]]
"""What ``Worker(lifespan=...)`` takes: a callable returning an async context manager (an
``@asynccontextmanager`` function), or an async generator function that yields once."""

LIFESPAN_MARK = "__heartbeat_worker_lifespan__"
"""Set on a function decorated with :func:`lifespan`, for the CLI's loader to find."""

_NOT_SET: Any = object()
_resources: ContextVar[Any] = ContextVar("heartbeat_worker_resources", default=_NOT_SET)


def to_factory(function: Callable[[], Any]) -> LifespanFactory:
    """Accept an async generator function as well as a context manager factory."""
    if inspect.isasyncgenfunction(function):
        return contextlib.asynccontextmanager(function)
    if not callable(function):
        raise ConfigurationError(f"lifespan {function!r} is not callable")
    return function


def lifespan(function: Callable[[], AsyncIterator[T]]) -> Callable[[], Any]:
    """Mark a module-level async generator as the worker's lifespan.

    ``heartbeat-worker run myjobs`` uses it when it builds the worker; what it yields is
    what :func:`resources` returns in the activities. Code after the ``yield`` runs once
    the last task is answered at shutdown::

        @heartbeat_worker.lifespan
        async def shared() -> AsyncIterator[aiohttp.ClientSession]:
            async with aiohttp.ClientSession() as session:
                yield session
    """
    factory = to_factory(function)
    setattr(factory, LIFESPAN_MARK, True)
    return factory


@overload
def resources() -> Any: ...
@overload
def resources(kind: type[T]) -> T: ...
def resources(kind: type[Any] | None = None) -> Any:
    """What the worker's lifespan yielded; with ``kind``, checked to be an instance of it.

    Works in activities (coroutines and threads) and in anything else the worker runs.
    Raises :class:`~heartbeat_worker.ConfigurationError` when the worker has no lifespan.
    """
    value = _resources.get()
    if value is _NOT_SET:
        raise ConfigurationError(
            "no resources: give the Worker a lifespan (Worker(lifespan=...) or a module-level "
            "@heartbeat_worker.lifespan function)"
        )
    if kind is not None and not isinstance(value, kind):
        raise ConfigurationError(
            f"the lifespan yielded a {type(value).__name__}, not a {kind.__name__}"
        )
    return value


def set_resources(value: Any) -> Token[Any]:
    """Make ``value`` what :func:`resources` returns in the calling task and its children."""
    return _resources.set(value)


def reset_resources(token: Token[Any]) -> None:
    _resources.reset(token)
