"""The worker loop: slots, pollers, and graceful shutdown.

The concurrency limit is a fixed set of slots, each a task that polls, runs what the poll
returned, and polls again; at most ``pollers`` of them poll at once. So a task SWF hands
over always has a slot to start in at once (a task polled and left waiting would burn its
schedule-to-start and heartbeat time in our queue instead of SWF's), and no task is
spawned per activity: at hundreds of tasks a second, a spawn and the hand-over of a slot
between tasks cost more than everything else the worker does around the two SWF calls.
Everything a poll returns is handed to a
:class:`~heartbeat_worker._execution.TaskExecution`, which always answers it.

Shutdown, in order: stop starting polls (a poll already open may still return a task, and
that task is answered); let running activities finish for ``graceful_shutdown_timeout``
while they keep heartbeating; then stop the rest, which answers them ``worker shutdown`` so
a decider can reschedule at once; past a hard deadline, give up on whatever still runs.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from types import CodeType
from typing import TYPE_CHECKING, Any, Literal, Self

import anyio
from aiobotocore.session import AioSession
from anyio.abc import TaskGroup, TaskStatus

from ._budget import DEFAULT_CEILING, LATEST_SAFE_FRACTION, HeartbeatBudget
from ._context import StopReason
from ._converter import DEFAULT_CONVERTER, Converter
from ._definition import Activity
from ._errors import ConfigurationError, LifespanError, WorkerStoppedError
from ._execution import SHUTDOWN_REASON, ExecutionSettings, Outcome, TaskExecution
from ._heartbeat_status import HeartbeatStatus
from ._heartbeater import (
    DEFAULT_HEARTBEAT_FRACTION,
    DEFAULT_INTERVAL_WITHOUT_TIMEOUT,
    JITTER,
    HeartbeatScheduler,
)
from ._interceptor import HandleTaskInput, Interceptor, build_chain, intercept_client
from ._lifespan import LifespanFactory, reset_resources, set_resources, to_factory
from ._limits import IDENTITY_MAX, cut_end
from ._logging import get_logger
from ._outages import FailureEpisode, describe_error, permanent_error_fix
from ._outcome import OutcomeKind
from ._preflight import check_startup
from ._stall import RunningActivity
from ._swf import POLL_READ_TIMEOUT, Backoff, SWFConnection, open_connection
from ._timeouts import ResolveMode, TimeoutResolver
from ._watchdog import LoopWatchdog

if TYPE_CHECKING:
    from ._process_pool import ProcessPool
    from .metrics import Metrics

__all__ = ["Worker"]

_MIN_EMPTY_POLL = 0.2
"""Seconds an empty poll takes at least, as far as the poller is concerned."""

_HARD_DEADLINE_MARGIN = 1.5
"""Seconds after the cancel grace period for the last answers to reach SWF."""

_UNWIND_TIME = 0.25
"""Seconds before the hard deadline at which whatever still runs is cancelled, for it to
unwind (and for the tasks it leaves to be counted) before :meth:`Worker.run` returns."""


class Worker:
    """Polls one task list of one domain and runs the activities it knows.

    ``await worker.run()`` serves until :meth:`request_shutdown`; ``async with worker:``
    serves in the background for the body of the block and shuts down gracefully at its end.

    ``converter`` turns payloads into the types the activities declare and back (see
    :class:`~heartbeat_worker.Converter`); ``progress_timeout`` is the default progress
    timeout of activities that declare none (None: stall detection off).
    """

    def __init__(
        self,
        domain: str,
        task_list: str,
        activities: Iterable[Activity[..., Any]],
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        session: AioSession | None = None,
        identity: str | None = None,
        max_concurrency: int = 10,
        pollers: int | None = None,
        heartbeat_fraction: float = DEFAULT_HEARTBEAT_FRACTION,
        heartbeat_interval_without_timeout: float = DEFAULT_INTERVAL_WITHOUT_TIMEOUT,
        graceful_shutdown_timeout: float = 20.0,
        cancel_grace_period: float = 3.0,
        resolve_timeouts: ResolveMode = "registered",
        max_heartbeats_per_second: float | None = None,
        heartbeat_ceiling: float = DEFAULT_CEILING,
        admission_control: bool = True,
        register_types: bool = False,
        poll_read_timeout: float = POLL_READ_TIMEOUT,
        interceptors: Iterable[Interceptor] = (),
        lifespan: LifespanFactory | None = None,
        metrics: Metrics | None = None,
        max_processes: int | None = None,
        process_start_method: Literal["spawn", "forkserver"] = "spawn",
        converter: Converter = DEFAULT_CONVERTER,
        progress_timeout: float | None = None,
    ) -> None:
        self.domain = domain
        self.task_list = task_list
        self.activities: dict[tuple[str, str], Activity[..., Any]] = {}
        for activity in activities:
            if not isinstance(activity, Activity):
                raise ConfigurationError(f"{activity!r} is not decorated with @activity")
            key = activity.activity_type.key
            if key in self.activities:
                raise ConfigurationError(f"two activities are named {key[0]!r} version {key[1]!r}")
            self.activities[key] = activity
        if max_concurrency < 1:
            raise ConfigurationError("max_concurrency must be at least 1")
        self.pollers = pollers if pollers is not None else min(2, max_concurrency)
        if not 1 <= self.pollers <= max_concurrency:
            raise ConfigurationError("pollers must be between 1 and max_concurrency")
        if not 0 < heartbeat_fraction < 1:
            raise ConfigurationError("heartbeat_fraction must be between 0 and 1")
        if progress_timeout is not None and not progress_timeout > 0:
            raise ConfigurationError("progress_timeout must be positive seconds, or None")
        if resolve_timeouts not in ("registered", "history"):
            raise ConfigurationError("resolve_timeouts must be 'registered' or 'history'")
        if max_processes is not None and max_processes < 1:
            raise ConfigurationError("max_processes must be at least 1")
        if process_start_method not in ("spawn", "forkserver"):
            raise ConfigurationError("process_start_method must be 'spawn' or 'forkserver'")
        self.max_processes = max_processes or os.cpu_count() or 1
        """Child processes for ``executor="process"`` activities (none start without one)."""
        self.process_start_method: Literal["spawn", "forkserver"] = process_start_method
        self.max_concurrency = max_concurrency
        self.endpoint_url = endpoint_url
        self.region = region
        self.session = session
        self.identity = cut_end(identity or f"{socket.gethostname()}:{os.getpid()}", IDENTITY_MAX)
        self.graceful_shutdown_timeout = graceful_shutdown_timeout
        self.cancel_grace_period = cancel_grace_period
        self.resolve_timeouts: ResolveMode = resolve_timeouts
        self.max_heartbeats_per_second = max_heartbeats_per_second
        if not LATEST_SAFE_FRACTION <= heartbeat_ceiling <= 1:
            raise ConfigurationError(
                f"heartbeat_ceiling must be between {LATEST_SAFE_FRACTION} and 1 (a fraction "
                "of the heartbeat timeout)"
            )
        self.heartbeat_ceiling = heartbeat_ceiling
        self.admission_control = admission_control
        self.register_types = register_types
        self.poll_read_timeout = poll_read_timeout
        self.lifespan = None if lifespan is None else to_factory(lifespan)
        self.metrics = metrics
        links = list(interceptors)
        if metrics is not None:
            links.append(metrics.interceptor())  # innermost: it times the steps themselves
        self._interceptor = build_chain(links)
        self._started = False
        self._settings = ExecutionSettings(
            domain=domain,
            task_list=task_list,
            heartbeat_fraction=heartbeat_fraction,
            heartbeat_interval_without_timeout=heartbeat_interval_without_timeout,
            cancel_grace_period=cancel_grace_period,
            converter=converter,
            progress_timeout=progress_timeout,
        )
        self.log = get_logger(domain=domain, task_list=task_list)
        self.executions: set[TaskExecution] = set()
        self.outcomes: dict[str, int] = {}
        self.tasks_left_at_deadline = 0
        self.startup_checks_passed = False
        """Whether the start-up checks (domain and activity types) passed: ready to poll."""
        self._poll_failures = FailureEpisode(self.log, "polls")
        self._stopped_by: WorkerStoppedError | None = None
        self._poll_permits = anyio.Semaphore(self.pollers)
        self._shutdown_requested = anyio.Event()
        self._hurry = anyio.Event()
        self._idle_scopes: set[anyio.CancelScope] = set()
        self._poll_scopes: set[anyio.CancelScope] = set()
        self._polls_open = 0
        self._background: TaskGroup | None = None
        self._change: anyio.Event | None = None
        self._serving: asyncio.Task[None]
        self._serving_scope: anyio.CancelScope
        self._slots_started = False
        self._serving_ended = False
        self._hard_deadline: float | None = None
        self._graceful_timeout_passed = False
        self._connection: SWFConnection
        self._raw_call_client: Any
        self._resolver: TimeoutResolver
        self._budget: HeartbeatBudget | None
        self._heartbeats: HeartbeatScheduler
        self._thread_limiter: anyio.CapacityLimiter
        self._processes: ProcessPool | None = None

    # -- public control --------------------------------------------------------------------

    def request_shutdown(self, *, hurry: bool = False) -> None:
        """Begin a graceful shutdown; with ``hurry``, stop running activities right away.

        Call it from the event loop thread (for example from a signal handler task).
        """
        if not self._shutdown_requested.is_set():
            self.log.info(
                "shutdown requested",
                running=len(self.executions),
                graceful_timeout=self.graceful_shutdown_timeout,
            )
            self._shutdown_requested.set()
            for scope in list(self._idle_scopes):
                scope.cancel()
            for _ in range(self._poll_permits.statistics().tasks_waiting):
                self._poll_permits.release()  # each waiting slot wakes, sees the shutdown
            self._changed()
        if hurry and not self._hurry.is_set():
            self.log.warning("hurrying shutdown: stopping running activities now")
            self._hurry.set()

    @property
    def handled(self) -> int:
        """How many polled tasks this worker has finished with (answered or left to SWF)."""
        return sum(self.outcomes.values())

    async def wait_handled(self, count: int) -> None:
        """Wait until :attr:`handled` reaches ``count``: for tests, demos and benchmarks."""
        while self.handled < count:
            await self._next_change()

    def _running_tasks(self) -> int:
        return len(self.executions)

    @property
    def heartbeat_status(self) -> HeartbeatStatus | None:
        """What the heartbeats are doing now (None until the worker runs): calls, lateness,
        and with a budget, what the running activities need and whether it admits more."""
        heartbeats: HeartbeatScheduler | None = getattr(self, "_heartbeats", None)
        return None if heartbeats is None else heartbeats.status()

    def running_activities(self) -> list[RunningActivity]:
        """What runs now, with the seconds since each activity's last ``heartbeat()``: a
        read-out for status pages and metrics (safe from another thread, such as an
        exporter's)."""
        while True:
            try:
                executions = list(self.executions)
                break
            except RuntimeError:  # the set changed during the copy (another thread)
                continue
        return [
            RunningActivity.of(execution.context)
            for execution in executions
            if execution.context is not None
        ]

    @property
    def process_ids(self) -> list[int]:
        """The process IDs of the worker's activity processes alive now; empty when no
        activity has ``executor="process"`` (no process is started then)."""
        return [] if self._processes is None else self._processes.pids

    @property
    def shutting_down(self) -> bool:
        return self._shutdown_requested.is_set()

    @property
    def polls_open(self) -> int:
        """How many polls are waiting for SWF right now (SWF cannot withdraw one)."""
        return self._polls_open

    async def __aenter__(self) -> Self:
        self._background = anyio.create_task_group()
        await self._background.__aenter__()
        try:
            await self._background.start(self._run_in_background)
        except BaseException:
            await self._background.__aexit__(None, None, None)
            raise
        return self

    async def _run_in_background(self, *, task_status: TaskStatus[None]) -> None:
        await self.run(task_status=task_status)

    async def __aexit__(self, *exc_info: object) -> None:
        self.request_shutdown()
        assert self._background is not None
        await self._background.__aexit__(None, None, None)

    # -- the loop --------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until a shutdown completes; return by its hard deadline at the latest.

        Cancelling this call (an outer cancel scope, a timeout, Ctrl-C under ``anyio.run``)
        is a shutdown in a hurry: running activities are stopped and answered
        ``worker shutdown`` within ``cancel_grace_period``, shielded from the cancellation,
        and only then does the cancellation go on.
        """
        # The lifespan is entered first and exited last: after the last answer.
        async with (
            self._lifespan(),
            open_connection(
                endpoint_url=self.endpoint_url,
                region=self.region,
                session=self.session,
                poll_connections=self.pollers,
                call_connections=min(self.max_concurrency + 4, 200),
                poll_read_timeout=self.poll_read_timeout,
            ) as connection,
            AsyncExitStack() as stack,
        ):
            # Executions get the raw call client: with interceptors, each wraps it for its task.
            self._raw_call_client = connection.call_client
            self._connection = swf = self._intercepted(connection)
            # Raises StartupError (one line: what is missing, how to fix it) before any poll.
            await check_startup(
                swf.call_client,
                self.domain,
                self.activities.values(),
                self.log,
                register_types=self.register_types,
                endpoint=connection.call_client.meta.endpoint_url,
            )
            self.startup_checks_passed = True
            self._processes = await self._open_process_pool(stack)
            self._resolver = TimeoutResolver(swf.call_client, self.domain, self.resolve_timeouts)
            self._budget = (
                None
                if self.max_heartbeats_per_second is None
                else HeartbeatBudget(
                    self.max_heartbeats_per_second,
                    jitter=JITTER,
                    ceiling=self.heartbeat_ceiling,
                    admission=self.admission_control,
                )
            )
            # One scheduler beats for every running activity (no task per activity).
            self._heartbeats = HeartbeatScheduler(
                budget=self._budget, max_in_flight=min(self.max_concurrency, 64)
            )
            self._thread_limiter = anyio.CapacityLimiter(self.max_concurrency)
            self.log.info(
                "worker started",
                activities=[f"{name}:{version}" for name, version in self.activities],
                endpoint=connection.call_client.meta.endpoint_url,
                region=connection.call_client.meta.region_name,
                identity=self.identity,
                max_concurrency=self.max_concurrency,
                pollers=self.pollers,
                max_heartbeats_per_second=self.max_heartbeats_per_second,
            )
            # The slots run in a task of their own, outside this call's cancel scopes: a
            # cancellation of this call must not reach the tasks before they are answered,
            # and a coroutine that shields itself past the hard deadline must not hold
            # this call beyond it.
            self._serving_scope = anyio.CancelScope()
            self._serving = asyncio.get_running_loop().create_task(self._serve())
            try:
                await self._wait_until(lambda: self._slots_started or self._serving_ended)
                self._started = True
                task_status.started()
                await self._supervise_shutdown()
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    self.log.warning("the worker was cancelled; shutting down now")
                    self.request_shutdown(hurry=True)
                    await self._finish_shutdown()
                raise
            except BaseException:
                self._serving_scope.cancel()  # never leave the slots serving on their own
                raise
            if self._serving.done() and not self._serving.cancelled():
                self._serving.result()  # an error of the worker's own: raise it here
        self.log.info(
            "worker stopped", outcomes=self.outcomes, tasks_left=self.tasks_left_at_deadline
        )
        if self._stopped_by is not None:
            raise self._stopped_by

    async def _serve(self) -> None:
        """The slots and the services they need, until the slots end or are cancelled."""
        try:
            with self._serving_scope:
                watchdog = LoopWatchdog(
                    self._stall_threshold, self._activity_code_names(), self.log
                )
                async with anyio.create_task_group() as services:
                    services.start_soon(watchdog.run)
                    services.start_soon(self._heartbeats.run)
                    if self.metrics is not None:
                        await services.start(self.metrics.serve, self, watchdog)
                    # The slots, and the helpers their tasks start.
                    async with anyio.create_task_group() as tasks:
                        for index in range(self.max_concurrency):
                            tasks.start_soon(self._slot, index, tasks)
                        self._slots_started = True
                        self._changed()
                    services.cancel_scope.cancel()
        finally:
            self._serving_ended = True
            self._changed()

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        """Enter the user's lifespan, if any; what it yields becomes
        :func:`~heartbeat_worker.resources` for every task the worker starts."""
        if self.lifespan is None:
            yield
            return
        async with AsyncExitStack() as stack:
            value = await self._enter_lifespan(stack, self.lifespan)
            token = set_resources(value)
            try:
                yield
            finally:
                reset_resources(token)

    async def _enter_lifespan(self, stack: AsyncExitStack, factory: LifespanFactory) -> Any:
        try:
            return await stack.enter_async_context(factory())
        except Exception as error:
            self.log.error(
                "the lifespan failed to start; the worker stops before polling",
                error=f"{type(error).__name__}: {error}",
            )
            raise LifespanError(
                f"the worker's lifespan failed to start: {type(error).__name__}: {error}"
            ) from error

    @property
    def started(self) -> bool:
        """Whether the worker has started serving (its lifespan entered, its slots running)."""
        return self._started

    def _intercepted(self, connection: SWFConnection) -> SWFConnection:
        chain = self._interceptor
        if chain is None:
            return connection
        return SWFConnection(
            poll_client=intercept_client(connection.poll_client, chain),
            call_client=intercept_client(connection.call_client, chain),
        )

    async def _open_process_pool(self, stack: AsyncExitStack) -> ProcessPool | None:
        """Start the child processes, if an activity runs in one; they end with ``stack``."""
        activities = [a for a in self.activities.values() if a.executor == "process"]
        if not activities:
            return None
        from ._process_pool import ProcessPool

        pool = ProcessPool(
            min(self.max_processes, self.max_concurrency),
            activities,
            start_method=self.process_start_method,
            log=self.log,
        )
        return await stack.enter_async_context(pool)

    def _stall_threshold(self) -> float | None:
        """The shortest heartbeat interval among running coroutine activities (or None).

        Called from the watchdog thread, hence the copy that tolerates concurrent change.
        """
        try:
            executions = list(self.executions)
        except RuntimeError:
            return None
        intervals = [
            execution.heartbeat_interval
            for execution in executions
            if execution.heartbeat_interval is not None and execution.runs_on_loop
        ]
        return min(intervals, default=None)

    def _activity_code_names(self) -> dict[CodeType, str]:
        return {
            activity.function.__code__: f"{name}:{version}"
            for (name, version), activity in self.activities.items()
            if activity.is_coroutine and hasattr(activity.function, "__code__")
        }

    async def _slot(self, index: int, tasks: TaskGroup) -> None:
        """Poll and run, one task at a time, until shutdown; see the module docstring."""
        backoff = Backoff(initial=0.5, maximum=30.0)
        while not self.shutting_down:
            try:
                self._poll_permits.acquire_nowait()
            except anyio.WouldBlock:
                # Most slots wait here while others poll: a plain acquire, without a cancel
                # scope of its own (with thousands of idle slots, those scopes were a fifth
                # of a running activity's memory); shutdown wakes every waiter with a permit.
                await self._poll_permits.acquire()
                if self._shutdown_requested.is_set():  # (shutting_down, read afresh)
                    self._poll_permits.release()
                    break
            try:
                # With a heartbeat budget: no poll while one more task would not fit in it.
                budget = self._budget
                if budget is not None and not await self._idle(
                    self._heartbeats.admit(self._running_tasks)
                ):
                    break
                try:
                    reply = await self._poll_or_back_off(index, backoff)
                finally:
                    self._heartbeats.admitted()
            finally:
                # Held through a back-off too, so that failing polls stay at ``pollers``.
                self._poll_permits.release()
            if reply is None:
                continue
            execution = self._new_execution(reply, tasks)
            self.executions.add(execution)
            await self._handle(execution)
            returned = execution.thread_returned
            if returned is not None and not returned.is_set():
                # The abandoned thread still runs user code: it keeps this slot's capacity
                # until it returns, so that max_concurrency bounds the code actually running.
                abandoned_at = anyio.current_time()
                if await self._idle(returned.wait()):
                    execution.log.info(
                        "abandoned activity thread returned; its slot polls again",
                        after=round(anyio.current_time() - abandoned_at, 3),
                    )

    async def _poll_or_back_off(self, index: int, backoff: Backoff) -> dict[str, Any] | None:
        """One poll; None if it brought no task (after pacing or backing off as needed)."""
        polled_at = anyio.current_time()
        try:
            reply = await self._poll()
        except Exception as error:
            fix = permanent_error_fix(error)
            if fix is not None:
                self._stop_for(error, fix)
                return None
            delay = backoff.next_delay()
            self._poll_failures.failed(error, delay)
            await self._idle(anyio.sleep(delay))
            return None
        backoff.reset()
        self._poll_failures.succeeded()
        if reply is None:
            return None  # abandoned at shutdown
        if not reply.get("taskToken"):
            # SWF answers an empty poll after 60 s; an endpoint that answers at once
            # (moto, a misconfigured proxy) would otherwise be polled in a tight loop.
            too_soon = polled_at + _MIN_EMPTY_POLL - anyio.current_time()
            if too_soon > 0:
                await self._idle(anyio.sleep(too_soon))
            return None
        return reply

    def _stop_for(self, error: BaseException, fix: str) -> None:
        """Shut down after an error no retry fixes; :meth:`run` raises it at its end."""
        if self._stopped_by is None:
            self._stopped_by = WorkerStoppedError(
                f"SWF refused PollForActivityTask: {describe_error(error)}; {fix}"
            )
            self.log.error("stopping: SWF refused the worker", error=describe_error(error), fix=fix)
        self.request_shutdown()

    async def _poll(self) -> dict[str, Any] | None:
        """Poll once; None if the poll was abandoned at shutdown."""
        self._polls_open += 1
        self._changed()
        try:
            with anyio.CancelScope() as scope:
                self._poll_scopes.add(scope)
                reply = await self._connection.poll_client.poll_for_activity_task(
                    domain=self.domain, taskList={"name": self.task_list}, identity=self.identity
                )
                task = dict(reply)
                # Kept for the task's whole life otherwise: about 1.6 KiB of HTTP headers.
                task.pop("ResponseMetadata", None)
                return task
            return None
        finally:
            self._poll_scopes.discard(scope)
            self._polls_open -= 1
            self._changed()

    async def _idle(self, waiting: Awaitable[Any]) -> bool:
        """Await ``waiting`` unless shutdown begins first; returns whether it completed."""
        with anyio.CancelScope() as scope:
            self._idle_scopes.add(scope)
            try:
                if self.shutting_down:
                    scope.cancel()
                await waiting
                return True
            finally:
                self._idle_scopes.discard(scope)
        return False

    def _new_execution(self, task: dict[str, Any], tasks: TaskGroup) -> TaskExecution:
        activity_type = task["activityType"]
        return TaskExecution(
            task,
            self.activities.get((activity_type["name"], activity_type["version"])),
            settings=self._settings,
            client=self._raw_call_client,
            resolver=self._resolver,
            thread_limiter=self._thread_limiter,
            heartbeats=self._heartbeats,
            helpers=tasks,
            interceptor=self._interceptor,
            processes=self._processes,
        )

    async def _execute(self, execution: TaskExecution) -> Outcome:
        if self.shutting_down:
            # SWF handed a task to a poll that was open when shutdown began.
            execution.log.info("task received during shutdown; handing it back")
            return await execution.hand_back(SHUTDOWN_REASON)
        return await execution.run()

    async def _run_intercepted(self, execution: TaskExecution, chain: Interceptor) -> Outcome:
        assert execution.description is not None
        outcomes: list[Outcome] = []

        async def run() -> str:
            outcomes.append(await self._execute(execution))
            return outcomes[0].label

        try:
            await chain.handle_task(
                HandleTaskInput(execution.description, self.shutting_down, _run=run)
            )
        except Exception as error:
            execution.log.error("an interceptor failed around the task", error=repr(error))
        if outcomes:
            return outcomes[0]
        if execution.outcome is not None:
            return execution.outcome
        return await self._execute(execution)  # the chain did not go on: run the task anyway

    async def _handle(self, execution: TaskExecution) -> None:
        try:
            if self._interceptor is None:
                outcome = await self._execute(execution)
            else:
                outcome = await self._run_intercepted(execution, self._interceptor)
            if not execution.counted:
                execution.counted = True
                self._count(outcome.kind.value)
        except BaseException:
            self._give_up(execution, "hard shutdown deadline passed")
            raise
        finally:
            self.executions.discard(execution)
            self._changed()

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def _give_up(self, execution: TaskExecution, why: str) -> None:
        """Count a task the worker stops waiting for at the hard deadline (once per task):
        as answered if it was, else as left to SWF's timeout, with a log line."""
        if execution.counted:
            return
        execution.counted = True
        if execution.leave(why):
            self.tasks_left_at_deadline += 1
            kind = OutcomeKind.LEFT
        else:
            assert execution.outcome is not None
            kind = execution.outcome.kind
        self._count(kind.value)
        self._changed()

    async def _supervise_shutdown(self) -> None:
        """Drive the shutdown sequence of the module docstring once it is requested."""
        await self._wait_until(lambda: self.shutting_down or self._serving_ended)
        if not self.shutting_down:
            return  # the slots ended on an error, which run() raises
        graceful_deadline = anyio.current_time() + self.graceful_shutdown_timeout
        with anyio.move_on_after(self.graceful_shutdown_timeout):
            async with anyio.create_task_group() as waiters:

                async def hurry() -> None:
                    await self._hurry.wait()
                    waiters.cancel_scope.cancel()

                async def drained() -> None:
                    await self._wait_until(lambda: not self.executions and not self._polls_open)
                    waiters.cancel_scope.cancel()

                waiters.start_soon(hurry)
                waiters.start_soon(drained)
        self._graceful_timeout_passed = anyio.current_time() >= graceful_deadline
        await self._finish_shutdown()

    async def _finish_shutdown(self) -> None:
        """Stop what still runs, abandon open polls, and return by the hard deadline."""
        now = anyio.current_time()
        if self._hard_deadline is None:
            self._hard_deadline = now + self.cancel_grace_period + _HARD_DEADLINE_MARGIN
        deadline = self._hard_deadline
        if self.executions:
            self.log.warning(
                "stopping activities still running",
                running=len(self.executions),
                graceful_timeout_passed=self._graceful_timeout_passed,
            )
            for execution in list(self.executions):
                execution.stop(StopReason.SHUTDOWN, "worker shutdown")
            with anyio.move_on_after(deadline - _UNWIND_TIME - anyio.current_time()):
                await self._wait_until(lambda: not self.executions)
        if self._polls_open:
            # SWF offers no way to withdraw a poll. Waiting out its 60 s would outlast most
            # process supervisors' patience, so the poll is abandoned instead.
            self.log.warning(
                "abandoning polls still open; a task SWF hands to one of them now is left "
                "to its timeout",
                open_polls=self._polls_open,
            )
            for scope in list(self._poll_scopes):
                scope.cancel()
        with anyio.move_on_after(deadline - _UNWIND_TIME - anyio.current_time()):
            await self._wait_until(lambda: self._serving_ended)
        if self._serving_ended:
            return
        self.log.error("hard shutdown deadline passed", still_running=len(self.executions))
        self._serving_scope.cancel()
        with anyio.move_on_after(deadline - anyio.current_time()):
            await self._wait_until(lambda: self._serving_ended)
        for execution in list(self.executions):
            # Still running even though cancelled: a coroutine shielding itself from it.
            self._give_up(execution, "hard shutdown deadline passed; the activity still runs")
        if not self._serving_ended:
            self.log.error(
                "abandoning activities that ignore cancellation; the worker returns without them",
                still_running=len(self.executions),
            )

    def _changed(self) -> None:
        """Wake whoever waits for the set of executions or polls in flight to change."""
        if self._change is not None:
            self._change.set()
            self._change = None

    async def _next_change(self) -> None:
        # Created only when somebody waits: most changes happen with nobody waiting.
        if self._change is None:
            self._change = anyio.Event()
        await self._change.wait()

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._next_change()
