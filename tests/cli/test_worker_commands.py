"""``heartbeat-worker run`` and ``register`` as separate processes against a dev server in
the test: what the README promises of them (signals, the heartbeat budget, registration)."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from typing import Any

import anyio
import pytest

from heartbeat_worker.devserver import DevServer
from reliability.processes import worker_process
from reliability.secrecy import LogCapture
from swfkit import SWFKit

pytestmark = pytest.mark.anyio


async def run_command(*arguments: str) -> tuple[int, str, str]:
    """``heartbeat-worker ARGUMENTS`` to its end: (exit status, stdout, stderr)."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    command = [sys.executable, "-m", "heartbeat_worker._cli", *arguments]
    with anyio.fail_after(30):
        done = await anyio.run_process(command, env=env, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def schedule(kit: SWFKit, name: str, payload: Any, task_list: str, **timeouts: str) -> None:
    await kit.start()
    await kit.schedule_activity(
        "a1",
        activity_type={"name": name, "version": "1"},
        task_list=task_list,
        input=json.dumps(payload),
        **timeouts,
    )


async def wait_started(server: DevServer, deadline: float = 15) -> None:
    with anyio.fail_after(deadline):
        while not [t for t in server.snapshot().activity_tasks if t.state == "started"]:  # noqa: ASYNC110
            await anyio.sleep(0.02)


async def test_register_registers_domain_and_types_and_running_it_again_changes_nothing(
    dev_server: DevServer, swf_client: Any
) -> None:
    arguments = ["register", "tests.worker.activities", "--domain", "registered"]
    arguments += ["--endpoint-url", dev_server.endpoint_url]

    first = await run_command(*arguments)
    assert first[0] == 0, first[2]
    domain = await swf_client.describe_domain(name="registered")
    assert domain["domainInfo"]["status"] == "REGISTERED"
    types = await swf_client.list_activity_types(
        domain="registered", registrationStatus="REGISTERED"
    )
    names = sorted(t["activityType"]["name"] for t in types["typeInfos"])
    assert {"sleeper", "progress", "add", "stubborn"} <= set(names)
    sleeper = await swf_client.describe_activity_type(
        domain="registered", activityType={"name": "sleeper", "version": "1"}
    )
    assert sleeper["configuration"]["defaultTaskHeartbeatTimeout"] == "60"
    assert sleeper["configuration"]["defaultTaskStartToCloseTimeout"] == "300"

    second = await run_command(*arguments)  # idempotent: everything exists already
    assert second[0] == 0, second[2]
    again = await swf_client.list_activity_types(
        domain="registered", registrationStatus="REGISTERED"
    )
    assert sorted(t["activityType"]["name"] for t in again["typeInfos"]) == names


async def test_max_heartbeats_per_second_reaches_the_worker(
    dev_server: DevServer, swfkit: SWFKit
) -> None:
    """With a budget of 0.5 beats a second, one activity with a 1 s heartbeat timeout cannot
    be kept alive: the worker says so, naming the budget it was given on the command line."""
    logs = LogCapture(io.StringIO())
    options = ["--register", "--resolve-timeouts", "history"]
    options += ["--max-heartbeats-per-second", "0.5"]
    target = "tests.worker.activities"
    async with worker_process(dev_server, target, "budget", *options, logs=logs) as worker:
        await schedule(swfkit, "sleeper", 0.5, "budget", heartbeat_timeout="1")
        await worker.wait_for_log("heartbeat budget too small")
        worker.signal(signal.SIGTERM)
        assert await worker.wait(15) == 0
    (warning,) = logs.events("heartbeat budget too small")
    assert warning["budget_per_second"] == 0.5


async def test_a_third_signal_exits_at_once(dev_server: DevServer, swfkit: SWFKit) -> None:
    """An activity that ignores cancellation would hold the worker for the 60 s grace
    periods below; the third signal ends the process anyway, with status 130."""
    logs = LogCapture(io.StringIO())
    options = ["--register", "--graceful-shutdown-timeout", "60", "--cancel-grace-period", "60"]
    target = "tests.reliability.activities"
    async with worker_process(dev_server, target, "third", *options, logs=logs) as worker:
        await schedule(swfkit, "ignores_cancellation", 120, "third")
        await wait_started(dev_server)
        worker.signal(signal.SIGTERM)
        await worker.wait_for_log('"shutdown requested"')
        worker.signal(signal.SIGTERM)
        await worker.wait_for_log('"hurrying shutdown')
        worker.signal(signal.SIGTERM)
        code = await worker.wait(20)
    assert code == 130
    assert len(logs.events("signal received")) == 3
