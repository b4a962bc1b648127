"""Start-up: ``heartbeat-worker run`` to its first poll, and the import time of the package.

Time to first poll: from starting ``heartbeat-worker run`` as a subprocess to the moment
the dev server receives its first PollForActivityTask for the worker's task list (the
server records when each task list's first poll arrives). The baseline is a minimal
script that imports aiobotocore, creates a client and polls. Both run several times; the
medians are reported.

Import time: a fresh interpreter per run measures ``import <module>`` around the statement
alone (interpreter start-up excluded); medians of several runs. The package's bytecode is
compiled first, as ``pip install`` does: from a source checkout with
``PYTHONDONTWRITEBYTECODE`` set, every start would otherwise compile every module (about
13 ms here), while the dependencies in site-packages were compiled at install.
``import aiobotocore`` only reads a version string, so ``import aiobotocore.session`` (what
a raw worker needs to create a client) is shown as well.

    python benchmarks/startup.py [--runs 7] [--quick]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio

from _activities import HEARTBEAT_TIMEOUTS
from _common import CHILD_ENV, HERE, Server, decider, dev_server, machine, run_script, table

RAW_POLLER = """
import asyncio, sys
from aiobotocore.session import get_session
async def main():
    async with get_session().create_client("swf", endpoint_url=sys.argv[1]) as client:
        await client.poll_for_activity_task(domain="bench", taskList={"name": sys.argv[2]})
asyncio.run(main())
"""

IMPORT_TIMER = (
    "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
)


def import_time(module: str) -> float:
    output = subprocess.run(
        [sys.executable, "-c", IMPORT_TIMER.format(module=module)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(output)


async def first_poll(server: Server, command: list[str], task_list: str) -> float:
    env = {**os.environ, **CHILD_ENV, "PYTHONPATH": str(HERE)}
    started = time.time()
    process = await anyio.open_process(
        command, env=env, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with anyio.fail_after(60):
            while True:
                polled = (await server.stats())["first_poll"].get(task_list)
                if polled is not None:
                    return polled - started
                await anyio.sleep(0.01)
    finally:
        process.terminate()
        await process.wait()


def compile_package() -> None:
    """Write the package's bytecode, as installing it with pip would have."""
    spec = importlib.util.find_spec("heartbeat_worker")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    for location in spec.submodule_search_locations:
        compileall.compile_dir(location, quiet=1)


async def main(args: argparse.Namespace) -> int:
    print(f"start-up: medians of {args.runs} runs")
    print(f"machine: {machine()}")
    compile_package()
    cli = str(Path(sys.executable).parent / "heartbeat-worker")
    firsts: dict[str, list[float]] = {"heartbeat-worker run": [], "raw aiobotocore poller": []}
    # The worker checks at start that the types it serves are registered.
    served = [{"name": name, "heartbeat": timeout} for name, timeout in HEARTBEAT_TIMEOUTS.items()]
    async with dev_server() as server, decider(server, served):
        for _ in range(args.runs):
            task_list = f"startup-{uuid.uuid4().hex[:8]}"
            worker = [cli, "run", "_activities", "--domain", "bench", "--task-list", task_list]
            worker += ["--endpoint-url", server.url, "--log-level", "warning"]
            firsts["heartbeat-worker run"].append(await first_poll(server, worker, task_list))
            task_list = f"startup-{uuid.uuid4().hex[:8]}"
            raw = [sys.executable, "-c", RAW_POLLER, server.url, task_list]
            firsts["raw aiobotocore poller"].append(await first_poll(server, raw, task_list))
    rows = [
        [name, f"{statistics.median(times) * 1000:.0f} ms", f"{min(times) * 1000:.0f} ms"]
        for name, times in firsts.items()
    ]
    print(table(["time to first poll", "median", "best"], rows))

    modules = ["heartbeat_worker", "aiobotocore", "aiobotocore.session", "heartbeat_worker.testing"]
    imports = {module: [] for module in modules}  # type: dict[str, list[float]]
    for _ in range(args.runs):
        for module in modules:
            imports[module].append(import_time(module))
    medians = {module: statistics.median(times) for module, times in imports.items()}
    reference = medians["aiobotocore.session"]
    rows = [
        [
            f"import {module}",
            f"{medians[module] * 1000:.1f} ms",
            f"{medians[module] / medians['aiobotocore']:.0f}x",
            f"{medians[module] / reference:.2f}x",
        ]
        for module in modules
    ]
    print(table(["import (fresh interpreter)", "median", "vs aiobotocore", "vs .session"], rows))
    ratio = medians["heartbeat_worker"] / reference
    print(
        f"goal: import heartbeat_worker <= 1.2x the import a raw worker needs "
        f"(aiobotocore.session): {ratio:.2f}x, {'met' if ratio <= 1.2 else 'MISSED'}"
    )
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.runs = min(args.runs, 2)
    return args


if __name__ == "__main__":
    run_script(main, parse())
