"""RecordActivityTaskHeartbeat calls per second: the dev server, in memory and with a state
file (``--state-file``), against moto_server.

The servers run as subprocesses on loopback and get the same load: the same raw client
(aiohttp posting SWF's JSON with the ``X-Amz-Target`` header, which costs far less CPU than a
botocore call, so that the client is not what is measured), the same number of client
processes and connections, each connection heartbeating its own started activity task.

    python benchmarks/devserver_heartbeats.py [--seconds 5] [--connections 32] [--clients 1]
                                              [--no-moto]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

DOMAIN = "bench"
TASK_LIST = "bench-activities"
HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    # moto_server picks the service from the credential scope; the dev server ignores it.
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/swf/aws4_request, "
        "SignedHeaders=host, Signature=0"
    ),
}
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def dev_server(state_file: Path | None = None) -> Iterator[str]:
    command = [
        sys.executable,
        "-m",
        "heartbeat_worker._cli",
        "dev-server",
        "--port",
        "0",
        "--poll-timeout",
        "5",
    ]
    if state_file is not None:
        command += ["--state-file", str(state_file)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://[\w.\[\]:]+", line)
        if found is None:
            raise RuntimeError(f"the dev server did not print its URL: {line!r}")
        yield found.group(0)
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def moto_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


async def _call(session: aiohttp.ClientSession, url: str, operation: str, body: Any) -> Any:
    headers = {**HEADERS, "X-Amz-Target": f"SimpleWorkflowService.{operation}"}
    async with session.post(url, data=json.dumps(body), headers=headers) as reply:
        text = await reply.text()
        if reply.status != 200:
            raise RuntimeError(f"{operation}: HTTP {reply.status}: {text[:300]}")
        return json.loads(text) if text else {}


async def start_tasks(url: str, count: int) -> list[str]:
    """Register, start one execution, schedule ``count`` activities and poll them all."""
    async with aiohttp.ClientSession() as session:
        await _call(
            session,
            url,
            "RegisterDomain",
            {"name": DOMAIN, "workflowExecutionRetentionPeriodInDays": "1"},
        )
        await _call(
            session,
            url,
            "RegisterWorkflowType",
            {
                "domain": DOMAIN,
                "name": "wf",
                "version": "1",
                "defaultTaskList": {"name": "bench-decisions"},
                "defaultExecutionStartToCloseTimeout": "3600",
                "defaultTaskStartToCloseTimeout": "600",
                "defaultChildPolicy": "TERMINATE",
            },
        )
        await _call(
            session,
            url,
            "RegisterActivityType",
            {
                "domain": DOMAIN,
                "name": "act",
                "version": "1",
                "defaultTaskList": {"name": TASK_LIST},
                "defaultTaskHeartbeatTimeout": "600",
                "defaultTaskScheduleToStartTimeout": "600",
                "defaultTaskScheduleToCloseTimeout": "3600",
                "defaultTaskStartToCloseTimeout": "3600",
            },
        )
        await _call(
            session,
            url,
            "StartWorkflowExecution",
            {
                "domain": DOMAIN,
                "workflowId": "bench",
                "workflowType": {"name": "wf", "version": "1"},
            },
        )
        decision = await _call(
            session,
            url,
            "PollForDecisionTask",
            {"domain": DOMAIN, "taskList": {"name": "bench-decisions"}},
        )
        decisions = [
            {
                "decisionType": "ScheduleActivityTask",
                "scheduleActivityTaskDecisionAttributes": {
                    "activityType": {"name": "act", "version": "1"},
                    "activityId": f"a{index}",
                },
            }
            for index in range(count)
        ]
        await _call(
            session,
            url,
            "RespondDecisionTaskCompleted",
            {"taskToken": decision["taskToken"], "decisions": decisions},
        )
        tokens = []
        for _ in range(count):
            task = await _call(
                session,
                url,
                "PollForActivityTask",
                {"domain": DOMAIN, "taskList": {"name": TASK_LIST}, "identity": "bench"},
            )
            tokens.append(task["taskToken"])
        return tokens


async def heartbeat_for(url: str, tokens: list[str], seconds: float) -> int:
    """Heartbeat each task in a loop, one connection per task; the calls that succeeded."""
    headers = {**HEADERS, "X-Amz-Target": "SimpleWorkflowService.RecordActivityTaskHeartbeat"}
    connector = aiohttp.TCPConnector(limit=len(tokens))
    calls = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_at = time.monotonic() + seconds

        async def beat(token: str) -> None:
            nonlocal calls
            body = json.dumps({"taskToken": token, "details": "progress 42%"}).encode()
            while time.monotonic() < stop_at:
                async with session.post(url, data=body, headers=headers) as reply:
                    await reply.read()
                    if reply.status != 200:
                        raise RuntimeError(f"heartbeat: HTTP {reply.status}")
                calls += 1

        await asyncio.gather(*(beat(token) for token in tokens))
    return calls


def measure(url: str, seconds: float, connections: int, clients: int) -> float:
    tokens = asyncio.run(start_tasks(url, connections))
    shares = [tokens[index::clients] for index in range(clients)]
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--client", url, "--seconds", str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in shares
    ]
    started = time.monotonic()
    for process, share in zip(processes, shares, strict=True):
        assert process.stdin is not None
        process.stdin.write(json.dumps(share))
        process.stdin.close()
    total = 0
    for process in processes:
        assert process.stdout is not None
        total += int(process.stdout.read())
        process.wait()
    elapsed = max(time.monotonic() - started, seconds)
    return total / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--no-moto", action="store_true", help="measure the dev server only")
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        tokens = json.loads(sys.stdin.read())
        print(asyncio.run(heartbeat_for(args.client, tokens, args.seconds)))
        return 0
    print(
        f"RecordActivityTaskHeartbeat, {args.connections} connections over "
        f"{args.clients} client process(es), {args.seconds:g} s each, {os.cpu_count()} CPUs"
    )
    with dev_server() as url:
        ours = measure(url, args.seconds, args.connections, args.clients)
    print(f"  heartbeat-worker dev server, in memory:     {ours:8.0f} calls/s")
    with (
        tempfile.TemporaryDirectory() as directory,
        dev_server(Path(directory) / "state.sqlite") as url,
    ):
        stored = measure(url, args.seconds, args.connections, args.clients)
    print(f"  heartbeat-worker dev server, --state-file:  {stored:8.0f} calls/s")
    if args.no_moto:
        return 0
    with moto_server() as url:
        theirs = measure(url, args.seconds, args.connections, args.clients)
    print(f"  moto_server:                                {theirs:8.0f} calls/s")
    print(f"  ratio (in memory / moto): {ours / theirs:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
