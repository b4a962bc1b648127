"""``heartbeat-worker execute`` as a separate process, against a dev server and a worker that
run in the test: exit statuses and what it prints."""

from __future__ import annotations

import json
import os
import sys

import anyio
import pytest

from decider.conftest import DOMAIN, TASK_LIST
from heartbeat_worker import Worker
from heartbeat_worker.devserver import DevServer
from reliability.secrecy import find_secrets

pytestmark = pytest.mark.anyio

DEADLINE = 30.0


async def execute(server: DevServer, *arguments: str) -> tuple[int, str, str]:
    """Run the command to its end (within the deadline): (exit status, stdout, stderr)."""
    command = [
        sys.executable,
        "-m",
        "heartbeat_worker._cli",
        "execute",
        "--endpoint-url",
        server.endpoint_url,
        *arguments,
    ]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.pop("AWS_PROFILE", None)
    with anyio.fail_after(DEADLINE):
        done = await anyio.run_process(command, env=env, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def target(name: str, *more: str) -> list[str]:
    return [name, "--domain", DOMAIN, "--task-list", TASK_LIST, *more]


async def test_completed_exits_zero_and_prints_the_result(
    dev_server: DevServer, worker: Worker
) -> None:
    code, out, err = await execute(dev_server, *target("double", "--input", "21"))

    assert code == 0, err
    assert out.startswith("outcome: completed after 1 attempt")
    assert "result: 42\n" in out


async def test_failed_exits_one_with_the_reason(dev_server: DevServer, worker: Worker) -> None:
    code, out, _ = await execute(dev_server, *target("broken", "--input", '"disk full"'))

    assert code == 1, out
    assert out.startswith("outcome: failed after 1 attempt")
    assert "reason: RuntimeError: disk full\n" in out
    assert "Traceback" in out


async def test_cancel_after_exits_three_with_the_cancel_details(
    dev_server: DevServer, worker: Worker
) -> None:
    arguments = target("patient", "--heartbeat-timeout", "1.5", "--cancel-after", "1")
    code, out, _ = await execute(dev_server, *arguments)

    assert code == 3, out
    assert out.startswith("outcome: canceled after 1 attempt")
    assert 'cancel details: {"phase":"rolled back"}\n' in out
    assert "cancel latency: " in out


# Stalls (stops heartbeating) after two of four steps; start-to-close then times it out,
# and a retry resumes from the checkpoint of step 2.
STALLS_AFTER_TWO_STEPS = (
    "stalling",
    "--input",
    '{"steps": 4, "stall_at": 2}',
    "--heartbeat-timeout",
    "1.5",
    "--start-to-close-timeout",
    "2.5",
)


async def test_timeout_exits_four_with_the_last_details(
    dev_server: DevServer, worker: Worker
) -> None:
    code, out, _ = await execute(dev_server, *target(*STALLS_AFTER_TWO_STEPS))

    assert code == 4, out
    assert out.startswith("outcome: timed out (START_TO_CLOSE) after 1 attempt")
    assert 'last details: {"done":2}\n' in out


async def test_retry_resumes_from_the_checkpoint_as_json(
    dev_server: DevServer, worker: Worker
) -> None:
    arguments = target(*STALLS_AFTER_TWO_STEPS, "--retries", "2", "--json")
    code, out, _ = await execute(dev_server, *arguments)

    assert code == 0, out
    outcome = json.loads(out)
    assert outcome["status"] == "completed"
    assert outcome["attempts"] == 2
    assert json.loads(outcome["result"]) == {"resumed_from": {"done": 2}, "done": 4}


async def test_retries_report_the_last_details_any_attempt_recorded(
    dev_server: DevServer, worker: Worker
) -> None:
    # Attempt 1 reports progress; attempts 2 and 3 time out before reporting any.
    arguments = target(
        "forgetful", "--heartbeat-timeout", "5", "--start-to-close-timeout", "1", "--retries", "2"
    )
    code, out, _ = await execute(dev_server, *arguments)

    assert code == 4, out
    assert out.startswith("outcome: timed out (START_TO_CLOSE) after 3 attempts")
    assert 'last details: {"done":1}\n' in out


async def test_no_wait_schedules_and_exits(dev_server: DevServer, worker: Worker) -> None:
    code, out, _ = await execute(dev_server, *target("double", "--input", "1", "--no-wait"))

    assert code == 0
    assert out.startswith("scheduled: execution workflowId=double-")
    with anyio.fail_after(DEADLINE):
        await worker.wait_handled(1)  # the activity ran although nobody waited for it


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--input", "{not json"], "--input is not valid JSON"),
        (["--no-wait", "--retries", "1"], "drop --no-wait"),
        (["--heartbeat-timeout", "-1"], "must be positive"),
    ],
)
async def test_bad_arguments_exit_two(
    dev_server: DevServer, arguments: list[str], message: str
) -> None:
    code, _, err = await execute(dev_server, *target("double", *arguments))

    assert code == 2
    assert message in err


async def test_unknown_domain_exits_six(dev_server: DevServer) -> None:
    code, out, err = await execute(
        dev_server, "double", "--domain", "nowhere", "--task-list", TASK_LIST
    )

    assert code == 6
    assert out == ""
    assert "UnknownResourceFault" in err


async def test_no_task_token_is_printed_even_when_debugging(
    dev_server: DevServer, worker: Worker, task_tokens: set[str]
) -> None:
    code, out, err = await execute(
        dev_server, *target("double", "--input", "2", "--log-level", "debug")
    )

    assert code == 0
    assert len(task_tokens) == 1  # the activity task's, which the command never sees
    # No token (the decision tasks' the command polled, the activity task's), whole or in
    # part, and nothing shaped like one.
    assert find_secrets((out + err).splitlines(), task_tokens) == []
    assert "taskToken" not in out + err
    assert "token=" not in out  # the worker logs a digest; the command prints none at all
