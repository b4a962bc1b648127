"""A lifespan with a shared HTTP client: one aiohttp session for every activity.

Opening a ``ClientSession`` per task would cost a connection set-up (and a TLS handshake)
per task, and a session opened at import time belongs to no event loop. The lifespan opens
it once on the worker's loop before the first poll and closes it after the last answer;
every activity reaches it through ``heartbeat_worker.resources()``.

Serve it (from the repository root) with metrics and probes on port 9100, and run it once::

    heartbeat-worker dev-server &
    heartbeat-worker run examples.shared_client --domain demo --task-list http \
        --endpoint-url http://127.0.0.1:8866 --register --metrics-port 9100 &
    heartbeat-worker execute fetch --domain demo --task-list http \
        --endpoint-url http://127.0.0.1:8866 --input '"http://127.0.0.1:8866/status.json"'
    curl -s http://127.0.0.1:9100/metrics | grep tasks_total
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

import heartbeat_worker
from heartbeat_worker import activity


@heartbeat_worker.lifespan
async def http_client() -> AsyncIterator[aiohttp.ClientSession]:
    """One session, and so one connection pool, for the whole worker."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield session


@activity(heartbeat_timeout=30, start_to_close_timeout=300)
async def fetch(url: str) -> dict[str, int]:
    """GET ``url`` through the shared session: its status and its size."""
    session = heartbeat_worker.resources(aiohttp.ClientSession)
    async with session.get(url) as response:
        body = await response.read()
        return {"status": response.status, "bytes": len(body)}


if __name__ == "__main__":
    from examples._serve import serve

    serve("examples.shared_client")
