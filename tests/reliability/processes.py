"""A worker in a process of its own (``python -m heartbeat_worker._cli run ...``), its
standard error captured line by line for the test and for the secrecy check."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc

from heartbeat_worker.devserver import DevServer

from .secrecy import WORKER_ENV, LogCapture

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.stderr = ""
        self._changed = anyio.Event()
        self.exited_at: float | None = None

    async def _read(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        async for chunk in stream:
            self.stderr += chunk.decode(errors="replace")
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_for_log(self, text: str, deadline: float = 15) -> None:
        """Until a line containing ``text`` was written."""
        with anyio.fail_after(deadline):
            while text not in self.stderr:
                await self._changed.wait()

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.process.kill()

    async def wait(self, deadline: float) -> int:
        with anyio.fail_after(deadline):
            code = await self.process.wait()
        self.exited_at = time.monotonic()
        return code


@asynccontextmanager
async def worker_process(
    server: DevServer, target: str, task_list: str, *options: str, logs: LogCapture
) -> AsyncIterator[WorkerProcess]:
    """``heartbeat-worker run TARGET`` against ``server``; killed at the end if still running."""
    command = [
        sys.executable,
        "-m",
        "heartbeat_worker._cli",
        "run",
        target,
        "--domain",
        "hw-test",
        "--task-list",
        task_list,
        "--endpoint-url",
        server.endpoint_url,
        "--log-format",
        "json",
        "--log-level",
        "debug",
        *options,
    ]
    environment = {**os.environ, **WORKER_ENV, "PYTHONUNBUFFERED": "1"}
    process = await anyio.open_process(command, env=environment, cwd=ROOT, stdout=None)
    worker = WorkerProcess(process)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(worker._read)
            try:
                await worker.wait_for_log('"worker started"')
                yield worker
            finally:
                if process.returncode is None:
                    process.kill()
                with anyio.move_on_after(10):
                    await process.wait()
                group.cancel_scope.cancel()
    finally:
        logs.add(worker.stderr)
