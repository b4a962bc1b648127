"""The SWF state machine: what every part of it shares, and the table of operations.

The emulated service is split along SWF's own seams: workflow executions (``_executions.py``),
decision tasks (``_decisions.py``), activity tasks (``_activities.py``) and workflow timers
(``_timers.py``). Each part is an object holding a reference to this engine, which owns the
state they share (the registry, the task lists, the task tokens) and maps every operation to
its handler.

Everything runs on one event loop and no handler awaits between checking a request and
changing the state, so a request either fails before it changes anything or applies entirely.
Timeouts are ``loop.call_later`` timers, so they fire whether or not anyone calls the server.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final

from ._activities import ActivityTasks
from ._decisions import DecisionTasks
from ._executions import Executions
from ._queue import POLL_CONNECTION_OPEN, TaskQueue
from ._registry import Registry
from ._restore import restore
from ._state import ActivityTask, DecisionTask, Execution
from ._store import Store
from ._timers import Timers

__all__ = ["Engine"]

Json = dict[str, Any]
SyncHandler = Callable[[Json], Json]
AsyncHandler = Callable[[Json], Awaitable[Json]]

_REGISTRY_CHANGES: Final = frozenset(
    {
        "RegisterDomain",
        "DeprecateDomain",
        "UndeprecateDomain",
        "RegisterActivityType",
        "DeprecateActivityType",
        "UndeprecateActivityType",
        "DeleteActivityType",
        "RegisterWorkflowType",
        "DeprecateWorkflowType",
        "UndeprecateWorkflowType",
        "DeleteWorkflowType",
        "TagResource",
        "UntagResource",
    }
)


class Engine:
    """The whole emulated service; one instance per server."""

    def __init__(
        self,
        poll_timeout: float,
        *,
        keep_abandoned_polls: bool = False,
        store: Store | None = None,
    ) -> None:
        """``store``: the state file to restore from and write to; None keeps everything in
        memory, and then nothing of the store costs anything."""
        self.poll_timeout = poll_timeout
        self.keep_abandoned_polls = keep_abandoned_polls
        self.store = store
        self.journal: set[Execution] | None = store.executions if store is not None else None
        self.loop = asyncio.get_running_loop()
        self.registry = Registry()
        self.activity_queues: dict[tuple[str, str], TaskQueue[ActivityTask, Json]] = {}
        self.decision_queues: dict[tuple[str, str], TaskQueue[DecisionTask, Json]] = {}
        self.activity_tokens: dict[str, ActivityTask] = {}
        self.decision_tokens: dict[str, DecisionTask] = {}
        self.decision_pages: dict[str, DecisionTask] = {}
        self.executions = Executions(self)
        self.activities = ActivityTasks(self)
        self.timers = Timers(self)
        self.decisions = DecisionTasks(self)  # last: it applies decisions through the others
        executions, decisions, activities = self.executions, self.decisions, self.activities
        self.sync_handlers: dict[str, SyncHandler] = {
            **self.registry.handlers(),
            "StartWorkflowExecution": executions.start,
            "SignalWorkflowExecution": executions.signal,
            "RequestCancelWorkflowExecution": executions.request_cancel,
            "TerminateWorkflowExecution": executions.terminate,
            "DescribeWorkflowExecution": executions.describe,
            "GetWorkflowExecutionHistory": executions.history,
            "ListOpenWorkflowExecutions": executions.list_open,
            "ListClosedWorkflowExecutions": executions.list_closed,
            "CountOpenWorkflowExecutions": executions.count_open,
            "CountClosedWorkflowExecutions": executions.count_closed,
            "CountPendingActivityTasks": self.count_pending_activity_tasks,
            "CountPendingDecisionTasks": self.count_pending_decision_tasks,
            "RespondDecisionTaskCompleted": decisions.respond_completed,
            "RecordActivityTaskHeartbeat": activities.heartbeat,
            "RespondActivityTaskCompleted": activities.respond_completed,
            "RespondActivityTaskFailed": activities.respond_failed,
            "RespondActivityTaskCanceled": activities.respond_canceled,
        }
        self.async_handlers: dict[str, AsyncHandler] = {
            "PollForActivityTask": activities.poll,
            "PollForDecisionTask": decisions.poll,
        }
        if store is not None:
            store.loop, store.registry = self.loop, self.registry
            for name in _REGISTRY_CHANGES:
                self.sync_handlers[name] = functools.partial(
                    self._registry_change, self.sync_handlers[name]
                )
            try:
                restore(self, store)
            except BaseException:
                self._stop_timers()
                raise

    # The state file

    def _registry_change(self, handler: SyncHandler, body: Json) -> Json:
        result = handler(body)
        assert self.store is not None
        self.store.registry_changed = True
        return result

    def task_changed(self, task: ActivityTask) -> None:
        """``task`` changed: to be written with the next commit."""
        if self.store is not None:
            self.store.tasks.add(task)

    def commit(self) -> None:
        """Write what changed to the state file, if there is one: before an answer leaves."""
        if self.store is not None:
            self.store.commit()

    def _fire(self, callback: Callable[..., None], *args: Any) -> None:
        callback(*args)
        if self.store is not None:
            self.store.commit()

    def later(self, delay: float, callback: Callable[..., None], *args: Any) -> asyncio.TimerHandle:
        """``loop.call_later``, and what the callback changed is written to the state file."""
        return self.loop.call_later(delay, self._fire, callback, *args)

    def at(self, when: float, callback: Callable[..., None], *args: Any) -> asyncio.TimerHandle:
        """``loop.call_at``, and what the callback changed is written to the state file."""
        return self.loop.call_at(when, self._fire, callback, *args)

    def poll_alive(self) -> Callable[[], bool] | None:
        """The open-connection check of the poll being served, unless polls whose client has
        gone are to be kept (SWF's behaviour) or the poll came from elsewhere than HTTP."""
        return None if self.keep_abandoned_polls else POLL_CONNECTION_OPEN.get()

    def new_token(self, nbytes: int = 32) -> str:
        """A fresh task token (or page key): unguessable, since a token is a credential."""
        return secrets.token_urlsafe(nbytes)

    def close(self) -> None:
        """Answer the waiting polls and stop every timer, so that nothing fires after the
        server is gone; then write the last changes and close the state file."""
        for activity_queue in self.activity_queues.values():
            activity_queue.release()
        for decision_queue in self.decision_queues.values():
            decision_queue.release()
        store = self.store
        if store is not None:
            # Written while the timers still say when they are due.
            store.tasks |= store.heartbeats
            store.commit()
        self._stop_timers()
        if store is not None:
            store.close()

    def _stop_timers(self) -> None:
        for domain in self.registry.domains.values():
            for execution in domain.open_executions.values():
                if execution.handle is not None:
                    execution.handle.cancel()
                for task in execution.activities.values():
                    task.cancel_timers()
                for timer in execution.timers.values():
                    timer.handle.cancel()
                for decision in (execution.started_decision, execution.scheduled_decision):
                    if decision is not None and decision.handle is not None:
                        decision.handle.cancel()

    # Task lists

    def activity_queue(self, domain: str, task_list: str) -> TaskQueue[ActivityTask, Json]:
        key = (domain, task_list)
        queue = self.activity_queues.get(key)
        if queue is None:
            queue = self.activity_queues[key] = TaskQueue()
        return queue

    def decision_queue(self, domain: str, task_list: str) -> TaskQueue[DecisionTask, Json]:
        key = (domain, task_list)
        queue = self.decision_queues.get(key)
        if queue is None:
            queue = self.decision_queues[key] = TaskQueue()
        return queue

    def count_pending_activity_tasks(self, body: Json) -> Json:
        domain = self.registry.domain(body["domain"]).name
        queue = self.activity_queues.get((domain, body["taskList"]["name"]))
        return {"count": len(queue) if queue is not None else 0, "truncated": False}

    def count_pending_decision_tasks(self, body: Json) -> Json:
        domain = self.registry.domain(body["domain"]).name
        queue = self.decision_queues.get((domain, body["taskList"]["name"]))
        return {"count": len(queue) if queue is not None else 0, "truncated": False}
