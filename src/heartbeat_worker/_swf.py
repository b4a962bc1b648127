"""The connection to SWF: two clients, and the rules for retrying what failed.

Why two clients: a long poll holds its HTTP connection for up to 60 s, and botocore's
connection pool is small (10 by default). With one shared pool, a handful of pollers can
leave heartbeats and answers queueing for a connection while their deadlines pass. So the
pollers get a client of their own with a read timeout longer than SWF's 60 s hold, and
every other call uses a second client whose pool grows with the worker's concurrency.

The clients send a User-Agent of their own (``heartbeat-worker/V aiobotocore/V Python/V``,
plus the session's extras) instead of botocore's default. It names the framework in
the service's request logs, and botocore renders it in a fraction of a microsecond, where
its default header (operating system, architecture, feature codes, each sanitised) takes
tens of microseconds, twice per call: about a tenth of the CPU of a whole call.

Retries are ours, not botocore's: botocore's retry would silently repeat a poll whose read
timed out (SWF may meanwhile have handed a task to the abandoned connection), and it knows
nothing of the heartbeat deadline that bounds how long retrying still makes sense.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import aiobotocore
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from ._logging import get_logger
from ._network import is_loopback
from ._version import VERSION

if TYPE_CHECKING:
    from types_aiobotocore_swf import SWFClient
else:
    SWFClient = object

__all__ = [
    "USER_AGENT",
    "Backoff",
    "SWFClient",
    "SWFConnection",
    "TaskClient",
    "describe_error",
    "error_code",
    "is_task_closed",
    "is_transient",
    "open_connection",
    "retry_transient",
]

T = TypeVar("T")

USER_AGENT = (
    f"heartbeat-worker/{VERSION} aiobotocore/{aiobotocore.__version__} "
    f"Python/{sys.version_info.major}.{sys.version_info.minor}"
)
"""What the clients send as User-Agent; the session appends its extras (``botocore/V``)."""

_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "LimitExceededFault",  # too many open polls: wait and try again
    }
)


class TaskClient(Protocol):
    """The calls made about one running task: what a task execution needs of a client.

    The aiobotocore SWF client satisfies it; so does the in-memory stand-in of
    :mod:`heartbeat_worker.testing`, which runs activities without SWF.
    """

    async def record_activity_task_heartbeat(
        self, *, taskToken: str, details: str = ...
    ) -> Mapping[str, Any]: ...

    async def respond_activity_task_completed(
        self, *, taskToken: str, result: str = ...
    ) -> Mapping[str, Any]: ...

    async def respond_activity_task_failed(
        self, *, taskToken: str, reason: str = ..., details: str = ...
    ) -> Mapping[str, Any]: ...

    async def respond_activity_task_canceled(
        self, *, taskToken: str, details: str = ...
    ) -> Mapping[str, Any]: ...


POLL_READ_TIMEOUT = 70.0
"""SWF holds a long poll up to 60 s; reading for less would abandon live polls."""


def error_code(error: BaseException) -> str | None:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def is_task_closed(error: BaseException) -> bool:
    """SWF no longer knows the task: timed out, answered already, or its workflow closed."""
    return error_code(error) == "UnknownResourceFault"


def is_transient(error: BaseException) -> bool:
    """Whether the same call may succeed later: throttling, 5xx, connection trouble."""
    if isinstance(error, HTTPClientError | BotocoreConnectionError | TimeoutError | OSError):
        return True
    if isinstance(error, ClientError):
        if error_code(error) in _TRANSIENT_CODES:
            return True
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return isinstance(status, int) and status >= 500
    return False


@dataclass
class Backoff:
    """Exponential backoff with full jitter, so that many callers do not retry in step."""

    initial: float = 0.1
    maximum: float = 5.0
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


async def retry_transient(
    call: Callable[[], Awaitable[T]],
    *,
    deadline: float | None = None,
    backoff: Backoff | None = None,
    what: str,
) -> T:
    """Repeat ``call`` while it fails transiently and ``deadline`` (anyio clock) allows.

    Each attempt is itself bounded by the deadline, so a hung connection cannot hold the
    caller past it. The last error is re-raised when time runs out; non-transient errors
    are raised at once.
    """
    backoff = backoff or Backoff()
    last_error: Exception | None = None
    while True:
        remaining = None if deadline is None else deadline - anyio.current_time()
        if remaining is not None and remaining <= 0:
            if last_error is not None:
                # The sleep below ended past the deadline (a busy machine): the caller
                # learns what made it wait, not that the clock ran on.
                raise last_error
            raise TimeoutError(f"{what}: no attempt left before the deadline")
        try:
            if remaining is None:
                return await call()  # no cancel scope to create when there is no deadline
            with anyio.fail_after(remaining):
                return await call()
        except Exception as error:
            if not is_transient(error):
                raise
            delay = backoff.next_delay()
            if deadline is not None and anyio.current_time() + delay >= deadline:
                raise
            get_logger().warning(
                "swf call failed; retrying",
                call=what,
                error=describe_error(error),
                retry_in=round(delay, 3),
            )
            last_error = error
            await anyio.sleep(delay)


def describe_error(error: BaseException) -> str:
    """The error in a few words for a log line: its type and SWF error code, or message."""
    code = error_code(error)
    return f"{type(error).__name__}({code})" if code else f"{type(error).__name__}: {error}"


@dataclass
class SWFConnection:
    """The worker's two SWF clients; see the module docstring for why there are two."""

    poll_client: SWFClient
    call_client: SWFClient


