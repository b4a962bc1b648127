"""The exception hierarchy: everything the framework raises derives from one base class.

Catching :class:`HeartbeatWorkerError` is enough to handle any error of ours, while the
subclasses also derive from the matching built-in (``ValueError``...) so that code written
without knowledge of this library still catches them the way it expects::

    HeartbeatWorkerError
    +-- UserError                 a person must fix something; carries the exit status
    |   +-- ConfigurationError    (also ValueError) arguments, target, definitions: 2
    |   +-- StartupError          start-up checks: domain or type missing, no region,
    |   |                         no credentials, endpoint unreachable: 2
    |   +-- WorkerStoppedError    SWF refused the worker after start-up for good
    |                             (access denied, domain deprecated, credentials expired): 3
    +-- SWFLimitError             (also ValueError) a value over one of SWF's field limits
    +-- ConversionError           (also ValueError) a payload that does not fit its type hint
    +-- NotInActivityError        (also RuntimeError) an activity-only function called outside
    +-- LifespanError             (also RuntimeError) the worker's lifespan raised on entry
    +-- StateFileError            (also RuntimeError) the dev server's state file is unusable
    +-- ActivityCancelled         raised by or into an activity asked to stop
    +-- ActivityFailed            raised by an activity: fail with this reason
    +-- CompleteLater             raised by an activity: another process answers
    +-- ActivityProcessError      a process activity failed in its child process
    +-- ProcessPoolError          (also RuntimeError) the child processes could not start

ActivityCancelled, ActivityFailed and CompleteLater are raised by activities to choose
their answer; the worker never lets them escape. The command line catches
:class:`UserError` once, in its ``main``, and prints it as one line; see
:func:`heartbeat_worker._preflight.user_error_for` for how errors of botocore (no region,
no credentials, connection refused) are mapped onto it.
"""

from __future__ import annotations

from typing import Any, Final

NON_RETRYABLE_PREFIX: Final = "non-retryable: "
"""The start of a failure reason that no retry can fix (bad input, a permanent refusal).

SWF has no field for it, so the convention lives in the reason, where every decider can see
it: the built-in decider of ``heartbeat-worker execute --retries`` does not retry such a
failure, and a decider of your own should check ``reason.startswith(NON_RETRYABLE_PREFIX)``.
"""

__all__ = [
    "NON_RETRYABLE_PREFIX",
    "ActivityCancelled",
    "ActivityFailed",
    "ActivityProcessError",
    "CompleteLater",
    "ConfigurationError",
    "ConversionError",
    "HeartbeatWorkerError",
    "LifespanError",
    "NotInActivityError",
    "ProcessPoolError",
    "SWFLimitError",
    "StartupError",
    "StateFileError",
    "UserError",
    "WorkerStoppedError",
]


class HeartbeatWorkerError(Exception):
    """Base class of every exception raised by heartbeat-worker."""


class UserError(HeartbeatWorkerError):
    """Something a person must fix, said in one line with the fix, and an exit status.

    The message is the whole report: the command line prints it without a traceback (a
    traceback would point into this library, not at the mistake).
    """

    exit_status: int = 2

    def __init__(self, message: str, *, exit_status: int | None = None) -> None:
        super().__init__(message)
        if exit_status is not None:
            self.exit_status = exit_status


class ConfigurationError(UserError, ValueError):
    """A worker, an activity definition or a command line was set up inconsistently."""


class LifespanError(HeartbeatWorkerError, RuntimeError):
    """The worker's lifespan raised while entering: the worker stopped before its first poll.

    The lifespan's own exception is the ``__cause__``.
    """


class StartupError(UserError):
    """The worker cannot start: what SWF lacks (or the connection to it) and how to fix it."""


class WorkerStoppedError(UserError):
    """SWF refused the running worker in a way retrying cannot fix; it shut down."""

    exit_status = 3


