"""SWF's field limits, in one place, with the checks and cuts that honour them.

The numbers come from botocore's SWF service model (``botocore/data/swf``): botocore only
enforces minimum lengths client side, so exceeding a maximum is discovered by SWF, far from
the code that produced the value. Every call site checks against these instead.
"""

from __future__ import annotations

import json
from typing import Final

from ._errors import SWFLimitError

HEARTBEAT_DETAILS_MAX: Final = 2048
"""``RecordActivityTaskHeartbeat.details`` (shape ``LimitedData``)."""

DATA_MAX: Final = 32768
"""``result``, failure and cancel ``details``, ``input`` (shape ``Data``)."""

FAILURE_REASON_MAX: Final = 256
"""``RespondActivityTaskFailed.reason`` (shape ``FailureReason``)."""

IDENTITY_MAX: Final = 256
"""``identity`` of pollers (shape ``Identity``)."""

TASK_TOKEN_MAX: Final = 1024

_ELLIPSIS: Final = "..."


def check_length(field: str, value: str, limit: int) -> str:
    """Return ``value`` unchanged, or raise :class:`SWFLimitError` naming ``field``."""
    if len(value) > limit:
        raise SWFLimitError(field, limit, len(value))
    return value


def cut_end(value: str, limit: int) -> str:
    """Keep the beginning of ``value`` within ``limit``: for reasons, where the type comes first."""
    if len(value) <= limit:
        return value
    return value[: limit - len(_ELLIPSIS)] + _ELLIPSIS


def cut_start(value: str, limit: int) -> str:
    """Keep the end of ``value`` within ``limit``: for tracebacks, where the error is last."""
    if len(value) <= limit:
        return value
    return _ELLIPSIS + value[len(value) - (limit - len(_ELLIPSIS)) :]


def fit_json(encoded: str, limit: int = DATA_MAX) -> str:
    """Keep JSON valid within ``limit``: ``encoded`` itself, or a marker object in its place.

    Cutting JSON anywhere makes it unreadable for the decider that receives it, so an
    oversized value becomes ``{"truncated": true, "length": ..., "dropped": ...,
    "start": "..."}``: how long it was, how many characters were dropped, and its
    beginning as a string.
    """
    if len(encoded) <= limit:
        return encoded
    keep = limit // 2
    while True:
        marker = json.dumps(
            {
                "truncated": True,
                "length": len(encoded),
                "dropped": len(encoded) - keep,
                "start": encoded[:keep],
            },
            separators=(",", ":"),
        )
        if len(marker) <= limit:
            return marker
        # Escaping made the start longer than itself: keep proportionally less.
        keep = max(0, keep * limit // len(marker) - 100)
