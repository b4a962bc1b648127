"""The README's quick start, command for command: a worker process serving
``examples.quickstart`` and ``heartbeat-worker execute`` running its activity once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import anyio
import anyio.streams.text
import pytest

from heartbeat_worker.devserver import DevServer

pytestmark = pytest.mark.anyio

ENVIRONMENT = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "heartbeat_worker._cli", *arguments]


async def test_quick_start_runs_an_activity_through_a_worker_process(
    dev_server: DevServer,
) -> None:
    url = dev_server.endpoint_url
    worker = await anyio.open_process(
        command(
            "run", "examples.quickstart", "--domain", "demo", "--task-list", "images",
            "--endpoint-url", url, "--register", "--log-format", "json",
        ),
        env=ENVIRONMENT,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    assert worker.stderr is not None
    logs = anyio.streams.text.TextReceiveStream(worker.stderr)
    seen = ""
    try:
        with anyio.fail_after(30):
            while '"worker started"' not in seen:
                seen += await logs.receive()
            done = await anyio.run_process(
                command(
                    "execute", "resize", "--domain", "demo", "--task-list", "images",
                    "--endpoint-url", url, "--json",
                    "--input", json.dumps({"images": ["a.png", "b.png"]}),
                ),
                env=ENVIRONMENT,
                check=False,
            )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode() + done.stdout.decode()
        outcome = json.loads(done.stdout)
        assert outcome["status"] == "completed"
        assert json.loads(outcome["result"]) == {"resized": 2}
    finally:
        worker.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            async for text in logs:
                seen += text
            code = await worker.wait()
    assert code == 0, seen
    assert '"worker stopped"' in seen
