"""The records the engine keeps: domains, types, executions and their open tasks.

Events are stored as the JSON-ready dictionaries the API returns, since history is read far
more often than it is written and never changes once recorded.
"""

from __future__ import annotations

import asyncio
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from ._model import VALIDATION_EXCEPTION, SWFError

__all__ = [
    "ACCOUNT_ID",
    "DURATION_MAX",
    "REGION",
    "ActivityTask",
    "ActivityTypeRecord",
    "DecisionTask",
    "Domain",
    "Execution",
    "Timer",
    "WorkflowTypeRecord",
    "domain_arn",
    "optional",
    "parse_duration",
    "unknown_task",
]

Json = dict[str, Any]

_DURATION: Final = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
DURATION_MAX: Final = 31_536_000
"""One year in seconds: SWF's limit on every timeout, ``NONE`` included."""


def parse_duration(value: str, path: str) -> float | None:
    """Seconds of an SWF duration string; None for ``NONE`` (no timeout).

    SWF accepts whole seconds (ASCII digits) up to one year; decimals are an extension of the
    dev server so that tests can exercise timeouts in fractions of a second.
    """
    if value == "NONE":
        return None
    if _DURATION.fullmatch(value) is None:
        raise SWFError(
            VALIDATION_EXCEPTION,
            f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
            "constraint: Member must be a number of seconds or NONE",
        )
    seconds = float(value)
    if seconds > DURATION_MAX:
        raise SWFError(
            VALIDATION_EXCEPTION,
            f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
            f"constraint: Member must be at most {DURATION_MAX} seconds (one year)",
        )
    return seconds


ACCOUNT_ID: Final = "000000000000"
"""The account every resource of the dev server belongs to."""
REGION: ContextVar[str] = ContextVar("heartbeat_worker_devserver_region", default="us-east-1")
"""The region of the request being served, from its credential scope (``_http.py``)."""


def domain_arn(name: str) -> str:
    """The domain's ARN in the region the caller addressed, as SWF names it."""
    return f"arn:aws:swf:{REGION.get()}:{ACCOUNT_ID}:/domain/{name}"


def optional(target: Json, name: str, value: Any) -> None:
    """Set ``target[name]`` only when there is a value: SWF leaves absent members out."""
    if value is not None:
        target[name] = value


def unknown_task() -> SWFError:
    """The answer to a token that names no open task."""
    # Never echo the token: it is a credential for the task.
    return SWFError(
        "UnknownResourceFault",
        "Unknown task token: the task does not exist, is already closed, or the token is invalid",
    )


def _attribute_key(event_type: str) -> str:
    return event_type[0].lower() + event_type[1:] + "EventAttributes"


_ATTRIBUTE_KEYS: Final[dict[str, str]] = {}


@dataclass(slots=True, eq=False)
class TypeRecord:
    """A registered activity or workflow type; the two differ only in their key's name."""

    KIND: ClassVar[str]
    name: str
    version: str
    description: str | None
    configuration: Json
    creation_date: float = field(default_factory=time.time)
    deprecation_date: float | None = None

    @property
    def deprecated(self) -> bool:
        return self.deprecation_date is not None

    def info(self) -> Json:
        info: Json = {
            self.KIND: {"name": self.name, "version": self.version},
            "status": "DEPRECATED" if self.deprecated else "REGISTERED",
            "creationDate": self.creation_date,
        }
        if self.description is not None:
            info["description"] = self.description
        if self.deprecation_date is not None:
            info["deprecationDate"] = self.deprecation_date
        return info


@dataclass(slots=True, eq=False)
class ActivityTypeRecord(TypeRecord):
    KIND: ClassVar[str] = "activityType"


@dataclass(slots=True, eq=False)
class WorkflowTypeRecord(TypeRecord):
    KIND: ClassVar[str] = "workflowType"


