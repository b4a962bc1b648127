"""Start-up checks: find what retrying cannot fix before the first poll, and say it in one line.

Without them, a worker pointed at a domain that does not exist polls forever, each poll
failing with "Unknown domain"; one whose activity types are not registered polls happily
and never gets a task. So before its first poll the worker calls ``DescribeDomain``, and
``DescribeActivityType`` for each type it serves (unless it registers them: then it
registers what is missing instead), and raises :class:`~heartbeat_worker.StartupError`
naming what is missing and the command that fixes it.

Connection trouble at start-up is also final, after a few quick attempts
(:data:`STARTUP_PATIENCE`): a worker that never reached SWF has no task to protect, and a
supervisor restarting it says more than a log of retries. After start-up the same errors
are retried for as long as they last (see :mod:`heartbeat_worker._outages`).

:func:`user_error_for` maps the errors botocore raises before any call is made (no region,
no credentials, an endpoint that refuses connections) onto the same one-line errors, for
the command line's single ``except``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeVar

import anyio
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from structlog.typing import FilteringBoundLogger

from ._definition import Activity
from ._errors import StartupError, UserError
from ._outages import describe_error, permanent_error_fix
from ._registration import register
from ._swf import Backoff, SWFClient, error_code, is_transient

__all__ = ["STARTUP_PATIENCE", "THROTTLED_PATIENCE", "check_startup", "user_error_for"]

T = TypeVar("T")

STARTUP_PATIENCE: Final = 3.0
"""Seconds the start-up checks retry transient errors (a refused connection, throttling)
before giving up: long enough for a blip, short enough that a wrong endpoint is reported
while the person who typed it still waits for the prompt."""

THROTTLED_PATIENCE: Final = 60.0
"""Seconds the start-up checks retry SWF's throttling and 5xx answers, as registration does."""

NO_REGION: Final = (
    "no AWS region configured: pass --region, or set AWS_REGION (or a region in ~/.aws/config)"
)
NO_CREDENTIALS: Final = (
    "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or run where an instance or container role applies"
)


def endpoint_of(client: SWFClient) -> str:
    """The URL the client calls, for messages."""
    url: str = client.meta.endpoint_url
    return url


async def check_startup(
    client: SWFClient,
    domain: str,
    activities: Iterable[Activity[..., Any]],
    log: FilteringBoundLogger,
    *,
    register_types: bool = False,
    endpoint: str | None = None,
) -> None:
    """Check (or, with ``register_types``, register) the domain and the activity types.

    Raises :class:`StartupError` with one line: what is missing or refused, and the fix.
    ``endpoint`` names the URL in messages (default: the client's own).
    """
    activities = list(activities)
    url = endpoint or endpoint_of(client)
    fix = (
        "start the worker with --register, or run: "
        f"heartbeat-worker register TARGET --domain {domain}"
    )
    try:
        described = await _patiently(lambda: client.describe_domain(name=domain), url)
    except ClientError as error:
        if error_code(error) != "UnknownResourceFault" or not register_types:
            if error_code(error) == "UnknownResourceFault":
                raise StartupError(f"domain {domain!r} does not exist at {url}: {fix}") from None
            raise _refused("DescribeDomain", error, url) from None
        described = None
    if described is not None and described["domainInfo"].get("status") == "DEPRECATED":
        raise StartupError(
            f"domain {domain!r} is deprecated at {url}: use another domain, or run: "
            f"aws swf undeprecate-domain --name {domain}"
        )
    if register_types:
        await register(client, domain, activities, log)
        return
    missing: list[str] = []
    for activity in activities:
        activity_type = activity.activity_type
        label = f"{activity_type.name}:{activity_type.version}"
        try:
            info = await _patiently(
                lambda t=activity_type: client.describe_activity_type(  # type: ignore[misc]
                    domain=domain, activityType={"name": t.name, "version": t.version}
                ),
                url,
            )
        except ClientError as error:
            if error_code(error) != "UnknownResourceFault":
                raise _refused("DescribeActivityType", error, url) from None
            missing.append(label)
            continue
        if info["typeInfo"].get("status") == "DEPRECATED":
            missing.append(f"{label} (deprecated)")
    if missing:
        names = ", ".join(missing)
        raise StartupError(
            f"activity type{'s' if len(missing) > 1 else ''} {names} not registered in domain "
            f"{domain!r} at {url}: {fix}"
        )


async def _patiently(call: Callable[[], Awaitable[T]], url: str) -> T:
    """``call()``, retried while it fails transiently: for :data:`STARTUP_PATIENCE` when SWF
    cannot be reached, for :data:`THROTTLED_PATIENCE` while SWF answers but refuses for now
    (throttling, 5xx: a fleet restarting at once must not fail for it).

    Quietly: the one line that matters is the final error, should there be one.
    """
    started = anyio.current_time()
    backoff = Backoff(initial=0.2, maximum=2.0)
    while True:
        try:
            with anyio.fail_after(max(0.1, started + THROTTLED_PATIENCE - anyio.current_time())):
                return await call()
        except Exception as error:
            delay = backoff.next_delay()
            patience = THROTTLED_PATIENCE if isinstance(error, ClientError) else STARTUP_PATIENCE
            if is_transient(error) and anyio.current_time() + delay < started + patience:
                await anyio.sleep(delay)
                continue
            mapped = user_error_for(error)
            if mapped is not None:
                raise mapped from None
            if isinstance(error, ClientError) and not is_transient(error):
                raise
            if isinstance(error, ClientError):
                raise StartupError(
                    f"SWF at {url} kept refusing for {THROTTLED_PATIENCE:g} s: "
                    f"{describe_error(error)}; try again later"
                ) from None
            raise StartupError(f"cannot reach SWF at {url}: {describe_error(error)}") from None


def _refused(call: str, error: ClientError, url: str) -> StartupError:
    fix = permanent_error_fix(error)
    text = f"SWF at {url} refused {call}: {describe_error(error)}"
    return StartupError(f"{text}; {fix}" if fix else text)


def user_error_for(error: BaseException) -> UserError | None:
    """The one-line error a person should see for ``error``; None when it is a bug.

    Exception groups (anyio's task groups wrap what their tasks raised) are searched for
    the first error that maps; the rest of the group is then noise around that one cause.
    """
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = user_error_for(inner)
            if found is not None:
                return found
        return None
    if isinstance(error, UserError):
        return error
    if isinstance(error, NoRegionError):
        return StartupError(NO_REGION)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return StartupError(NO_CREDENTIALS if isinstance(error, NoCredentialsError) else str(error))
    if isinstance(error, EndpointConnectionError):
        url = error.kwargs.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_SWF", "SWF")
        cause = error.kwargs.get("error")
        reason = describe_error(cause) if cause is not None else "connection failed"
        return StartupError(f"cannot reach SWF at {url}: {reason}")
    return None
