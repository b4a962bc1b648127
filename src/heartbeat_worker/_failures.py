"""Failures an activity chooses: :class:`~heartbeat_worker.ActivityFailed`, the
non-retryable mark, and JSON details that stay valid JSON when cut to SWF's limit.

A failure caused by an unexpected exception says what went wrong for a human (type, message,
traceback). A failure the activity raises on purpose is for the decider: its reason is sent
as written and its details as data, and a decider needs to tell "try again" from "never
again". SWF has no field for the latter, so the mark lives at the start of the reason
(:data:`~heartbeat_worker.NON_RETRYABLE_PREFIX`), where every decider can read it.
"""

from __future__ import annotations

import json

from ._converter import Converter
from ._errors import NON_RETRYABLE_PREFIX, ActivityFailed
from ._limits import DATA_MAX, FAILURE_REASON_MAX, cut_end

__all__ = ["chosen_failure", "is_non_retryable", "mark_non_retryable", "within_limit"]


def mark_non_retryable(reason: str) -> str:
    """``reason`` with the non-retryable mark in front, still within SWF's 256 characters."""
    if reason.startswith(NON_RETRYABLE_PREFIX):
        return cut_end(reason, FAILURE_REASON_MAX)
    return cut_end(NON_RETRYABLE_PREFIX + reason, FAILURE_REASON_MAX)


def is_non_retryable(reason: str | None) -> bool:
    """Whether a failure reason carries the non-retryable mark."""
    return reason is not None and reason.startswith(NON_RETRYABLE_PREFIX)


def within_limit(encoded: str, limit: int = DATA_MAX) -> str:
    """JSON text that fits ``limit``: itself if it does, else a JSON string holding its
    beginning, so that a decider parsing the details never meets broken JSON."""
    if len(encoded) <= limit:
        return encoded
    keep = limit - 2
    while True:
        candidate = json.dumps(encoded[:keep])
        if len(candidate) <= limit:
            return candidate
        keep = max(0, keep * limit // len(candidate) - 16)


def chosen_failure(failed: ActivityFailed, converter: Converter) -> tuple[str, str | None]:
    """The reason and details of an :class:`ActivityFailed`, as they are sent."""
    if failed.non_retryable:
        reason = mark_non_retryable(failed.reason)
    else:
        reason = cut_end(failed.reason, FAILURE_REASON_MAX)
    details = failed.details
    if details is None:
        return reason, None
    if isinstance(details, str):
        return reason, cut_end(details, DATA_MAX)
    try:
        encoded = converter.encode(details)
    except (TypeError, ValueError):
        encoded = json.dumps(repr(details))
    return reason, within_limit(encoded)
