"""``heartbeat-worker run`` after start-up: shutdown explained, permanent refusals final."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import anyio.abc
import anyio.streams.text
import pytest

from heartbeat_worker.devserver import DevServer
from swfkit import TEST_POLL_TIMEOUT

from .commands import DEV_ENVIRONMENT, command, run_command, write_jobs

pytestmark = pytest.mark.anyio


class Output:
    """A process's stderr, read as it comes, with waits that have deadlines."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stderr is not None
        self._stream = anyio.streams.text.TextReceiveStream(process.stderr)
        self.text = ""

    async def wait_for(self, fragment: str, timeout: float = 20.0) -> None:
        with anyio.fail_after(timeout):
            while fragment not in self.text:
                self.text += await self._stream.receive()

    async def rest(self, timeout: float = 20.0) -> str:
        with anyio.fail_after(timeout):
            async for chunk in self._stream:
                self.text += chunk
        return self.text


async def stop_now(process: anyio.abc.Process, output: Output) -> int:
    """Ctrl-C, and once the worker has said what it waits for, Ctrl-C again: its exit status.

    (Two signals sent at once may arrive as one.)"""
    process.send_signal(signal.SIGINT)
    await output.wait_for("press Ctrl-C again")
    process.send_signal(signal.SIGINT)
    with anyio.fail_after(15):
        return await process.wait()


