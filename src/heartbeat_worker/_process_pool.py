"""The parent side of the process executor: a pool of warm child processes.

A blocking activity in a thread shares the interpreter lock with the whole worker, so a
CPU-bound one uses one core however many slots there are, and a thread that ignores its stop
request cannot be stopped at all: after the grace period it is abandoned and runs on. An
activity declared with ``executor="process"`` runs in a child process instead: real
parallelism, and a stop that is enforced, since a process can be terminated.

The pool starts its children when the worker starts (``spawn`` by default, or
``forkserver``; never a plain ``fork`` of a process that runs threads) and keeps them: a
call only sends a message down a pipe. Each call reads its child's pipe on the event loop,
where heartbeat details land in the task's context for the heartbeater to send. A stop
request is forwarded as the child's cooperative flag; if the activity still runs when the
execution gives up on it (the grace period), the cancelled call terminates the child
(SIGTERM, then SIGKILL after :data:`TERMINATE_WAIT`) and starts a replacement. A child that
dies on its own (a segfault, ``os._exit``, the OOM killer) fails its task with a reason
naming the signal or exit code, and is replaced the same way.

No child outlives the pool: leaving it closes every pipe (an idle child exits at once, see
:mod:`heartbeat_worker._process_child`) and terminates what is left. If the worker itself is
killed, each child sees its pipe end, and on Linux also gets the parent-death signal.

This module is imported only by a worker that has process activities.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import signal
from contextlib import suppress
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from anyio.abc import TaskGroup
from structlog.typing import FilteringBoundLogger

from ._context import ActivityContext
from ._definition import Activity
from ._errors import ActivityCancelled, ActivityProcessError, ProcessPoolError
from ._logging import get_logger
from ._process_child import main as child_main

__all__ = ["BOOT_TIMEOUT", "TERMINATE_WAIT", "ProcessPool", "StartMethod"]

StartMethod = Literal["spawn", "forkserver"]

TERMINATE_WAIT = 0.5
"""Seconds a terminated child has to exit after SIGTERM before it gets SIGKILL.

The child's default SIGTERM action ends it at once; only an activity that installs its own
SIGTERM handler uses this time. Short, so that a stopped activity is gone within a second
of its grace period."""

BOOT_TIMEOUT = 60.0
"""Seconds the pool waits, when it opens, for its children to import their modules."""

_SENTINEL_WAIT = 0.1
"""Seconds to wait for a child's sentinel before polling for its exit instead."""

_EXIT_POLL = 0.005
"""Seconds between checks of an exit the sentinel did not (or not yet) show."""

_EXIT_WAIT = 2.0
"""Seconds a child whose pipe ended has to exit before it is treated as hung."""


class _ChildDied(Exception):
    """The child ended before answering; the message is the task's failure reason."""


class _Child:
    """One child process and the parent's end of its pipe."""

    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        self.ready = False
        self.pid: int = process.pid or 0

    async def receive(self) -> tuple[Any, ...]:
        """The next message, read without blocking the event loop; EOF means death."""
        try:
            while not self.connection.poll():
                await anyio.wait_readable(self.connection.fileno())
            message: tuple[Any, ...] = self.connection.recv()
        except (EOFError, OSError):
            raise _ChildDied(await self.death()) from None
        return message

    async def death(self) -> str:
        """Wait (briefly) for the process to end, and say how it ended."""
        with anyio.move_on_after(_EXIT_WAIT):
            await _wait_exit(self.process)
        code = self.process.exitcode
        if code is None:
            return f"activity process {self.pid} closed its pipe and hung"
        return f"activity process {self.pid} {describe_exit(code)}"


def describe_exit(code: int) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if -code == signal.SIGKILL:
        return f"was killed by {name} (from outside, for example by the out-of-memory killer)"
    return f"was killed by {name}"


