"""Logging: structlog, with task tokens reduced to a short digest.

A task token authorises answering a task, so it is a secret: log lines carry
:func:`token_hash` instead, which is enough to correlate lines about one task and cannot be
turned back into the token. The library never configures logging on import;
:func:`configure_logging` is for programs (the CLI calls it) that want our defaults.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from typing import Final, Literal

import structlog
from structlog.typing import FilteringBoundLogger

__all__ = ["LogFormat", "configure_logging", "get_logger", "order_for_people", "token_hash"]

LogFormat = Literal["auto", "console", "json"]

_LOGGER_NAME = "heartbeat_worker"


def token_hash(task_token: str) -> str:
    """A 12-character digest of a task token, safe to log."""
    return hashlib.sha256(task_token.encode()).hexdigest()[:12]


def get_logger(**initial_values: object) -> FilteringBoundLogger:
    logger: FilteringBoundLogger = structlog.get_logger(_LOGGER_NAME, **initial_values)
    return logger


FIRST_FIELDS: Final = (
    "activity_type",
    "activity_version",
    "outcome",
    "duration",
    "beats",
    "reason",
    "error",
    "attempt",
)
"""Console fields a person scans first, in this order, right after the event."""

ID_FIELDS: Final = ("activity_id", "workflow_id", "run_id", "token", "domain", "task_list")
"""Console fields that identify rather than inform: last, to correlate or grep."""


def order_for_people(
    logger: object, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Put :data:`FIRST_FIELDS` first and :data:`ID_FIELDS` last (console format only).

    The console renderer sorts fields alphabetically by default, which puts ``activity_id``
    and ``domain`` before the outcome and duration a person reads the line for.
    """
    ordered = {key: event_dict.pop(key) for key in FIRST_FIELDS if key in event_dict}
    ids = {key: event_dict.pop(key) for key in ID_FIELDS if key in event_dict}
    ordered.update(sorted(event_dict.items()))
    ordered.update(ids)
    return ordered


def configure_logging(
    log_format: LogFormat = "auto", level: int = logging.INFO, stream: object = None
) -> None:
    """Send structlog output to stderr (or ``stream``): aligned and coloured for people,
    JSON for machines; ``auto`` picks by whether the stream is a terminal.

    A worker's logs leave the terminal in production (systemd, containers, log shippers),
    where one JSON object per line is what the collector parses, and it costs half as
    much to render as the aligned console format, a cost paid on every task.
    """
    output = stream if stream is not None else sys.stderr
    isatty = getattr(output, "isatty", None)
    terminal = bool(isatty and isatty())
    if log_format == "auto":
        log_format = "console" if terminal else "json"
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    if log_format == "json":
        processors.append(structlog.processors.JSONRenderer())
    else:
        processors.append(order_for_people)
        processors.append(structlog.dev.ConsoleRenderer(colors=terminal, sort_keys=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=output),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
