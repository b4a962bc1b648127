"""Async completion: answer an activity task from another process, later.

Some work finishes outside the activity: a human approves, a batch system calls back, a
job runs elsewhere for hours. SWF supports that: whoever holds the task token may heartbeat
and answer the task. The activity stores its token
(``current_activity().task_token_for_later()``) and raises
:class:`~heartbeat_worker.CompleteLater`; the worker then sends nothing and frees its slot.
These functions are the other half, usable from any process with SWF credentials.

They take an aiobotocore SWF client, or open one for the call (with the worker's
configuration chain: ``endpoint_url``, region, session). Transient errors are retried until
``deadline`` seconds have passed; ``UnknownResourceFault`` (the task is closed: answered,
timed out, or its workflow ended) is raised as the botocore ``ClientError`` it is. The
token is never logged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
from aiobotocore.session import AioSession

from ._converter import DEFAULT_CONVERTER, Converter
from ._errors import ActivityFailed
from ._failures import chosen_failure, within_limit
from ._limits import DATA_MAX, HEARTBEAT_DETAILS_MAX, check_length
from ._swf import open_connection, retry_transient

__all__ = ["cancel_task", "complete_task", "fail_task", "heartbeat_task"]

_DEADLINE = 30.0
"""Seconds the helpers keep retrying transient errors: long enough for a throttling burst
or a network blip, short enough that a caller learns of an outage."""

T = TypeVar("T")


@asynccontextmanager
async def _client(
    client: Any, endpoint_url: str | None, region: str | None, session: AioSession | None
) -> AsyncIterator[Any]:
    if client is not None:
        yield client
        return
    async with open_connection(
        endpoint_url=endpoint_url,
        region=region,
        session=session,
        poll_connections=1,
        call_connections=1,
    ) as connection:
        yield connection.call_client


async def _call(
    operation: str,
    make: Callable[[Any], Awaitable[T]],
    *,
    client: Any,
    endpoint_url: str | None,
    region: str | None,
    session: AioSession | None,
    deadline: float,
) -> T:
    async with _client(client, endpoint_url, region, session) as swf:
        return await retry_transient(
            lambda: make(swf), deadline=anyio.current_time() + deadline, what=operation
        )


async def complete_task(
    task_token: str,
    result: Any = None,
    *,
    converter: Converter = DEFAULT_CONVERTER,
    client: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: AioSession | None = None,
    deadline: float = _DEADLINE,
) -> None:
    """Answer ``RespondActivityTaskCompleted`` for a task left with ``CompleteLater``.

    ``result`` is encoded as the worker encodes an activity's return value.
    """
    arguments: dict[str, Any] = {"taskToken": task_token}
    if result is not None:
        arguments["result"] = check_length("result", converter.encode(result), DATA_MAX)
    await _call(
        "RespondActivityTaskCompleted",
        lambda swf: swf.respond_activity_task_completed(**arguments),
        client=client,
        endpoint_url=endpoint_url,
        region=region,
        session=session,
        deadline=deadline,
    )


async def fail_task(
    task_token: str,
    reason: str,
    details: Any = None,
    *,
    non_retryable: bool = False,
    converter: Converter = DEFAULT_CONVERTER,
    client: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: AioSession | None = None,
    deadline: float = _DEADLINE,
) -> None:
    """Answer ``RespondActivityTaskFailed``, as if the activity raised
    ``ActivityFailed(reason, details, non_retryable=...)``."""
    cut_reason, encoded = chosen_failure(
        ActivityFailed(reason, details, non_retryable=non_retryable), converter
    )
    arguments: dict[str, Any] = {"taskToken": task_token, "reason": cut_reason}
    if encoded is not None:
        arguments["details"] = encoded
    await _call(
        "RespondActivityTaskFailed",
        lambda swf: swf.respond_activity_task_failed(**arguments),
        client=client,
        endpoint_url=endpoint_url,
        region=region,
        session=session,
        deadline=deadline,
    )


async def cancel_task(
    task_token: str,
    details: Any = None,
    *,
    converter: Converter = DEFAULT_CONVERTER,
    client: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: AioSession | None = None,
    deadline: float = _DEADLINE,
) -> None:
    """Answer ``RespondActivityTaskCanceled`` (after :func:`heartbeat_task` returned True)."""
    arguments: dict[str, Any] = {"taskToken": task_token}
    if details is not None:
        arguments["details"] = within_limit(converter.encode(details))
    await _call(
        "RespondActivityTaskCanceled",
        lambda swf: swf.respond_activity_task_canceled(**arguments),
        client=client,
        endpoint_url=endpoint_url,
        region=region,
        session=session,
        deadline=deadline,
    )


async def heartbeat_task(
    task_token: str,
    details: Any = None,
    *,
    converter: Converter = DEFAULT_CONVERTER,
    client: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: AioSession | None = None,
    deadline: float = _DEADLINE,
) -> bool:
    """Send one ``RecordActivityTaskHeartbeat``; returns whether cancellation was requested.

    A task left with ``CompleteLater`` is no longer heartbeated by the worker: whoever
    finishes it must beat within its heartbeat timeout (or it must have none).
    """
    arguments: dict[str, Any] = {"taskToken": task_token}
    if details is not None:
        encoded = converter.encode(details)
        arguments["details"] = check_length("heartbeat details", encoded, HEARTBEAT_DETAILS_MAX)
    reply = await _call(
        "RecordActivityTaskHeartbeat",
        lambda swf: swf.record_activity_task_heartbeat(**arguments),
        client=client,
        endpoint_url=endpoint_url,
        region=region,
        session=session,
        deadline=deadline,
    )
    return bool(reply.get("cancelRequested"))
