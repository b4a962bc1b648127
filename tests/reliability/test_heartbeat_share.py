"""``heartbeat-worker run --heartbeat-share``: a worker's share of the account's 160
heartbeats per second, through a real process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from heartbeat_worker.devserver import DevServer

from .processes import worker_process
from .secrecy import LogCapture

pytestmark = pytest.mark.anyio


async def test_a_quarter_share_is_a_budget_of_40_calls_per_second(
    server: DevServer, logs: LogCapture
) -> None:
    async with worker_process(
        server,
        "tests.reliability.activities",
        "share",
        "--register",
        "--heartbeat-share",
        "1/4",
        logs=logs,
    ) as worker:
        await worker.wait_for_log('"max_heartbeats_per_second": 40.0')


def test_a_share_that_is_not_a_fraction_of_the_rate_stops_the_command() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "heartbeat_worker._cli",
            "run",
            "tests.reliability.activities",
            "--domain",
            "d",
            "--task-list",
            "t",
            "--heartbeat-share",
            "5/4",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "the share must be more than 0 and at most 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_share_and_a_rate_together_are_refused() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "heartbeat_worker._cli",
            "run",
            "tests.reliability.activities",
            "--heartbeat-share",
            "1/2",
            "--max-heartbeats-per-second",
            "80",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "not allowed with argument" in done.stderr
