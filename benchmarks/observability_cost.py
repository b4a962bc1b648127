"""The CPU the interceptor chain adds per task: none, metrics, metrics and tracing.

The throughput benchmark shows the same in a real worker, but its rows move by more than
the few percent at stake on a shared machine. Here one task's hooks (the poll, the task,
the activity call, the answer and its SWF call) go through the chain a worker builds,
against a client that answers at once, so that only the chain's own work is measured.

    python benchmarks/observability_cost.py [--tasks 20000] [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from typing import Any

import anyio

from _common import table
from heartbeat_worker import Interceptor
from heartbeat_worker._interceptor import (
    AnswerInput,
    ExecuteActivityInput,
    HandleTaskInput,
    TaskDescription,
    build_chain,
    intercept_client,
)


class InstantClient:
    async def poll_for_activity_task(self, **arguments: Any) -> Mapping[str, Any]:
        return {"taskToken": "token"}

    async def respond_activity_task_completed(self, **arguments: Any) -> Mapping[str, Any]:
        return {}


async def one_task_without_chain(client: InstantClient) -> None:
    await client.poll_for_activity_task(domain="d")
    await client.respond_activity_task_completed(taskToken="token")


async def one_task(chain: Interceptor, client: InstantClient) -> None:
    """What a worker with interceptors does around the same two calls."""

    async def run() -> str:
        return "completed"

    async def call() -> None:
        return None

    async def send() -> None:
        await task_client.respond_activity_task_completed(taskToken="token")

    await intercept_client(client, chain).poll_for_activity_task(domain="d")
    task = TaskDescription("d", "t", "noop", "1", "a1", "wf", "run", "hash")
    task_client = intercept_client(client, chain, task, lambda: None)
    await chain.handle_task(HandleTaskInput(task, False, _run=run))
    info: Any = None
    await chain.execute_activity(ExecuteActivityInput(task, info, call, (), {}, False, _call=call))
    await chain.answer(AnswerInput(task, "completed", None, 0.001, 0, _send=send))


def chains() -> dict[str, list[Interceptor]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from heartbeat_worker.metrics import Metrics
    from heartbeat_worker.tracing import TracingInterceptor

    class Dropping(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    return {
        "metrics": [Metrics().interceptor()],
        "metrics and tracing": [
            TracingInterceptor(tracer_provider=provider),
            Metrics().interceptor(),
        ],
    }


async def main(args: argparse.Namespace) -> int:
    client = InstantClient()
    rows: list[list[str]] = []
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        started = time.process_time()
        for _ in range(args.tasks):
            await one_task_without_chain(client)
        cost = (time.process_time() - started) / args.tasks
        best["no interceptors"] = min(best.get("no interceptors", cost), cost)
        for name, links in chains().items():
            chain = build_chain(links)
            assert chain is not None
            started = time.process_time()
            for _ in range(args.tasks):
                await one_task(chain, client)
            cost = (time.process_time() - started) / args.tasks
            best[name] = min(best.get(name, cost), cost)
    base = best["no interceptors"]
    for name, cost in best.items():
        rows.append([name, f"{cost * 1e6:.1f}", f"{(cost - base) * 1e6:.1f}"])
    print(f"observability cost: {args.tasks} tasks' hooks, best of {args.rounds} rounds")
    print(table(["", "CPU us/task", "added us/task"], rows))
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.rounds = 200, 1
    return args


if __name__ == "__main__":
    raise SystemExit(anyio.run(main, parse()))
