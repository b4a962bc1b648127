"""The ``@activity`` decorator and what it records about a function.

The decorator only describes: it does not change how the function behaves when called
directly, so activities stay ordinary functions that unit tests can call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from ._errors import ConfigurationError

__all__ = ["Activity", "ActivityType", "Executor", "activity", "format_timeout"]

Executor = Literal["async", "thread", "process"]
"""Where an activity runs: on the event loop (``async def``), in a worker thread, or in a
child process of the worker's process pool (a blocking ``def`` only)."""

P = ParamSpec("P")
R = TypeVar("R")

_NAME_MAX = 256
_VERSION_MAX = 64


def format_timeout(seconds: float | None) -> str:
    """Render a timeout the way SWF wants it: whole seconds as a string, or ``NONE``.

    Fractional values are kept (``"0.5"``) because the dev server accepts them to run tests
    quickly; SWF itself only takes whole seconds, which is checked where types are registered.
    """
    if seconds is None:
        return "NONE"
    if seconds <= 0:
        raise ConfigurationError(f"timeouts must be positive seconds or None, not {seconds!r}")
    if float(seconds).is_integer():
        return str(int(seconds))
    return repr(float(seconds))


@dataclass(frozen=True, slots=True)
class ActivityType:
    """An SWF activity type and the defaults registered with it (seconds; None is NONE)."""

    name: str
    version: str = "1"
    task_list: str | None = None
    heartbeat_timeout: float | None = 60.0
    start_to_close_timeout: float | None = None
    schedule_to_start_timeout: float | None = None
    schedule_to_close_timeout: float | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= _NAME_MAX:
            raise ConfigurationError(f"activity name must be 1 to {_NAME_MAX} characters")
        if not 1 <= len(self.version) <= _VERSION_MAX:
            raise ConfigurationError(f"activity version must be 1 to {_VERSION_MAX} characters")
        for timeout in (
            self.heartbeat_timeout,
            self.start_to_close_timeout,
            self.schedule_to_start_timeout,
            self.schedule_to_close_timeout,
        ):
            format_timeout(timeout)  # raises on nonsense

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)

    def registration_defaults(self) -> dict[str, Any]:
        """Keyword arguments for ``RegisterActivityType`` beyond domain, name and version."""
        arguments: dict[str, Any] = {
            "defaultTaskHeartbeatTimeout": format_timeout(self.heartbeat_timeout),
            "defaultTaskStartToCloseTimeout": format_timeout(self.start_to_close_timeout),
            "defaultTaskScheduleToStartTimeout": format_timeout(self.schedule_to_start_timeout),
            "defaultTaskScheduleToCloseTimeout": format_timeout(self.schedule_to_close_timeout),
        }
        if self.task_list is not None:
            arguments["defaultTaskList"] = {"name": self.task_list}
        if self.description is not None:
            arguments["description"] = self.description
        return arguments


class Activity(Generic[P, R]):
    """A function decorated with :func:`activity`: still callable exactly as before.

    Keeping the wrapped function's signature in the type (``ParamSpec``) means a type checker
    sees ``etl(rows=10)`` on a decorated function the same as on the original.
    """

    def __init__(
        self,
        function: Callable[P, R],
        activity_type: ActivityType,
        executor: Literal["thread", "process"] | None = None,
        *,
        non_retryable: tuple[type[BaseException], ...] = (),
        progress_timeout: float | None = None,
    ) -> None:
        self.function = function
        self.activity_type = activity_type
        self.non_retryable = non_retryable
        """Exception types whose failures are marked non-retryable (see ActivityFailed)."""
        self.progress_timeout = progress_timeout
        """Seconds without ``heartbeat()`` before the activity counts as stalled; None
        takes the worker's default, ``math.inf`` turns it off for this activity."""
        self.is_coroutine = is_coroutine_function(function)
        self.executor: Executor = _executor(function, self.is_coroutine, executor)
        self.signature = inspect.signature(function)
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        target = _innermost(self.function)
        where = getattr(target, "__module__", "?")
        name = getattr(target, "__qualname__", type(target).__name__)
        return (
            f"<Activity {self.activity_type.name} v{self.activity_type.version} "
            f"({self.executor}) {where}.{name}>"
        )


def _executor(
    function: Callable[..., Any], is_coroutine: bool, chosen: Literal["thread", "process"] | None
) -> Executor:
    if chosen not in (None, "thread", "process"):
        raise ConfigurationError(f"executor must be 'thread' or 'process', not {chosen!r}")
    if is_coroutine:
        if chosen is not None:
            raise ConfigurationError(
                f"executor={chosen!r} is for a blocking def; {_name(function)} is an "
                "async def, which runs on the event loop"
            )
        return "async"
    if chosen == "process" and "<locals>" in _name(function):
        raise ConfigurationError(
            f"{_name(function)} is defined inside a function; a process activity must "
            "be defined at module level, so that its child process can import it"
        )
    return chosen or "thread"