class SWFLimitError(HeartbeatWorkerError, ValueError):
    """A value would exceed one of SWF's field limits.

    SWF itself would reject the call (botocore only checks minimum lengths on the client),
    so the framework refuses the value where it is produced, naming the limit, instead of
    letting a heartbeat or an answer fail later, far from the code that caused it.
    """

    def __init__(self, field: str, limit: int, actual: int) -> None:
        self.field = field
        self.limit = limit
        self.actual = actual
        super().__init__(
            f"{field} is {actual} characters long; SWF allows at most {limit} characters"
        )


class StateFileError(HeartbeatWorkerError, RuntimeError):
    """The dev server's state file cannot be used: damaged, written by another format, or
    in use by another server. The message names the file and what to do."""


class ConversionError(HeartbeatWorkerError, ValueError):
    """A payload does not fit the type it is declared as; the message names the field.

    ``path`` locates the value (``order.items[2].price``; empty for the whole payload) and
    ``problem`` says what is wrong with it.
    """

    def __init__(self, path: str, problem: str, *, located: bool = False) -> None:
        self.path = path
        self.problem = problem
        self.located = located
        """Whether ``problem`` names the fields below ``path`` itself (a pydantic error lists
        several)."""
        if not path:
            message = problem
        elif located:
            message = f"{path}{problem}" if problem.startswith("[") else f"{path}.{problem}"
        else:
            message = f"{path}: {problem}"
        super().__init__(message)


class NotInActivityError(HeartbeatWorkerError, RuntimeError):
    """An activity-only function (``heartbeat()``, ``info()``...) was called outside one."""


class ActivityCancelled(HeartbeatWorkerError):
    """The activity has been asked to stop.

    A blocking (thread) activity sees it raised by :func:`heartbeat_worker.heartbeat` once a
    stop was requested, and may raise it itself, optionally with ``details`` that the worker
    sends in ``RespondActivityTaskCanceled`` (for example what the cleanup undid). Coroutine
    activities are stopped by anyio cancellation instead, but may raise it as well.
    """

    def __init__(self, message: str = "activity cancelled", *, details: Any = None) -> None:
        super().__init__(message)
        self.details = details


class ActivityProcessError(HeartbeatWorkerError):
    """A process activity failed in its child process, or the child died running it.

    The exception itself stayed in the child; what crossed is its description, sent as the
    task's failure: ``reason`` (``"ValueError: message"``, or how the child died, such as
    ``"activity process 4242 was killed by SIGSEGV"``) and ``details`` (the traceback text,
    None for a dead child). Interceptors of the activity call see this exception.
    """

    def __init__(self, reason: str, details: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class ProcessPoolError(HeartbeatWorkerError, RuntimeError):
    """The worker could not start the child processes of its process activities."""


class ActivityFailed(HeartbeatWorkerError):
    """Raised by an activity to fail its task with exactly this reason and details.

    Any other exception fails the task too, with its type and message as the reason and the
    traceback as details; this one is for failures the decider should read: the reason is
    sent as given (cut to SWF's 256 characters) and ``details`` as given when a string, else
    JSON-encoded by the worker's converter (cut to 32,768 characters). With
    ``non_retryable=True`` the reason starts with :data:`NON_RETRYABLE_PREFIX`.
    """

    def __init__(self, reason: str, details: Any = None, *, non_retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details
        self.non_retryable = non_retryable


class CompleteLater(HeartbeatWorkerError):
    """Raised by an activity whose task another process will answer.

    Store the task token first (``current_activity().task_token_for_later()``), hand it to
    whatever finishes the work, and raise this: the worker stops heartbeating, sends no
    answer, and frees the slot. The task then lives by its heartbeat and start-to-close
    timeouts, so the process that finishes it should send
    :func:`~heartbeat_worker.heartbeat_task` while it works and
    :func:`~heartbeat_worker.complete_task` or :func:`~heartbeat_worker.fail_task` at the end.
    """

    def __init__(self, message: str = "the task will be answered later") -> None:
        super().__init__(message)
