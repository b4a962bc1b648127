"""heartbeat-worker: asyncio activity workers for Amazon SWF, with automatic heartbeats.

Decorate a function with :func:`activity`, hand it to a :class:`Worker`, and the framework
polls SWF, heartbeats in the background with the latest details the activity recorded via
:func:`heartbeat`, cancels the activity when SWF asks, and always answers the task.
"""

from __future__ import annotations

from ._checkpoint import with_checkpoint
from ._context import ActivityInfo, cancel_requested, heartbeat, info
from ._definition import Activity, ActivityType, activity
from ._errors import (
    ActivityCancelled,
    ConfigurationError,
    HeartbeatWorkerError,
    LifespanError,
    NotInActivityError,
    StartupError,
    SWFLimitError,
    UserError,
    WorkerStoppedError,
)
from ._heartbeat_status import HeartbeatStatus, LatenessSummary
from ._interceptor import (
    AnswerInput,
    ExecuteActivityInput,
    HandleTaskInput,
    Interceptor,
    SWFCallInput,
    TaskDescription,
)
from ._lifespan import lifespan, resources
from ._logging import configure_logging
from ._version import VERSION
from ._worker import Worker

__version__ = VERSION

__all__ = [
    "Activity",
    "ActivityCancelled",
    "ActivityInfo",
    "ActivityType",
    "AnswerInput",
    "ConfigurationError",
    "ExecuteActivityInput",
    "HandleTaskInput",
    "HeartbeatStatus",
    "HeartbeatWorkerError",
    "Interceptor",
    "LatenessSummary",
    "LifespanError",
    "NotInActivityError",
    "SWFCallInput",
    "SWFLimitError",
    "StartupError",
    "TaskDescription",
    "UserError",
    "Worker",
    "WorkerStoppedError",
    "__version__",
    "activity",
    "cancel_requested",
    "configure_logging",
    "heartbeat",
    "info",
    "lifespan",
    "resources",
    "with_checkpoint",
]