def _name(function: Callable[..., Any]) -> str:
    target = _innermost(function)
    return str(getattr(target, "__qualname__", type(target).__name__))


def is_coroutine_function(function: Callable[..., Any]) -> bool:
    """Whether calling ``function`` starts a coroutine, looking through wrappers.

    A decorator written as a plain ``def`` around an ``async def`` (with
    ``functools.wraps``), a ``functools.partial`` of one, or an object whose ``__call__`` is
    a coroutine function all return a coroutine: run in a thread, it would never be awaited.
    """
    target = _innermost(function)
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(type(target), "__call__", None)  # noqa: B004 - the class's, not callable()
    return not inspect.isfunction(target) and inspect.iscoroutinefunction(call)


def _innermost(function: Callable[..., Any]) -> Callable[..., Any]:
    """The function under any ``functools.partial`` and ``__wrapped__`` layers."""
    for _ in range(100):  # a bound on layers, against a wrapper that wraps itself
        if isinstance(function, functools.partial):
            function = function.func
            continue
        wrapped = getattr(function, "__wrapped__", None)
        if wrapped is None:
            break
        function = wrapped
    return function


@overload
def activity(function: Callable[P, R], /) -> Activity[P, R]: ...


@overload
def activity(
    *,
    name: str | None = None,
    version: str = "1",
    task_list: str | None = None,
    heartbeat_timeout: float | None = 60.0,
    start_to_close_timeout: float | None = None,
    schedule_to_start_timeout: float | None = None,
    schedule_to_close_timeout: float | None = None,
    description: str | None = None,
    executor: Literal["thread", "process"] | None = None,
    non_retryable: tuple[type[BaseException], ...] = (),
    progress_timeout: float | None = None,
) -> Callable[[Callable[P, R]], Activity[P, R]]: ...


def activity(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    version: str = "1",
    task_list: str | None = None,
    heartbeat_timeout: float | None = 60.0,
    start_to_close_timeout: float | None = None,
    schedule_to_start_timeout: float | None = None,
    schedule_to_close_timeout: float | None = None,
    description: str | None = None,
    executor: Literal["thread", "process"] | None = None,
    non_retryable: tuple[type[BaseException], ...] = (),
    progress_timeout: float | None = None,
) -> Activity[P, R] | Callable[[Callable[P, R]], Activity[P, R]]:
    """Declare a function (``async def`` or blocking ``def``) as an SWF activity.

    Used bare (``@activity``) or with options. The timeouts are the defaults registered
    with the activity type, in seconds (``None`` registers ``NONE``); a decider may override
    them when it schedules a task, which is why the worker resolves the timeout in force
    for every task rather than trusting these values (see ``Worker(resolve_timeouts=...)``).

    ``executor`` chooses where a blocking ``def`` runs: ``"thread"`` (the default) or
    ``"process"``, a child process of the worker's pool (``Worker(max_processes=...)``), for
    CPU-bound work that should use more than one core and be stoppable for real. A process
    activity must be defined at module level; its input, result and ``heartbeat()`` details
    cross to the child as JSON.
    ``non_retryable`` lists exception types that no retry can fix: a failure they cause is
    answered with a reason marked non-retryable (see :class:`ActivityFailed`).
    ``progress_timeout`` (seconds) treats the activity as stalled when it has not called
    ``heartbeat()`` for that long: it is stopped and failed with a reason starting
    ``stalled:``. None takes the worker's default; ``math.inf`` turns it off.
    """
    if not isinstance(non_retryable, tuple) or not all(
        isinstance(kind, type) and issubclass(kind, BaseException) for kind in non_retryable
    ):
        raise ConfigurationError("non_retryable must be a tuple of exception types")
    if progress_timeout is not None and not progress_timeout > 0:
        raise ConfigurationError("progress_timeout must be positive seconds, or None")

    def decorate(target: Callable[P, R]) -> Activity[P, R]:
        if isinstance(target, Activity):
            raise ConfigurationError(f"{target!r} is already an activity")
        if inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target):
            raise ConfigurationError("an activity must be a function, not a generator")
        activity_type = ActivityType(
            name=name or target.__name__,
            version=version,
            task_list=task_list,
            heartbeat_timeout=heartbeat_timeout,
            start_to_close_timeout=start_to_close_timeout,
            schedule_to_start_timeout=schedule_to_start_timeout,
            schedule_to_close_timeout=schedule_to_close_timeout,
            description=description,
        )
        return Activity(
            target,
            activity_type,
            executor,
            non_retryable=non_retryable,
            progress_timeout=progress_timeout,
        )

    if function is not None:
        return decorate(function)
    return decorate
