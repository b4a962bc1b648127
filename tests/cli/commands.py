"""Running ``heartbeat-worker`` as a real process, the way a person types it."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

import anyio

DEADLINE = 30.0

DEV_ENVIRONMENT: Mapping[str, str] = {
    **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
"""Dummy credentials and a region, and nothing else of the caller's AWS settings."""

JOBS = """\
import anyio

from heartbeat_worker import activity


@activity(task_list="jobs", heartbeat_timeout=10)
async def hello(name: str) -> str:
    return f"hello {name}"


@activity(task_list="jobs", heartbeat_timeout=10)
async def slow(seconds: float) -> None:
    await anyio.sleep(seconds)
"""


def command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "heartbeat_worker._cli", *arguments]


async def run_command(
    *arguments: str,
    env: Mapping[str, str] = DEV_ENVIRONMENT,
    cwd: Path | None = None,
    deadline: float = DEADLINE,
) -> tuple[int, str, str]:
    """Run the command to its end within ``deadline``: (exit status, stdout, stderr)."""
    with anyio.fail_after(deadline):
        done = await anyio.run_process(command(*arguments), env=env, cwd=cwd, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def one_line(stderr: str) -> str:
    """The single line a mistake must be reported in (no traceback, nothing else)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_jobs(directory: Path) -> Path:
    (directory / "myjobs.py").write_text(JOBS)
    return directory