async def start_worker(url: str, cwd: Path, *more: str) -> anyio.abc.Process:
    return await anyio.open_process(
        command(
            "run", "myjobs", "--domain", "d", "--task-list", "jobs", "--register",
            "--endpoint-url", url, "--log-format", "console", *more,
        ),
        env=DEV_ENVIRONMENT,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


async def test_an_idle_ctrl_c_says_what_it_waits_for_and_how_to_leave(
    tmp_path: Path, dev_server: DevServer
) -> None:
    process = await start_worker(dev_server.endpoint_url, write_jobs(tmp_path))
    output = Output(process)
    try:
        await output.wait_for("worker started")
        process.send_signal(signal.SIGINT)
        await output.wait_for("press Ctrl-C again to leave now")
        line = output.text.splitlines()[-1]
        assert "shutting down" in line
        assert "answered 'worker shutdown'" in line
        assert "open_polls=" in line
        assert "at_most='20 s'" in line
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(15):
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
    assert code == 0, await output.rest()
    assert "Traceback" not in await output.rest()


async def test_a_refusal_after_start_up_stops_the_worker_with_status_three(
    tmp_path: Path,
) -> None:
    # The dev server restarts without its state, on the same port: every poll now gets
    # "Unknown domain", which no retry fixes.
    server = DevServer(poll_timeout=TEST_POLL_TIMEOUT)
    await server.start()
    port = urlsplit(server.endpoint_url).port
    assert port is not None
    process = await start_worker(server.endpoint_url, write_jobs(tmp_path))
    output = Output(process)
    restarted = None
    try:
        await output.wait_for("worker started")
        await server.stop()
        restarted = DevServer(port=port, poll_timeout=TEST_POLL_TIMEOUT)
        await restarted.start()
        with anyio.fail_after(30):
            code = await process.wait()
        text = await output.rest()
    finally:
        if process.returncode is None:
            process.kill()
        if restarted is not None:
            await restarted.stop()
    assert code == 3, text
    assert "Traceback" not in text
    last = text.strip().splitlines()[-1]
    assert last.startswith("heartbeat-worker run: SWF refused PollForActivityTask: ")
    assert "UnknownResourceFault" in last
    assert "register it again" in last


async def test_an_outage_after_start_up_is_logged_once_with_its_attempts(
    tmp_path: Path, dev_server: DevServer
) -> None:
    process = await start_worker(dev_server.endpoint_url, write_jobs(tmp_path))
    output = Output(process)
    try:
        await output.wait_for("worker started")
        dev_server.faults.add("error", operation="PollForActivityTask", duration=3.0)
        await output.wait_for("polls recovered")
        code = await stop_now(process, output)
    finally:
        if process.returncode is None:
            process.kill()
    text = await output.rest()
    assert code == 0, text
    failing = [line for line in text.splitlines() if "polls failing" in line]
    assert len(failing) == 1, text
    assert "attempt=1" in failing[0]
    assert "retry_in=" in failing[0]
    assert "InternalFailure" in failing[0]
    recovered = next(line for line in text.splitlines() if "polls recovered" in line)
    attempts = int(recovered.split("failed_attempts=")[1].split()[0])
    # Several slots failed several times each, and said so once.
    assert attempts >= 2, recovered
    assert dev_server.faults.total("error", "PollForActivityTask") == attempts


async def test_console_lines_lead_with_what_a_person_scans(
    tmp_path: Path, dev_server: DevServer
) -> None:
    url = dev_server.endpoint_url
    process = await start_worker(url, write_jobs(tmp_path))
    output = Output(process)
    try:
        await output.wait_for("worker started")
        started = next(line for line in output.text.splitlines() if "worker started" in line)
        for field in (f"endpoint={url}", "region=us-east-1", "identity=", "task_list=jobs"):
            assert field in started, started
        assert "activities=['hello:1', 'slow:1']" in started
        code, _, err = await run_command(
            "execute", "hello", "--domain", "d", "--task-list", "jobs", "--input", '"you"',
            "--endpoint-url", url,
        )  # fmt: skip
        assert code == 0, err
        await output.wait_for("task completed")
    finally:
        await stop_now(process, output)
    line = next(line for line in output.text.splitlines() if "task completed" in line)
    order = [
        "activity_type=hello", "duration=", "beats=", "activity_id=", "workflow_id=", "run_id=",
        "token=",
    ]  # fmt: skip
    positions = [line.index(field) for field in order]
    assert positions == sorted(positions), line


async def test_a_long_task_shows_at_info_when_it_starts(
    tmp_path: Path, dev_server: DevServer
) -> None:
    url = dev_server.endpoint_url
    process = await start_worker(url, write_jobs(tmp_path))
    output = Output(process)
    try:
        await output.wait_for("worker started")
        code, _, err = await run_command(
            "execute", "hello", "--domain", "d", "--task-list", "jobs", "--input", '"you"',
            "--endpoint-url", url,
        )  # fmt: skip
        assert code == 0, err
        async with anyio.create_task_group() as group:
            group.start_soon(
                run_command,
                "execute", "slow", "--domain", "d", "--task-list", "jobs", "--input", "30",
                "--endpoint-url", url,
            )  # fmt: skip
            await output.wait_for("task running")
            running = next(line for line in output.text.splitlines() if "task running" in line)
            # Announced while it runs, not when it ends.
            assert "task completed" not in output.text.split(running)[1]
            group.cancel_scope.cancel()
    finally:
        await stop_now(process, output)
    assert "activity_type=slow" in running
    assert "[info" in running
    # The short task logged its answer only.
    hello = [
        line
        for line in output.text.splitlines()
        if "activity_type=hello" in line and "workflow_id=" in line
    ]
    assert ["task completed" in line for line in hello] == [True], hello


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        ("AccessDeniedException", "grant the worker's credentials the swf:* actions"),
        ("ExpiredTokenException", "the credentials expired and did not refresh"),
        ("DomainDeprecatedFault", "the domain was deprecated"),
    ],
)
async def test_a_permanent_refusal_stops_the_worker_with_the_fix(
    tmp_path: Path, dev_server: DevServer, code: str, fix: str
) -> None:
    process = await start_worker(dev_server.endpoint_url, write_jobs(tmp_path))
    output = Output(process)
    try:
        await output.wait_for("worker started")
        dev_server.faults.add("error", operation="PollForActivityTask", code=code)
        with anyio.fail_after(30):
            status = await process.wait()
        text = await output.rest()
    finally:
        if process.returncode is None:
            process.kill()
    assert status == 3, text
    assert "Traceback" not in text
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"heartbeat-worker run: SWF refused PollForActivityTask: {code}")
    assert fix in last
    assert text.count("polls failing") == 0
