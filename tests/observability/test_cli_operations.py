"""``heartbeat-worker run`` in a real process: the module's ``@lifespan`` found and used by
the example's activity, ``--metrics-port`` serving the metrics and probes, and a lifespan
that fails to start ending the process with one line and status 3."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.abc
import anyio.streams.text
import anyio.to_thread
import pytest

from heartbeat_worker.devserver import DevServer

from .test_metrics import get, parse, value

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "PYTHONUNBUFFERED": "1",
}


def command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "heartbeat_worker._cli", *arguments]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def read_until(logs: anyio.streams.text.TextReceiveStream, text: str, seen: str) -> str:
    with anyio.fail_after(30):
        while text not in seen:
            seen += await logs.receive()
    return seen


async def test_run_uses_the_modules_lifespan_and_serves_metrics_and_probes(
    dev_server: DevServer,
) -> None:
    url, port = dev_server.endpoint_url, free_port()
    worker = await anyio.open_process(
        command(
            "run", "examples.shared_client", "--domain", "demo", "--task-list", "http",
            "--endpoint-url", url, "--register", "--log-format", "json",
            "--metrics-port", str(port),
        ),
        env=ENVIRONMENT,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    assert worker.stderr is not None
    logs = anyio.streams.text.TextReceiveStream(worker.stderr)
    try:
        seen = await read_until(logs, '"worker started"', "")
        done = await anyio.run_process(
            command(
                "execute", "fetch", "--domain", "demo", "--task-list", "http",
                "--endpoint-url", url, "--json", "--input", json.dumps(f"{url}/status.json"),
            ),
            env=ENVIRONMENT,
            cwd=ROOT,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        result = json.loads(done.stdout)["result"]
        if isinstance(result, str):
            result = json.loads(result)
        assert result["status"] == 200
        assert result["bytes"] > 0

        status, text = await anyio.to_thread.run_sync(get, f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        samples = parse(text)
        tasks = "heartbeat_worker_tasks_total"
        assert value(samples, tasks, activity_type="fetch", outcome="completed") == 1
        readiness = await anyio.to_thread.run_sync(get, f"http://127.0.0.1:{port}/readyz")
        assert readiness == (200, "ready\n")

        worker.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            assert await worker.wait() == 0
        async for chunk in logs:
            seen += chunk
        assert '"worker stopped"' in seen
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


async def test_a_lifespan_that_fails_ends_run_with_one_line_and_status_3(
    dev_server: DevServer, tmp_path: Path
) -> None:
    (tmp_path / "brokenlife.py").write_text(
        "import heartbeat_worker\n"
        "from heartbeat_worker import activity\n"
        "\n"
        "@heartbeat_worker.lifespan\n"
        "async def database():\n"
        "    raise ConnectionRefusedError('database at db:5432 refused the connection')\n"
        "    yield\n"
        "\n"
        "@activity(heartbeat_timeout=10)\n"
        "async def work() -> None:\n"
        "    pass\n"
    )
    done = await anyio.run_process(
        command(
            "run", "brokenlife", "--domain", "demo", "--task-list", "broken",
            "--endpoint-url", dev_server.endpoint_url, "--log-format", "json",
        ),
        env=ENVIRONMENT,
        cwd=tmp_path,
        check=False,
    )  # fmt: skip
    assert done.returncode == 3
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last == (
        "heartbeat-worker run: the worker's lifespan failed to start: "
        "ConnectionRefusedError: database at db:5432 refused the connection"
    )
    assert "PollForActivityTask" not in stderr
    assert '"worker started"' not in stderr
