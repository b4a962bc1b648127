"""heartbeat-worker: asyncio activity workers for Amazon SWF, with automatic heartbeats."""

from __future__ import annotations

from ._errors import (
    ActivityCancelled,
    ConfigurationError,
    HeartbeatWorkerError,
    NotInActivityError,
    SWFLimitError,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "ActivityCancelled",
    "ConfigurationError",
    "HeartbeatWorkerError",
    "NotInActivityError",
    "SWFLimitError",
    "__version__",
]