def _is_loopback(endpoint_url: str | None) -> bool:
    if not endpoint_url:
        return False
    return is_loopback(urlsplit(endpoint_url).hostname or "")


@asynccontextmanager
async def open_connection(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: AioSession | None = None,
    poll_connections: int = 2,
    call_connections: int = 10,
    poll_read_timeout: float = POLL_READ_TIMEOUT,
) -> AsyncIterator[SWFConnection]:
    """Open the clients, following the standard AWS configuration chain.

    ``endpoint_url`` (or ``AWS_ENDPOINT_URL_SWF``, which botocore reads itself) points them
    elsewhere than AWS. For an endpoint on this machine, such as the dev server, a region
    and credentials are not needed: placeholders are used when the chain has none, because
    the dev server accepts any and asking people to invent some helps nobody.
    """
    session = session or get_session()
    region = region or session.get_config_variable("region")
    configured_endpoint = endpoint_url or _configured_swf_endpoint()
    if _is_loopback(configured_endpoint):
        region = region or "us-east-1"
        # Look for credentials the user configured, but not on the network: the instance
        # metadata service is not on this machine, and the dev server accepts any.
        resolver = session.get_component("credential_provider")
        for provider in ("iam-role", "container-role"):
            with contextlib.suppress(ValueError):
                resolver.remove(provider)
        if await session.get_credentials() is None:
            session.set_credentials("heartbeat-worker-local", "heartbeat-worker-local")
    no_retries = {"total_max_attempts": 1}
    poll_config = AioConfig(
        read_timeout=poll_read_timeout,
        connect_timeout=10,
        max_pool_connections=max(1, poll_connections),
        retries=no_retries,
        user_agent=USER_AGENT,
    )
    call_config = AioConfig(
        read_timeout=30,
        connect_timeout=10,
        max_pool_connections=max(10, call_connections),
        retries=no_retries,
        user_agent=USER_AGENT,
    )
    async with AsyncExitStack() as stack:
        poll_client = await stack.enter_async_context(
            session.create_client(
                "swf", region_name=region, endpoint_url=endpoint_url, config=poll_config
            )
        )
        call_client = await stack.enter_async_context(
            session.create_client(
                "swf", region_name=region, endpoint_url=endpoint_url, config=call_config
            )
        )
        yield SWFConnection(poll_client=poll_client, call_client=call_client)


def _configured_swf_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_SWF") or os.environ.get("AWS_ENDPOINT_URL")
