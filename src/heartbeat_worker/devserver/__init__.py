"""A local SWF-compatible endpoint, for development, demos and tests.

It speaks SWF's wire protocol (AWS JSON 1.0), so boto3 and aiobotocore clients use it by
pointing ``endpoint_url`` at it, and it emulates the whole life of activity tasks (long
polls, heartbeats, cancellation, the four activity timeouts) as SWF documents it. See
``docs/devserver.md``.
"""

from __future__ import annotations

from .._errors import StateFileError
from ._faults import Fault, FaultKind, Faults
from ._observers import Call
from ._server import DevServer, ThreadedDevServer
from ._snapshot import ActivityTaskView, DomainView, ExecutionView, PollView, Snapshot

__all__ = [
    "ActivityTaskView",
    "Call",
    "DevServer",
    "DomainView",
    "ExecutionView",
    "Fault",
    "FaultKind",
    "Faults",
    "PollView",
    "Snapshot",
    "StateFileError",
    "ThreadedDevServer",
]
