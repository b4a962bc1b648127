"""``heartbeat-worker execute`` shows life while it waits: a live line, and a warning when
nothing takes the task."""

from __future__ import annotations

import re
import signal

import anyio
import pytest

from decider.conftest import DOMAIN
from heartbeat_worker import Worker
from heartbeat_worker.devserver import DevServer

from .test_execute import DEADLINE, execute, target
from .test_execute_statuses import execute_in_background, output

pytestmark = pytest.mark.anyio


async def test_the_live_line_names_the_worker_and_draws_the_progress(
    dev_server: DevServer, worker: Worker
) -> None:
    arguments = target(
        "counting", "--input", '{"total": 4, "step": 0.6}', "--heartbeat-timeout", "1",
        "--progress",
    )  # fmt: skip
    code, out, err = await execute(dev_server, *arguments)

    assert code == 0, out + err
    assert "result: 4" in out
    assert f"attempt 1 · started by {worker.identity} · " in err
    # The dev server's latest details, drawn as a bar: "[#####...............] 1/4".
    assert re.search(r"\[#+\.+\] [123]/4", err), err
    assert "Traceback" not in err


async def test_no_live_line_off_a_terminal(dev_server: DevServer, worker: Worker) -> None:
    code, out, err = await execute(dev_server, *target("double", "--input", "2"))

    assert code == 0, out + err
    assert "started by" not in err


async def test_a_task_nobody_polls_gets_a_warning_with_the_command_to_start_a_worker(
    dev_server: DevServer, worker: Worker
) -> None:
    # The worker serves another task list: nobody polls "nobody-polls-this".
    arguments = ["double", "--domain", DOMAIN, "--task-list", "nobody-polls-this"]
    async with execute_in_background(dev_server, *arguments, "--input", "1") as process:
        assert process.stderr is not None
        seen = b""
        with anyio.fail_after(DEADLINE):
            while b"nothing has started the task" not in seen or not seen.endswith(b"\n"):
                seen += await process.stderr.receive()
        process.send_signal(signal.SIGINT)
        code, out, err = await output(process)

    warning = next(line for line in seen.decode().splitlines() if "nothing has started" in line)
    assert "no worker is polling task list 'nobody-polls-this'" in warning
    assert (
        f"start one: heartbeat-worker run MODULE --domain {DOMAIN} --task-list "
        f"nobody-polls-this --endpoint-url {dev_server.endpoint_url}"
    ) in warning
    # The first Ctrl-C cancels the scheduled task, which SWF does at once.
    assert code == 3, out + err
    assert out.startswith("outcome: canceled")
