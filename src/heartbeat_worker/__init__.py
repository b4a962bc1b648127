"""heartbeat-worker: asyncio activity workers for Amazon SWF, with automatic heartbeats.

Decorate a function with :func:`activity`, hand it to a :class:`Worker`, and the framework
polls SWF, heartbeats in the background with the latest details the activity recorded via
:func:`heartbeat`, cancels the activity when SWF asks, and always answers the task.
"""

from __future__ import annotations

from ._async_completion import cancel_task, complete_task, fail_task, heartbeat_task
from ._checkpoint import with_checkpoint
from ._context import (
    ActivityHandle,
    ActivityInfo,
    StopReason,
    cancel_requested,
    current_activity,
    heartbeat,
    info,
    wait_for_stop,
)
from ._converter import Converter, JSONConverter
from ._definition import Activity, ActivityType, activity
from ._errors import (
    NON_RETRYABLE_PREFIX,
    ActivityCancelled,
    ActivityFailed,
    CompleteLater,
    ConfigurationError,
    ConversionError,
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
from ._stall import RunningActivity
from ._version import VERSION
from ._worker import Worker

__version__ = VERSION

__all__ = [
    "NON_RETRYABLE_PREFIX",
    "Activity",
    "ActivityCancelled",
    "ActivityFailed",
    "ActivityHandle",
    "ActivityInfo",
    "ActivityType",
    "AnswerInput",
    "CompleteLater",
    "ConfigurationError",
    "ConversionError",
    "Converter",
    "ExecuteActivityInput",
    "HandleTaskInput",
    "HeartbeatStatus",
    "HeartbeatWorkerError",
    "Interceptor",
    "JSONConverter",
    "LatenessSummary",
    "LifespanError",
    "NotInActivityError",
    "RunningActivity",
    "SWFCallInput",
    "SWFLimitError",
    "StartupError",
    "StopReason",
    "TaskDescription",
    "UserError",
    "Worker",
    "WorkerStoppedError",
    "__version__",
    "activity",
    "cancel_requested",
    "cancel_task",
    "complete_task",
    "configure_logging",
    "current_activity",
    "fail_task",
    "heartbeat",
    "heartbeat_task",
    "info",
    "lifespan",
    "resources",
    "wait_for_stop",
    "with_checkpoint",
]
