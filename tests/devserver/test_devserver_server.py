"""Starting and stopping the dev server: in-process, in a thread, and as a command."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp
import anyio
import pytest

from heartbeat_worker.devserver import Call, DevServer
from swfkit import DUMMY_CREDENTIALS, SWFKit, aio_session, attributes, client_config

pytestmark = pytest.mark.anyio


async def test_endpoint_url_names_the_bound_loopback_port() -> None:
    server = DevServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.endpoint_url
    async with server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.endpoint_url)
        assert not server.endpoint_url.endswith(":0")
    with pytest.raises(RuntimeError):
        _ = server.endpoint_url


def test_a_non_loopback_host_needs_allow_remote() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        DevServer(host="0.0.0.0")
    with pytest.raises(ValueError, match="poll_timeout"):
        DevServer(poll_timeout=0)
    DevServer(host="0.0.0.0", allow_remote=True)  # refused only when not asked for


def test_in_thread_serves_synchronous_clients(boto3_swf_client: Any) -> None:
    boto3_swf_client.register_domain(name="d", workflowExecutionRetentionPeriodInDays="1")
    with pytest.raises(boto3_swf_client.exceptions.DomainAlreadyExistsFault):
        boto3_swf_client.register_domain(name="d", workflowExecutionRetentionPeriodInDays="1")


def test_a_thread_that_cannot_start_raises_in_the_caller() -> None:
    with DevServer().in_thread() as first:
        port = int(first.endpoint_url.rsplit(":", 1)[1])
        with pytest.raises(OSError, match=r"(?i)in use"), DevServer(port=port).in_thread():
            pass


async def test_timeouts_fire_on_time_while_the_callers_loop_is_blocked() -> None:
    """A server in its own thread keeps time even when the caller's loop does not."""
    async with (
        DevServer(poll_timeout=1).in_thread() as server,
        aio_session().create_client(
            "swf",
            region_name="us-east-1",
            endpoint_url=server.endpoint_url,
            config=client_config(aio=True),
            **DUMMY_CREDENTIALS,
        ) as client,
    ):
        kit = SWFKit(client)
        await kit.setup()
        task = await kit.start_activity("a1", heartbeat_timeout="0.2")
        # A worker hogging the loop: until the timeout shows, this coroutine never yields,
        # and it looks through a synchronous client (no deadline but the test's).
        timed_out = _wait_blocking(server.endpoint_url, task["workflowExecution"])
        assert attributes(timed_out)["timeoutType"] == "HEARTBEAT"


def _wait_blocking(endpoint_url: str, execution: dict[str, Any], deadline: float = 20) -> Any:
    """The ActivityTaskTimedOut event of ``execution``, read with boto3 without yielding."""
    import boto3

    client = boto3.client(
        "swf",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        config=client_config(),
        **DUMMY_CREDENTIALS,
    )
    give_up = time.monotonic() + deadline
    try:
        while time.monotonic() < give_up:
            events = client.get_workflow_execution_history(domain="hw-test", execution=execution)
            for event in events["events"]:
                if event["eventType"] == "ActivityTaskTimedOut":
                    return event
            time.sleep(0.02)  # the blocked loop is the point
    finally:
        client.close()
    raise TimeoutError(f"no ActivityTaskTimedOut within {deadline} s of a blocked loop")


def _run_command(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "heartbeat_worker._cli", "dev-server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_command_prints_its_url_and_stops_cleanly_on_a_signal(signum: int) -> None:
    process = _run_command("--port", "0", "--poll-timeout", "1")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        import boto3

        client = boto3.client(
            "swf",
            region_name="us-east-1",
            endpoint_url=found.group(0),
            config=client_config(),
            **DUMMY_CREDENTIALS,
        )
        assert client.list_domains(registrationStatus="REGISTERED")["domainInfos"] == []
        client.close()
        process.send_signal(signum)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_command_refuses_a_non_loopback_host() -> None:
    process = _run_command("--host", "0.0.0.0")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "--allow-remote" in err


async def test_stopping_answers_open_polls_at_once() -> None:
    server = DevServer(poll_timeout=30)
    async with server, aiohttp.ClientSession() as session:
        registered = await session.post(
            server.endpoint_url,
            json={"name": "d", "workflowExecutionRetentionPeriodInDays": "1"},
            headers={"X-Amz-Target": "SimpleWorkflowService.RegisterDomain"},
        )
        registered.release()
        poll = session.post(
            server.endpoint_url,
            json={"domain": "d", "taskList": {"name": "t"}},
            headers={"X-Amz-Target": "SimpleWorkflowService.PollForActivityTask"},
        )
        async with anyio.create_task_group() as group:
            replies: list[Any] = []

            async def send() -> None:
                async with poll as reply:
                    replies.append(await reply.json(content_type=None))

            group.start_soon(send)
            with anyio.fail_after(10):  # the poll reached the server, which holds it
                while not server.snapshot().polls:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            started = time.monotonic()
            await server.stop()
        assert time.monotonic() - started < 5
        assert replies == [{"startedEventId": 0}]


async def test_observe_sees_every_call_handled_with_its_reply_or_its_error(
    dev_server: DevServer, swf_client: Any
) -> None:
    seen: list[Call] = []
    stop = dev_server.observe(seen.append)
    kit = SWFKit(swf_client)
    await kit.setup()
    task = await kit.start_activity("observed")
    with pytest.raises(swf_client.exceptions.UnknownResourceFault):
        await swf_client.record_activity_task_heartbeat(taskToken="not-a-token")
    stop()
    await swf_client.record_activity_task_heartbeat(taskToken=task["taskToken"])

    polls = [call for call in seen if call.operation == "PollForActivityTask"]
    assert [call.reply["taskToken"] for call in polls if call.reply] == [task["taskToken"]]
    assert polls[0].request["domain"] == "hw-test"
    refused = [call for call in seen if call.operation == "RecordActivityTaskHeartbeat"]
    assert [(call.request["taskToken"], call.reply, call.error) for call in refused] == [
        ("not-a-token", None, "UnknownResourceFault")
    ]  # and the beat after stop() was not seen
    assert all(a.at <= b.at for a, b in itertools.pairwise(seen))


async def test_an_observer_that_raises_gives_an_swf_shaped_internal_failure(
    dev_server: DevServer, raw: Any
) -> None:
    def broken(call: Call) -> None:
        raise RuntimeError("observer bug")

    dev_server.observe(broken)
    status, body = await raw("ListDomains", {"registrationStatus": "REGISTERED"})
    assert status == 500
    assert body["__type"].endswith("#InternalFailure")
    # The same for a call the engine refused.
    status, body = await raw("RecordActivityTaskHeartbeat", {"taskToken": "not-a-token"})
    assert status == 500
    assert body["__type"].endswith("#InternalFailure")
