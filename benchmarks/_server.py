"""The dev server as a benchmark sees it: a process of its own, with counters on the side.

``python benchmarks/_server.py`` runs :class:`heartbeat_worker.devserver.DevServer` and a
second, tiny HTTP endpoint (``GET /stats``) that reports what the server saw: calls per
operation, RecordActivityTaskHeartbeat arrivals per wall-clock second, the moment the first
PollForActivityTask of each task list arrived, and the server process's own CPU time. The
counters wrap the engine's operation handlers, so they count requests as the server
handles them, after the network, which is where SWF's throttling counts them too.

It prints one line, ``<endpoint URL> <stats URL>``, once both listen.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from heartbeat_worker.devserver import DevServer

Json = dict[str, Any]


class Counters:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.heartbeats_per_second: Counter[int] = Counter()
        self.first_poll: dict[str, float] = {}

    def snapshot(self) -> Json:
        return {
            "calls": dict(self.calls),
            "heartbeats_per_second": {str(k): v for k, v in self.heartbeats_per_second.items()},
            "first_poll": self.first_poll,
            "cpu": time.process_time(),
        }


def instrument(server: DevServer, counters: Counters) -> None:
    """Wrap the engine's handlers with counters (the engine is the server's own business,
    so this fails loudly if its shape changes)."""
    engine = getattr(server, "_engine", None)
    if engine is None or not hasattr(engine, "sync_handlers"):
        raise RuntimeError("the dev server's engine changed shape; update benchmarks/_server.py")
    sync_handlers: dict[str, Callable[[Json], Json]] = engine.sync_handlers
    async_handlers: dict[str, Callable[[Json], Awaitable[Json]]] = engine.async_handlers

    def count_sync(name: str, handler: Callable[[Json], Json]) -> Callable[[Json], Json]:
        calls = counters.calls
        per_second = counters.heartbeats_per_second
        is_heartbeat = name == "RecordActivityTaskHeartbeat"

        @functools.wraps(handler)
        def counted(body: Json) -> Json:
            calls[name] += 1
            if is_heartbeat:
                per_second[int(time.time())] += 1
            return handler(body)

        return counted

    def count_async(
        name: str, handler: Callable[[Json], Awaitable[Json]]
    ) -> Callable[[Json], Awaitable[Json]]:
        calls = counters.calls
        first_poll = counters.first_poll
        is_activity_poll = name == "PollForActivityTask"

        @functools.wraps(handler)
        async def counted(body: Json) -> Json:
            calls[name] += 1
            if is_activity_poll:
                first_poll.setdefault(body["taskList"]["name"], time.time())
            return await handler(body)

        return counted

    for name, handler in list(sync_handlers.items()):
        sync_handlers[name] = count_sync(name, handler)
    for name, async_handler in list(async_handlers.items()):
        async_handlers[name] = count_async(name, async_handler)


async def serve(poll_timeout: float) -> None:
    counters = Counters()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(counters.snapshot())

    app = web.Application()
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stats_port = runner.addresses[0][1]
    try:
        async with DevServer(poll_timeout=poll_timeout) as server:
            instrument(server, counters)
            print(f"{server.endpoint_url} http://127.0.0.1:{stats_port}/stats", flush=True)
            await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poll-timeout", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(serve(args.poll_timeout))


if __name__ == "__main__":
    main()