@dataclass(slots=True, eq=False)
class Domain:
    name: str
    description: str | None
    retention_days: str
    deprecated: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    activity_types: dict[tuple[str, str], ActivityTypeRecord] = field(default_factory=dict)
    workflow_types: dict[tuple[str, str], WorkflowTypeRecord] = field(default_factory=dict)
    # Every run, open or closed, in start order, by (workflowId, runId).
    runs: dict[tuple[str, str], Execution] = field(default_factory=dict)
    open_executions: dict[str, Execution] = field(default_factory=dict)

    def info(self) -> Json:
        info: Json = {
            "name": self.name,
            "status": "DEPRECATED" if self.deprecated else "REGISTERED",
            "arn": domain_arn(self.name),
        }
        if self.description is not None:
            info["description"] = self.description
        return info


@dataclass(slots=True, eq=False)
class ActivityTask:
    execution: Execution
    activity_id: str
    activity_type: Json
    task_list: str
    input: str | None
    scheduled_event_id: int
    schedule_to_start: float | None
    schedule_to_close: float | None
    start_to_close: float | None
    heartbeat: float | None
    started_event_id: int = 0
    token: str | None = None
    details: str | None = None
    cancel_requested_event_id: int | None = None
    closed: bool = False
    heartbeat_deadline: float = 0.0
    # For DevServer.snapshot(): heartbeats received and when the last came (epoch seconds).
    heartbeats: int = 0
    last_heartbeat_at: float | None = None
    # Pending timeout timers, by ActivityTaskTimeoutType.
    handles: dict[str, asyncio.TimerHandle] = field(default_factory=dict)

    def cancel_timers(self) -> None:
        for handle in self.handles.values():
            handle.cancel()
        self.handles.clear()


@dataclass(slots=True, eq=False)
class DecisionTask:
    execution: Execution
    scheduled_event_id: int
    started_event_id: int = 0
    token: str | None = None
    page_key: str | None = None
    handle: asyncio.TimerHandle | None = None


@dataclass(slots=True, eq=False)
class Timer:
    timer_id: str
    started_event_id: int
    handle: asyncio.TimerHandle


@dataclass(slots=True, eq=False)
class Execution:
    domain: Domain
    workflow_id: str
    run_id: str
    workflow_type: Json
    task_list: str
    task_priority: str | None
    execution_start_to_close: str
    task_start_to_close: str
    child_policy: str
    tag_list: list[str]
    start_timestamp: float
    close_timestamp: float | None = None
    close_status: str | None = None
    cancel_requested: bool = False
    events: list[Json] = field(default_factory=list)
    activities: dict[str, ActivityTask] = field(default_factory=dict)
    timers: dict[str, Timer] = field(default_factory=dict)
    scheduled_decision: DecisionTask | None = None
    started_decision: DecisionTask | None = None
    # Something a decider must see happened while a decision task was started.
    decision_needed: bool = False
    previous_started_event_id: int = 0
    latest_activity_task_timestamp: float | None = None
    latest_execution_context: str | None = None
    handle: asyncio.TimerHandle | None = None
    # The set of executions with changes to write to the state file; None without one.
    journal: set[Execution] | None = None

    @property
    def is_open(self) -> bool:
        return self.close_status is None

    def reference(self) -> Json:
        return {"workflowId": self.workflow_id, "runId": self.run_id}

    def record(self, event_type: str, attributes: Json) -> int:
        """Append an event shaped like the model's ``HistoryEvent``; return its id."""
        key = _ATTRIBUTE_KEYS.get(event_type)
        if key is None:
            key = _ATTRIBUTE_KEYS[event_type] = _attribute_key(event_type)
        event_id = len(self.events) + 1
        if self.journal is not None:
            self.journal.add(self)
        self.events.append(
            {
                "eventTimestamp": time.time(),
                "eventType": event_type,
                "eventId": event_id,
                key: attributes,
            }
        )
        return event_id

    def info(self) -> Json:
        info: Json = {
            "execution": self.reference(),
            "workflowType": self.workflow_type,
            "startTimestamp": self.start_timestamp,
            "executionStatus": "OPEN" if self.is_open else "CLOSED",
            "cancelRequested": self.cancel_requested,
        }
        if self.tag_list:
            info["tagList"] = self.tag_list
        if self.close_status is not None:
            info["closeStatus"] = self.close_status
            info["closeTimestamp"] = self.close_timestamp
        return info
