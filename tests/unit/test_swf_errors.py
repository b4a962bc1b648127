from __future__ import annotations

import time

import anyio
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from heartbeat_worker._swf import Backoff, is_task_closed, is_transient, retry_transient


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "RecordActivityTaskHeartbeat",
    )


def test_transient_errors_are_recognised() -> None:
    assert is_transient(client_error("ThrottlingException"))
    assert is_transient(client_error("InternalFailure", 500))
    assert is_transient(client_error("Whatever", 503))
    assert is_transient(EndpointConnectionError(endpoint_url="http://x"))
    assert is_transient(ReadTimeoutError(endpoint_url="http://x"))
    assert not is_transient(client_error("ValidationException"))
    assert not is_transient(client_error("UnknownResourceFault"))
    assert is_task_closed(client_error("UnknownResourceFault"))
    assert not is_task_closed(client_error("ThrottlingException"))


def test_backoff_grows_with_full_jitter_and_caps() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(delay <= 1.0 for delay in delays)
    assert delays[-1] >= 0.5


pytestmark = pytest.mark.anyio


async def test_retry_transient_retries_then_succeeds() -> None:
    failures = [client_error("ThrottlingException"), client_error("InternalFailure", 500)]

    async def call() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    assert await retry_transient(call, backoff=Backoff(initial=0.001), what="test") == "ok"


async def test_retry_transient_raises_permanent_errors_at_once() -> None:
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        raise client_error("ValidationException")

    with pytest.raises(ClientError):
        await retry_transient(call, what="test")
    assert calls == 1


async def test_retry_transient_gives_up_at_the_deadline() -> None:
    attempts: list[float] = []

    async def call() -> str:
        attempts.append(anyio.current_time())
        raise client_error("ThrottlingException")

    deadline = anyio.current_time() + 0.3
    with anyio.fail_after(10), pytest.raises(ClientError):
        await retry_transient(
            call, deadline=deadline, backoff=Backoff(initial=0.05, maximum=0.1), what="t"
        )
    # It retried, never after the deadline, and then raised the last error.
    assert len(attempts) >= 2
    assert max(attempts) <= deadline


async def test_retry_transient_raises_the_last_error_when_its_sleep_overran_the_deadline() -> None:
    """On a busy machine the sleep between attempts can end past the deadline: the caller
    still gets the error that made it wait (as documented), not a TimeoutError of its own."""
    failed_once = anyio.Event()

    async def call() -> str:
        failed_once.set()
        raise client_error("ThrottlingException")

    async def hog_the_loop() -> None:
        await failed_once.wait()
        time.sleep(0.4)  # noqa: ASYNC251 - a busy machine, on purpose

    deadline = anyio.current_time() + 0.3
    async with anyio.create_task_group() as group:
        group.start_soon(hog_the_loop)
        with pytest.raises(ClientError):
            await retry_transient(
                call, deadline=deadline, backoff=Backoff(initial=0.05, maximum=0.05), what="t"
            )


async def test_retry_transient_bounds_a_hung_attempt_by_the_deadline() -> None:
    async def call() -> str:
        await anyio.sleep(10)
        return "late"

    with pytest.raises(TimeoutError):
        await retry_transient(call, deadline=anyio.current_time() + 0.1, what="t")
