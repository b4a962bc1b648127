"""Fault injection: each kind of fault, its window and probability, and what it leaves alone."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError, HTTPClientError

from heartbeat_worker._swf import error_code, is_transient
from heartbeat_worker.devserver import DevServer
from heartbeat_worker.devserver._faults import parse_fault_spec
from swfkit import DUMMY_CREDENTIALS, SWFKit, aio_session

pytestmark = pytest.mark.anyio


@pytest.fixture
async def swfkit(dev_server: DevServer) -> AsyncIterator[SWFKit]:
    """A kit whose client never retries: the fixtures' client retries once, which would
    hide the faults under test."""
    config = AioConfig(retries={"total_max_attempts": 1}, read_timeout=15, connect_timeout=5)
    async with aio_session().create_client(
        "swf",
        region_name="us-east-1",
        endpoint_url=dev_server.endpoint_url,
        config=config,
        **DUMMY_CREDENTIALS,
    ) as client:
        kit = SWFKit(client)
        await kit.setup()
        yield kit


HEARTBEAT = "RecordActivityTaskHeartbeat"
COMPLETED = "RespondActivityTaskCompleted"


async def _started(swfkit: SWFKit) -> dict[str, Any]:
    return await swfkit.start_activity(heartbeat_timeout="NONE", start_to_close_timeout="NONE")


async def test_throttling_is_swf_shaped_and_changes_nothing(
    dev_server: DevServer, swfkit: SWFKit
) -> None:
    task = await _started(swfkit)
    dev_server.faults.add("throttle", operation=HEARTBEAT)
    with pytest.raises(ClientError) as raised:
        await swfkit.client.record_activity_task_heartbeat(
            taskToken=task["taskToken"], details="refused"
        )
    assert error_code(raised.value) == "ThrottlingException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert is_transient(raised.value)
    view = dev_server.snapshot().task("activity-1")
    assert view is not None
    assert (view.details, view.heartbeats) == (None, 0)
    dev_server.faults.clear()
    await swfkit.client.record_activity_task_heartbeat(taskToken=task["taskToken"], details="ok")
    view = dev_server.snapshot().task("activity-1")
    assert view is not None
    assert (view.details, view.heartbeats) == ("ok", 1)
    assert view.last_heartbeat_at is not None
    assert dev_server.faults.injected == {(HEARTBEAT, "throttle"): 1}


async def test_internal_failure_is_a_500(dev_server: DevServer, swfkit: SWFKit) -> None:
    task = await _started(swfkit)
    dev_server.faults.add("error", operation=[HEARTBEAT, COMPLETED])
    with pytest.raises(ClientError) as raised:
        await swfkit.client.respond_activity_task_completed(taskToken=task["taskToken"])
    assert error_code(raised.value) == "InternalFailure"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert is_transient(raised.value)
    assert dev_server.snapshot().task("activity-1") is not None  # still open


async def test_a_dropped_connection_happens_before_the_request_is_applied(
    dev_server: DevServer, swfkit: SWFKit
) -> None:
    task = await _started(swfkit)
    dev_server.faults.add("drop", operation=COMPLETED)
    with pytest.raises(HTTPClientError) as raised:
        await swfkit.client.respond_activity_task_completed(taskToken=task["taskToken"])
    assert is_transient(raised.value)
    assert dev_server.snapshot().task("activity-1") is not None
    dev_server.faults.clear()
    await swfkit.client.respond_activity_task_completed(taskToken=task["taskToken"])
    assert dev_server.snapshot().task("activity-1") is None


async def test_a_lost_reply_is_applied_and_the_retry_gets_unknown_resource(
    dev_server: DevServer, swfkit: SWFKit
) -> None:
    task = await _started(swfkit)
    dev_server.faults.add("drop-reply", operation=COMPLETED)
    with pytest.raises(HTTPClientError):
        await swfkit.client.respond_activity_task_completed(taskToken=task["taskToken"], result="1")
    with pytest.raises(ClientError) as raised:
        await swfkit.client.respond_activity_task_completed(taskToken=task["taskToken"], result="1")
    assert error_code(raised.value) == "UnknownResourceFault"
    assert swfkit.execution is not None
    events = await swfkit.history(swfkit.execution)
    assert [e["eventType"] for e in events].count("ActivityTaskCompleted") == 1


async def test_latency_delays_the_answer(dev_server: DevServer, swfkit: SWFKit) -> None:
    dev_server.faults.add("latency", operation="ListDomains", latency=0.3)
    started = time.monotonic()
    await swfkit.client.list_domains(registrationStatus="REGISTERED")
    assert time.monotonic() - started >= 0.3
    await swfkit.client.count_pending_activity_tasks(
        domain=swfkit.domain, taskList={"name": "other"}
    )
    # Only the operation named was delayed (the server's own count, not a stopwatch).
    assert dev_server.faults.injected == {("ListDomains", "latency"): 1}


async def test_a_window_opens_and_closes(dev_server: DevServer, swfkit: SWFKit) -> None:
    rule = dev_server.faults.add("throttle", operation="ListDomains", after=0.5, duration=0.5)
    assert rule.ends is not None

    async def throttled() -> bool:
        try:
            await swfkit.client.list_domains(registrationStatus="REGISTERED")
        except ClientError as error:
            return error_code(error) == "ThrottlingException"
        return False

    # Calls one after another until the window has closed, each placed by when it was sent
    # and answered (the rule's times are the same monotonic clock): a call wholly before,
    # within or after the window must be served, throttled, served.
    seen: dict[str, list[bool]] = {"before": [], "within": [], "after": []}
    with anyio.fail_after(20):
        while True:
            sent = time.monotonic()
            refused = await throttled()
            answered = time.monotonic()
            if answered < rule.starts:
                seen["before"].append(refused)
            elif rule.starts <= sent and answered < rule.ends:
                seen["within"].append(refused)
            elif sent >= rule.ends:
                seen["after"].append(refused)
                break
    assert seen["before"]
    assert not any(seen["before"])
    assert seen["within"]
    assert all(seen["within"])
    assert seen["after"] == [False]


async def test_probabilities_of_refusing_faults_add_up(
    dev_server: DevServer, swfkit: SWFKit
) -> None:
    faults = dev_server.faults
    faults.seed(5)
    for kind in ("throttle", "error"):
        faults.add(kind, operation="ListDomains", probability=0.1)  # type: ignore[arg-type]
    refused = 0
    for _ in range(400):
        try:
            await swfkit.client.list_domains(registrationStatus="REGISTERED")
        except ClientError:
            refused += 1
    assert 50 <= refused <= 110  # 20% of 400 is 80
    assert faults.total() == refused
    assert faults.calls["ListDomains"] == 400


def test_bad_rules_are_refused() -> None:
    server = DevServer()
    with pytest.raises(ValueError, match="unknown fault kind"):
        server.faults.add("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown SWF operation"):
        server.faults.add("throttle", operation="RecordHeartbeat")
    with pytest.raises(ValueError, match="probability"):
        server.faults.add("error", probability=1.5)
    with pytest.raises(ValueError, match="latency"):
        server.faults.add("latency")
    assert server.faults.rules == ()


def test_the_spec_grammar() -> None:
    assert parse_fault_spec("throttle") == ("throttle", {})
    assert parse_fault_spec(
        "latency, operation=PollForActivityTask+RecordActivityTaskHeartbeat, latency=0.5,"
        " probability=0.25, after=10, duration=5"
    ) == (
        "latency",
        {
            "operation": ["PollForActivityTask", "RecordActivityTaskHeartbeat"],
            "latency": 0.5,
            "probability": 0.25,
            "after": 10.0,
            "duration": 5.0,
        },
    )
    assert parse_fault_spec("drop,operation=*") == ("drop", {})
    for bad in ("fire", "error,probability", "error,probability=often", "error,colour=red"):
        with pytest.raises(ValueError):  # noqa: PT011 - the message varies by mistake
            parse_fault_spec(bad)


def test_the_command_refuses_a_bad_fault_spec() -> None:
    command = [sys.executable, "-m", "heartbeat_worker._cli", "dev-server", "--port", "0"]
    done = subprocess.run(
        [*command, "--fault", "throttle,operation=Nope"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--fault 'throttle,operation=Nope'" in done.stderr
    assert "Traceback" not in done.stderr