async def _wait_exit(process: BaseProcess) -> None:
    """Wait until ``process`` has ended.

    Its sentinel turns readable as it exits, but a grandchild that inherited the sentinel
    keeps it open, and waitpid may lag a moment behind it: nothing signals the exit itself,
    so the wait ends by polling.
    """
    if process.exitcode is None:
        with anyio.move_on_after(_SENTINEL_WAIT):
            await anyio.wait_readable(process.sentinel)
    while process.exitcode is None:  # noqa: ASYNC110 (no event tells of the exit)
        await anyio.sleep(_EXIT_POLL)


class ProcessPool:
    """Runs process activities in ``size`` warm children; use as ``async with``."""

    def __init__(
        self,
        size: int,
        activities: list[Activity[..., Any]],
        *,
        start_method: StartMethod = "spawn",
        log: FilteringBoundLogger | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a process pool needs at least one process")
        self.size = size
        self.start_method: StartMethod = start_method
        self.log = log or get_logger()
        self._context: BaseContext = multiprocessing.get_context(start_method)
        self._preload = sorted({activity.function.__module__ for activity in activities})
        self._idle: list[_Child] = []
        self._children: set[_Child] = set()
        self._jobs: dict[ActivityContext, tuple[_Child, int]] = {}
        self._changed = anyio.Event()
        self._seqs = itertools.count()
        self._group: TaskGroup | None = None
        self.replaced = 0
        """How many children were replaced (terminated after a stop, or crashed)."""

    @property
    def pids(self) -> list[int]:
        """The process IDs of the children alive now (busy, idle or still booting)."""
        return sorted(child.pid for child in self._children)

    # -- lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        try:
            children = [self._start_child() for _ in range(self.size)]
            with anyio.fail_after(BOOT_TIMEOUT):
                for child in children:
                    await self._boot(child)
        except BaseException as error:
            await self._close()
            if isinstance(error, TimeoutError):
                raise ProcessPoolError(
                    f"activity processes did not start within {BOOT_TIMEOUT:g} s"
                ) from None
            raise
        self._idle.extend(children)
        self.log.info(
            "activity processes started",
            processes=self.size,
            start_method=self.start_method,
            pids=self.pids,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        """End every child: close the pipes, then terminate whatever did not exit."""
        children = list(self._children)
        self._idle.clear()
        for child in children:
            child.connection.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(TERMINATE_WAIT):
            for child in children:
                await _wait_exit(child.process)
        for child in children:
            self._retire(child, why="worker stopping")
        assert self._group is not None
        await self._group.__aexit__(None, None, None)  # the reapers shield themselves
        self.log.debug("activity processes stopped", processes=len(children))

    def _start_child(self) -> _Child:
        """Start one child (from the event loop's thread: on Linux the parent-death signal
        follows the thread that started the child, and that thread lives as long as the
        pool)."""
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(  # type: ignore[attr-defined]
            target=child_main,
            args=(theirs, self._preload),
            name="heartbeat-worker-activity",
            daemon=True,
        )
        process.start()
        theirs.close()
        child = _Child(process, ours)
        self._children.add(child)
        return child

    async def _boot(self, child: _Child) -> None:
        """Read the child's first message: ready, or why it could not start."""
        try:
            message = await child.receive()
        except _ChildDied as died:
            raise ProcessPoolError(f"{died}; its error is on standard error") from None
        if message[0] == "broken":
            raise ProcessPoolError(
                f"an activity process could not import its modules: {message[1]}\n{message[2]}"
            )
        child.ready = True

    def _retire(self, child: _Child, *, why: str) -> None:
        """Terminate ``child`` (SIGTERM now, SIGKILL later if need be) and reap it."""
        if child not in self._children:
            return
        self._children.discard(child)
        with suppress(OSError):
            child.connection.close()
        if child.process.exitcode is None:
            child.process.terminate()
        assert self._group is not None
        self._group.start_soon(self._reap, child, why)

    async def _reap(self, child: _Child, why: str) -> None:
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(TERMINATE_WAIT):
                await _wait_exit(child.process)
            if child.process.exitcode is None:
                self.log.warning(
                    "activity process ignored SIGTERM; killing it", pid=child.pid, why=why
                )
                child.process.kill()
                await _wait_exit(child.process)
            child.process.join()  # already ended: this only reaps it
            child.process.close()

    def _replace(self, child: _Child, *, why: str) -> None:
        self._retire(child, why=why)
        self.replaced += 1
        replacement = self._start_child()
        self.log.info("activity process replaced", pid=child.pid, new_pid=replacement.pid, why=why)
        self._release(replacement)

    def _release(self, child: _Child) -> None:
        self._idle.append(child)
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- calls -----------------------------------------------------------------------------

    async def run(
        self, activity: Activity[..., Any], raw_input: str | None, context: ActivityContext
    ) -> Any:
        """Run ``activity`` in a child and return its result (decoded again from the JSON
        the child encoded, so that it is exactly what SWF will receive).

        Raises :class:`ActivityProcessError` when the activity raised or its child died,
        and :class:`ActivityCancelled` when it stopped on request, as a thread would; cancelling
        this call ends the child.
        """
        child = await self._take(context)
        seq = next(self._seqs)
        function = activity.function
        self._jobs[context] = (child, seq)
        healthy = False
        try:
            every_beat = context.observer is not None  # the testing kit shows each call
            child.connection.send(
                (
                    "run",
                    seq,
                    function.__module__,
                    function.__qualname__,
                    raw_input,
                    context.info,
                    every_beat,
                )
            )
            if context.stop_reason is not None:
                child.connection.send(("stop", seq, context.stop_reason.value))
            while True:
                message = await child.receive()
                kind = message[0]
                if kind == "beat":
                    _record_beat(context, message[2])
                    continue
                if kind == "ready":
                    child.ready = True
                    continue
                if kind == "broken":
                    raise ActivityProcessError(f"activity process could not start: {message[1]}")
                healthy = True
                return _result(message, context)
        except _ChildDied as died:
            self.log.error("activity process died", reason=str(died))
            raise ActivityProcessError(str(died)) from None
        except OSError as error:  # the pipe broke while sending
            raise ActivityProcessError(f"activity process {child.pid} is gone: {error}") from None
        finally:
            del self._jobs[context]
            if healthy:
                self._release(child)
            else:
                self._replace(child, why="stopped" if context.stop_reason else "died")

    def stop(self, context: ActivityContext) -> None:
        """Forward the stop request of ``context`` to the child running it, if any."""
        job = self._jobs.get(context)
        if job is None:
            self._wake()  # it may be waiting for a free child
            return
        child, seq = job
        assert context.stop_reason is not None
        with suppress(OSError):
            child.connection.send(("stop", seq, context.stop_reason.value))

    async def _take(self, context: ActivityContext) -> _Child:
        """A free, live child; waits for one, unless the activity is stopped meanwhile."""
        while True:
            if context.stop_reason is not None:
                raise ActivityCancelled("activity stopped before a process was free")
            while self._idle:
                child = self._idle.pop()
                if child.process.is_alive():
                    return child
                code = child.process.exitcode or 0
                self._replace(child, why=f"died while idle: {describe_exit(code)}")
            await self._changed.wait()


def _record_beat(context: ActivityContext, details_json: str | None) -> None:
    """A ``heartbeat()`` call in the child, as the thread executor would have recorded it."""
    if details_json is not None:
        context.details_json = details_json
    if context.observer is not None:
        context.observer(None if details_json is None else json.loads(details_json))


def _result(message: tuple[Any, ...], context: ActivityContext) -> Any:
    kind, _, latest = message[:3]
    if latest is not None:
        context.details_json = latest  # the last details, sent or not
    if kind == "returned":
        return None if message[3] is None else json.loads(message[3])
    if kind == "failed":
        raise ActivityProcessError(message[3], message[4])
    if kind == "cancelled":
        details_json, reason, traceback = message[3:6]
        if context.stop_reason is None:
            raise ActivityProcessError(reason, traceback)  # raised unasked: SWF wants a failure
        details = None if details_json is None else json.loads(details_json)
        raise ActivityCancelled(reason, details=details)
    raise ProcessPoolError(f"unexpected message from an activity process: {kind!r}")
