"""Secrets stay secret: task tokens and secret keys never reach a log line, and the dev
server's tokens cannot be guessed.

Every test of this directory has its logs checked by the ``logs`` fixture (conftest.py);
this module proves the check itself works, and runs the scenarios whose log lines are most
likely to leak: failures with tracebacks, lost replies, cancellation, lost tasks, shutdown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from heartbeat_worker import Worker
from heartbeat_worker._logging import token_hash
from heartbeat_worker.devserver import DevServer
from heartbeat_worker.devserver import _engine as engine_module

from . import activities
from .decide import Decider, report
from .secrecy import SECRET_KEY, LogCapture, find_secrets

pytestmark = pytest.mark.anyio


def test_the_check_finds_what_it_looks_for() -> None:
    token = "Zx" * 21 + "Q"  # 43 characters, like the dev server's
    clean = json.dumps({"event": "task received", "token": token_hash(token)})
    assert find_secrets([clean], {token}) == []
    leaks = [
        f"error: bad token {token}",
        f"cut: ...{token[:20]}",
        json.dumps({"event": "x", "token": "abc"}),
        f"credentials {SECRET_KEY}",
        "an unknown token " + "A1b2_-" * 7 + "z",
    ]
    problems = find_secrets(leaks, {token})
    assert [p.split(":")[0] for p in problems] == [
        "line 1",
        "line 1",
        "line 2",
        "line 3",
        "line 4",
        "line 5",
    ]
    assert all(token not in problem and SECRET_KEY not in problem for problem in problems)


async def test_worker_logs_carry_token_hashes_only(
    server: DevServer, decider: Decider, make_worker: Callable[..., Worker], logs: LogCapture
) -> None:
    answers = [
        "RespondActivityTaskCompleted",
        "RespondActivityTaskFailed",
        "RecordActivityTaskHeartbeat",
    ]
    # Lost replies and refusals: the paths that log errors about a task's calls.
    server.faults.add("drop-reply", operation=answers, probability=0.3)
    server.faults.add("throttle", operation=answers, probability=0.2)
    async with make_worker(
        [
            activities.quick,
            activities.oversize_progress,
            activities.long_sleeper,
            activities.steady,
        ],
        "secrecy",
        max_concurrency=40,
        graceful_shutdown_timeout=0.5,
        cancel_grace_period=0.5,
    ) as worker:
        quick = await decider.schedule("quick", list(range(20)), task_list="secrecy")
        failing = await decider.schedule("oversize_progress", [False] * 5, task_list="secrecy")
        lost = await decider.schedule("steady", [60] * 3, task_list="secrecy")
        stopped = await decider.schedule("long_sleeper", [60] * 3, task_list="secrecy", prefix="s")
        await decider.wait_closed(quick, 20)
        await decider.wait_closed(failing, 5)
        await decider.wait_started(lost, 3)
        await decider.wait_started(stopped, 3)
        await decider.terminate(lost)  # the heartbeater finds the tasks gone
        with anyio.fail_after(10):
            await worker.wait_handled(28)
    # Leaving the block shut the worker down: the last three were answered 'worker shutdown'.
    assert worker.outcomes == {"completed": 20, "failed": 8, "left to SWF": 3}
    records = logs.records()
    hashes = {r["token"] for r in records if "token" in r}
    assert hashes <= {token_hash(t) for t in logs.tokens}  # each names a real task
    assert len(hashes) == 31
    assert all(re.fullmatch(r"[0-9a-f]{12}", h) for h in hashes)
    assert find_secrets(logs.lines(), logs.tokens) == []
    report(
        "secrecy of worker logs",
        {
            "log lines checked": len(logs.lines()),
            "task tokens handed out": len(logs.tokens),
            "distinct token hashes logged": len(hashes),
            "lines with a token or secret key": 0,
            "outcomes": worker.outcomes,
        },
    )


async def test_dev_server_tokens_come_from_secrets(
    server: DevServer, decider: Decider, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[str] = []
    real = engine_module.secrets.token_urlsafe

    class Recording:
        @staticmethod
        def token_urlsafe(nbytes: int) -> str:
            value = real(nbytes)
            drawn.append(value)
            return value

    monkeypatch.setattr(engine_module, "secrets", Recording)
    await decider.schedule("quick", list(range(200)), task_list="tokens")
    tokens = []
    for _ in range(200):
        task = await client.poll_for_activity_task(domain="hw-test", taskList={"name": "tokens"})
        tokens.append(task["taskToken"])
    assert set(tokens) <= set(drawn)
    assert len(set(tokens)) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", token) for token in tokens)  # 256 bits


async def test_the_secret_key_a_worker_signs_with_stays_out_of_its_log(
    server: DevServer, decider: Decider, make_worker: Callable[..., Worker], logs: LogCapture
) -> None:
    async with make_worker([activities.quick], "secret-key") as worker:
        execution = await decider.schedule("quick", [1, 2], task_list="secret-key")
        await decider.wait_closed(execution, 2)
    # The worker really held the key, and the log looked at is its own (debug level).
    assert worker.session is not None
    credentials = await worker.session.get_credentials()
    assert credentials is not None
    assert credentials.secret_key == SECRET_KEY
    assert len(logs.events("task received")) == 2
    assert SECRET_KEY not in "\n".join(logs.lines())
