"""Interceptors: user code around each task, each activity call, each answer, each SWF call.

Metrics, tracing and error reporting (Sentry and the like) all need to see the same few
moments of a task, and none of them belongs in the worker. So the worker offers hooks, and
the built-in metrics and tracing use them like any user would. The shape is a chain: each
:class:`Interceptor` overrides the hooks it cares about and calls the same method on
``self.next`` to go on; the last link is the worker itself. Each hook takes one input
dataclass, so a field can be added later without breaking anybody's signature.

A worker without interceptors builds no chain, wraps no client and allocates no input: the
call sites test one attribute for ``None``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._context import ActivityInfo

__all__ = [
    "AnswerInput",
    "ExecuteActivityInput",
    "HandleTaskInput",
    "Interceptor",
    "SWFCallInput",
    "TaskDescription",
    "build_chain",
    "intercept_client",
]


@dataclass(frozen=True, slots=True, eq=False)
class TaskDescription:
    """One polled task, as every hook of that task sees it (the same object each time, so
    it can key a dict). The task token is not here: only its hash."""

    domain: str
    task_list: str
    activity_type: str
    activity_version: str
    activity_id: str
    workflow_id: str
    run_id: str
    token_hash: str

    @classmethod
    def from_task(
        cls, task: Mapping[str, Any], domain: str, task_list: str, token_hash: str
    ) -> TaskDescription:
        activity_type = task["activityType"]
        execution = task["workflowExecution"]
        return cls(
            domain=domain,
            task_list=task_list,
            activity_type=activity_type["name"],
            activity_version=activity_type["version"],
            activity_id=task["activityId"],
            workflow_id=execution["workflowId"],
            run_id=execution["runId"],
            token_hash=token_hash,
        )


@dataclass(frozen=True, slots=True)
class HandleTaskInput:
    """Input of :meth:`Interceptor.handle_task`: a task, from the poll reply to its end."""

    task: TaskDescription
    during_shutdown: bool
    """True when the task arrived after shutdown began; it is handed back unrun."""
    _run: Callable[[], Awaitable[str]] = field(repr=False)


@dataclass(frozen=True, slots=True)
class ExecuteActivityInput:
    """Input of :meth:`Interceptor.execute_activity`: one call of the activity function."""

    task: TaskDescription
    info: ActivityInfo
    function: Callable[..., Any]
    args: Sequence[Any]
    kwargs: Mapping[str, Any]
    in_thread: bool
    """True for a blocking ``def`` activity, which runs in a worker thread."""
    _call: Callable[[], Awaitable[Any]] = field(repr=False)


@dataclass(frozen=True, slots=True)
class AnswerInput:
    """Input of :meth:`Interceptor.answer`: the one answer of a task.

    ``outcome`` is ``completed``, ``failed``, ``canceled``, ``shutdown`` (failed with reason
    ``worker shutdown``), ``stalled`` (failed for want of progress), ``left`` (no call: the
    task is left to SWF's timeout) or ``completes_later`` (no call: the activity raised
    ``CompleteLater``).
    """

    task: TaskDescription
    outcome: str
    reason: str | None
    duration: float
    """Seconds from the poll reply to the moment the answer was decided."""
    heartbeats: int
    """Heartbeats acknowledged for this task."""
    _send: Callable[[], Awaitable[None]] = field(repr=False)


@dataclass(frozen=True, slots=True)
class SWFCallInput:
    """Input of :meth:`Interceptor.swf_call`: one attempt of one SWF call (each retry is a
    call of its own).

    ``arguments`` are the call's parameters as sent; they may hold the task token, which is
    a secret: never log them whole.
    """

    operation: str
    """The SWF operation, such as ``RecordActivityTaskHeartbeat``."""
    arguments: Mapping[str, Any]
    task: TaskDescription | None
    """The task the call is about; None for polls and worker-wide calls."""
    heartbeat_lateness: float | None
    """For the first attempt of each heartbeat: seconds it left after the time planned for
    it (never negative); None otherwise."""
    _call: Callable[[], Awaitable[Mapping[str, Any]]] = field(repr=False)


class Interceptor:
    """One link of the chain given to ``Worker(interceptors=[...])``; the first is outermost.

    Override any hook and call the same method on :attr:`next` to go on (or do not, to
    replace the step, at your own risk). Hooks run on the worker's event loop, so they must
    not block; an exception a hook raises takes the place of what the step would have done
    (for :meth:`execute_activity`, it fails the task like an activity's own exception).
    An instance belongs to one worker.
    """

    next: Interceptor

    async def handle_task(self, input: HandleTaskInput) -> str:
        """Around one whole task, from the poll reply to the end of its answer. Returns the
        outcome, as in :class:`AnswerInput`."""
        return await self.next.handle_task(input)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        """Around one call of the activity function; returns what it returned. Runs in the
        context the activity runs in (``heartbeat_worker.info()`` works here)."""
        return await self.next.execute_activity(input)

    async def answer(self, input: AnswerInput) -> None:
        """Around the answer of a task, retries included; once per task, ``left`` too."""
        await self.next.answer(input)

    async def swf_call(self, input: SWFCallInput) -> Mapping[str, Any]:
        """Around one attempt of an SWF call; returns the reply, or raises its error."""
        return await self.next.swf_call(input)


class _Terminal(Interceptor):
    """The end of the chain: the worker's own step."""

    async def handle_task(self, input: HandleTaskInput) -> str:
        return await input._run()

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        return await input._call()

    async def answer(self, input: AnswerInput) -> None:
        await input._send()

    async def swf_call(self, input: SWFCallInput) -> Mapping[str, Any]:
        return await input._call()


def build_chain(interceptors: Iterable[Interceptor]) -> Interceptor | None:
    """Link ``interceptors`` in order; None when there are none (no cost on the hot path)."""
    links = list(interceptors)
    if not links:
        return None
    following: Interceptor = _Terminal()
    for link in reversed(links):
        if not isinstance(link, Interceptor):
            raise ConfigurationError(f"{link!r} is not an Interceptor")
        if getattr(link, "next", following) is not following:
            raise ConfigurationError(f"{link!r} is already part of another worker's chain")
        link.next = following
        following = link
    return following


def _operation_name(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


class _InterceptedClient:
    """An SWF client whose calls go through the chain; one per task when bound to one."""

    __slots__ = ("_chain", "_client", "_lateness", "_task")

    def __init__(
        self,
        client: Any,
        chain: Interceptor,
        task: TaskDescription | None,
        lateness: Callable[[], float | None] | None,
    ) -> None:
        self._client = client
        self._chain = chain
        self._task = task
        self._lateness = lateness

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Mapping[str, Any]]]:
        method = getattr(self._client, name)
        operation = _operation_name(name)
        chain, task = self._chain, self._task
        lateness = self._lateness if name == "record_activity_task_heartbeat" else None

        async def call(**arguments: Any) -> Mapping[str, Any]:
            late = None if lateness is None else lateness()
            return await chain.swf_call(
                SWFCallInput(
                    operation=operation,
                    arguments=arguments,
                    task=task,
                    heartbeat_lateness=late,
                    _call=lambda: method(**arguments),
                )
            )

        return call


def intercept_client(
    client: Any,
    chain: Interceptor,
    task: TaskDescription | None = None,
    heartbeat_lateness: Callable[[], float | None] | None = None,
) -> Any:
    """``client`` with every call going through ``chain`` (typed as the client it wraps)."""
    return _InterceptedClient(client, chain, task, heartbeat_lateness)
