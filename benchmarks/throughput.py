"""Throughput: no-op activities through one worker process, against a raw aiobotocore loop.

Every row handles the same number of no-op activity tasks, scheduled beforehand (so the
decider costs nothing during the measurement), with the same concurrency, against the same
dev server process:

- heartbeat-worker: a ``Worker`` with ``max_concurrency`` = ``pollers`` = the concurrency,
  logging at INFO (one line per task) to /dev/null in the format ``heartbeat-worker run``
  picks there (JSON: /dev/null is not a terminal);
- raw loop: the concurrency's number of coroutines, each ``PollForActivityTask`` then
  ``RespondActivityTaskCompleted``, with one aiobotocore client and nothing else (the
  goals compare against this row);
- raw loop with the worker's User-Agent: the same, with the header the worker's clients
  send instead of botocore's default, which is cheaper to build; the worker against this
  row is the framework's own cost, like for like;
- simpleflow: ``simpleflow worker.start -N <concurrency>`` from a throwaway virtualenv
  (forks a process per task, by design), pointed at the dev server by
  ``AWS_ENDPOINT_URL_SWF``.

Tasks per second come from the history: the tasks handled divided by the time from the
first ActivityTaskStarted to the last ActivityTaskCompleted. CPU per task is the worker
process's CPU time from before it creates its clients to its last answer, divided by the
tasks (for simpleflow: the CPU of its whole process tree, less that of an idle run).

    python benchmarks/throughput.py [--tasks 2000] [--concurrency 10] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import anyio

from _common import (
    CHILD_ENV,
    Decider,
    Json,
    Server,
    child,
    decider,
    dev_server,
    machine,
    run_script,
    table,
)

NOOP: Json = {"name": "noop", "heartbeat": 60}
SIMPLEFLOW_NOOP: Json = {"name": "hwbench_simpleflow.noop", "heartbeat": 60}
SIMPLEFLOW_MODULE = "def noop(*args, **kwargs):\n    return None\n"
DEFAULT_VENV = Path(tempfile.gettempdir()) / "heartbeat-worker-bench-simpleflow"
ROWS = {  # the name of a row: the child's mode and extra arguments
    "heartbeat-worker Worker": ["worker"],
    "Worker, metrics on": ["worker", "--metrics"],
    "Worker, metrics and tracing on": ["worker", "--metrics", "--tracing"],
    "raw aiobotocore loop": ["raw-throughput"],
    "raw loop, worker's User-Agent": ["raw-throughput", "--worker-user-agent"],
}
RAW = "raw aiobotocore loop"


async def span(decider: Decider, executions: list[Json]) -> tuple[float, int]:
    """Seconds from the first ActivityTaskStarted to the last ActivityTaskCompleted."""
    first, last, completed = float("inf"), 0.0, 0
    for execution in executions:
        for event in await decider.history(execution):
            stamp = event["eventTimestamp"].timestamp()
            if event["eventType"] == "ActivityTaskStarted":
                first = min(first, stamp)
            elif event["eventType"] == "ActivityTaskCompleted":
                last = max(last, stamp)
                completed += 1
    return last - first, completed


async def measure_child(
    server: Server, decider: Decider, row: str, tasks: int, concurrency: int
) -> Json:
    mode, *extra = ROWS[row]
    task_list = f"tp-{mode}-{uuid.uuid4().hex[:8]}"
    executions = await decider.schedule(
        tasks, activity_type=NOOP, task_list=task_list, heartbeat_timeout=60
    )
    arguments = ["--concurrency", str(concurrency), "--exit-after", str(tasks), *extra]
    async with child(server, mode, task_list, *arguments) as measured:
        with anyio.fail_after(600):
            final = await measured.finish()
    seconds, completed = await span(decider, executions)
    return {
        "tasks_per_second": completed / seconds,
        "cpu_ms_per_task": final["cpu"] * 1000 / tasks,
        "completed": completed,
    }


# -- simpleflow --------------------------------------------------------------------------


def simpleflow_executable(venv: Path, install: bool) -> tuple[Path | None, str]:
    executable = venv / "bin" / "simpleflow"
    if executable.exists():
        return executable, ""
    if not install:
        return None, f"no simpleflow in {venv} (a run without --quick installs it there)"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "simpleflow"],
            check=True,
            timeout=600,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as error:
        return None, f"pip install simpleflow failed: {error}"
    if not executable.exists():
        return None, "pip install simpleflow installed no simpleflow command"
    return executable, ""


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and all its descendants, live or reaped by a live parent."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        # utime, stime, cutime, cstime: fields 14 to 17 of proc(5)
        times[pid] = sum(int(value) for value in fields[11:15])
    members = {root}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in members and pid not in members:
                members.add(pid)
                changed = True
    return sum(times.get(pid, 0) for pid in members) / ticks


async def run_simpleflow(
    server: Server, executable: Path, task_list: str, concurrency: int, until: int | None
) -> float:
    """Run simpleflow's worker until ``until`` tasks were completed (None: 3 idle seconds);
    returns the CPU seconds of its process tree."""
    workdir = Path(tempfile.mkdtemp(prefix="hwbench-simpleflow-"))
    (workdir / "hwbench_simpleflow.py").write_text(SIMPLEFLOW_MODULE)
    env = {
        **os.environ,
        **CHILD_ENV,
        "AWS_ENDPOINT_URL_SWF": server.url,
        "PYTHONPATH": str(workdir),
    }
    command = [str(executable), "worker.start", "-d", "bench", "-t", task_list]
    command += ["-N", str(concurrency), "--heartbeat", "60", "-l", "WARNING"]
    before = (await server.stats())["calls"].get("RespondActivityTaskCompleted", 0)
    log = workdir / "simpleflow.log"  # a file: an unread pipe would fill up and block it
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: ASYNC220 (its CPU is measured, not the loop's)
            command, env=env, cwd=workdir, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        if until is None:
            await anyio.sleep(3)
        else:
            with anyio.fail_after(900):
                while True:
                    if process.poll() is not None:
                        raise RuntimeError(log.read_text()[-500:])
                    stats = await server.stats()
                    if stats["calls"].get("RespondActivityTaskCompleted", 0) - before >= until:
                        break
                    await anyio.sleep(0.2)
        return tree_cpu(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await anyio.to_thread.run_sync(lambda: process.wait(15))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def measure_simpleflow(
    server: Server, decider: Decider, executable: Path, tasks: int, concurrency: int
) -> Json:
    idle = await run_simpleflow(
        server, executable, f"tp-sf-idle-{uuid.uuid4().hex[:8]}", concurrency, None
    )
    task_list = f"tp-simpleflow-{uuid.uuid4().hex[:8]}"
    executions = await decider.schedule(
        tasks,
        activity_type=SIMPLEFLOW_NOOP,
        task_list=task_list,
        heartbeat_timeout=60,
        input='{"args": [], "kwargs": {}}',
    )
    cpu = await run_simpleflow(server, executable, task_list, concurrency, tasks)
    seconds, completed = await span(decider, executions)
    return {
        "tasks_per_second": completed / seconds,
        "cpu_ms_per_task": (cpu - idle) * 1000 / tasks,
        "completed": completed,
    }


# -- the report --------------------------------------------------------------------------


def best(rounds: list[Json]) -> Json:
    """The best round: the highest rate, and the lowest CPU per task (the least disturbed)."""
    return {
        "tasks_per_second": max(r["tasks_per_second"] for r in rounds),
        "cpu_ms_per_task": min(r["cpu_ms_per_task"] for r in rounds),
        "completed": min(r["completed"] for r in rounds),
    }


async def main(args: argparse.Namespace) -> int:
    print(f"throughput: {args.tasks} no-op activities, concurrency {args.concurrency}")
    print(f"machine: {machine()}")
    results: dict[str, list[Json]] = {row: [] for row in ROWS}
    simpleflow: Json | str
    async with dev_server() as server, decider(server, [NOOP, SIMPLEFLOW_NOOP]) as swf:
        for _ in range(args.rounds):
            for row in ROWS:
                found = await measure_child(server, swf, row, args.tasks, args.concurrency)
                results[row].append(found)
        if args.no_simpleflow:
            executable, why = None, "skipped (--no-simpleflow)"
        else:
            executable, why = simpleflow_executable(args.simpleflow_venv, not args.quick)
        if executable is None:
            simpleflow = why
        else:
            try:
                simpleflow = await measure_simpleflow(
                    server, swf, executable, args.tasks, args.concurrency
                )
            except Exception as error:
                simpleflow = f"{type(error).__name__}: {str(error)[-300:]}"
    bests = {row: best(found) for row, found in results.items()}
    ours, raw = bests["heartbeat-worker Worker"], bests[RAW]
    rows: list[list[Any]] = []
    for name, found in bests.items():
        rows.append(
            [
                name,
                f"{found['tasks_per_second']:.0f}",
                f"{found['cpu_ms_per_task']:.2f}",
                f"{found['tasks_per_second'] / raw['tasks_per_second']:.2f}x",
                f"{found['cpu_ms_per_task'] / raw['cpu_ms_per_task']:.2f}x",
            ]
        )
    if isinstance(simpleflow, dict):
        rows.append(
            [
                "simpleflow worker (peer)",
                f"{simpleflow['tasks_per_second']:.0f}",
                f"{simpleflow['cpu_ms_per_task']:.2f}",
                f"{simpleflow['tasks_per_second'] / raw['tasks_per_second']:.2f}x",
                f"{simpleflow['cpu_ms_per_task'] / raw['cpu_ms_per_task']:.2f}x",
            ]
        )
    print(f"best of {args.rounds} round(s), each round running every row in turn:")
    print(table(["", "tasks/s", "CPU ms/task", "rate vs raw", "CPU vs raw"], rows))
    if not isinstance(simpleflow, dict):
        reason = " ".join(simpleflow.split())[-300:]
        print(f"simpleflow worker (peer): not available: {reason}")
    rate_ok = ours["tasks_per_second"] >= 0.9 * raw["tasks_per_second"]
    cpu_ok = ours["cpu_ms_per_task"] <= 1.2 * raw["cpu_ms_per_task"]
    print(
        f"goals: rate >= 0.9x raw: {'met' if rate_ok else 'MISSED'}; "
        f"CPU/task <= 1.2x raw: {'met' if cpu_ok else 'MISSED'}"
    )
    for row in ("Worker, metrics on", "Worker, metrics and tracing on"):
        ratio = bests[row]["cpu_ms_per_task"] / ours["cpu_ms_per_task"]
        verdict = "met" if ratio <= 1.05 else "MISSED"
        goal = "" if "tracing" in row else f" (goal <= 1.05x: {verdict})"
        print(f"{row}: CPU/task {ratio:.3f}x the Worker without them{goal}")
    all_done = all(r["completed"] == args.tasks for rs in results.values() for r in rs)
    return 0 if all_done else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--simpleflow-venv",
        type=Path,
        default=Path(os.environ.get("HWBENCH_SIMPLEFLOW_VENV", DEFAULT_VENV)),
        help="virtualenv holding simpleflow (created with pip when missing, unless --quick)",
    )
    parser.add_argument("--no-simpleflow", action="store_true", help="leave simpleflow out")
    parser.add_argument("--quick", action="store_true", help="a smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.rounds = min(args.tasks, 100), 1
    return args


if __name__ == "__main__":
    run_script(main, parse())
