"""The worker's own HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz`` on one port.

It runs on the worker's event loop, not in a thread: what it reports about the loop is then
first-hand (a reply at all means the loop turns), it adds no thread to the process, and a
probe costs a few microseconds of loop time. The price is that a request that arrives while
the loop is blocked waits until the loop is free; the health check then answers 503 for what
the watchdog saw meanwhile (and a probe whose timeout is shorter than the block fails on its
timeout, which a Kubernetes probe counts the same way).

The protocol is the least of HTTP/1.1 that Prometheus and the kubelet speak: one GET per
connection, ``Connection: close``. It binds to loopback unless told otherwise.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
from anyio.abc import SocketStream, TaskStatus

if TYPE_CHECKING:
    from ._watchdog import LoopWatchdog
    from ._worker import Worker

__all__ = ["BLOCKED_HOLD", "ProbeServer"]

BLOCKED_HOLD = 2.0
"""Seconds ``/healthz`` keeps answering 503 after the loop was last seen blocked: a probe
that waited through the block is served only once the loop is free again, and must still
see it."""

_REQUEST_MAX = 8192
_READ_TIMEOUT = 5.0


class ProbeServer:
    """Serves the three paths for one worker; ``metrics`` renders the Prometheus text."""

    def __init__(
        self,
        worker: Worker,
        watchdog: LoopWatchdog,
        *,
        host: str,
        port: int,
        render_metrics: Callable[[], tuple[bytes, str]],
        reached_swf: Callable[[], bool],
    ) -> None:
        self._worker = worker
        self._watchdog = watchdog
        self._host = host
        self._port = port
        self._render_metrics = render_metrics
        self._reached_swf = reached_swf
        self.port: int | None = None
        """The port bound (useful with port 0), once serving."""

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host=self._host, local_port=self._port)
        async with listener:
            self.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
            self._worker.log.info("serving metrics and probes", host=self._host, port=self.port)
            task_status.started()
            await listener.serve(self._handle)

    async def _handle(self, stream: SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(_READ_TIMEOUT):
                    request = await self._read_head(stream)
            except (TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return
            if request is None:
                await self._send(stream, 400, b"bad request\n", "text/plain")
                return
            method, path = request
            if method != "GET":
                await self._send(stream, 405, b"only GET\n", "text/plain")
                return
            path = path.split("?", 1)[0]
            if path == "/metrics":
                body, content_type = self._render_metrics()
                await self._send(stream, 200, body, content_type)
            elif path == "/healthz":
                status, text = self.health()
                await self._send(stream, status, text.encode() + b"\n", "text/plain")
            elif path == "/readyz":
                status, text = self.readiness()
                await self._send(stream, status, text.encode() + b"\n", "text/plain")
            else:
                await self._send(stream, 404, b"not found\n", "text/plain")

    def health(self) -> tuple[int, str]:
        """200 while the loop turns and the worker is not stopping; 503 otherwise."""
        if self._worker.shutting_down:
            return 503, "stopping"
        blocked = self._watchdog.blocked_within(BLOCKED_HOLD)
        if blocked is not None:
            return 503, f"event loop blocked for {blocked:.2f} s"
        return 200, "ok"

    def readiness(self) -> tuple[int, str]:
        """200 once the worker serves and SWF has answered it; 503 while shutting down."""
        if self._worker.shutting_down:
            return 503, "shutting down"
        if not self._worker.started:
            return 503, "starting"
        if not self._reached_swf():
            return 503, "waiting for a first answer from SWF"
        return 200, "ready"

    @staticmethod
    async def _read_head(stream: SocketStream) -> tuple[str, str] | None:
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            data += await stream.receive(4096)
            if len(data) > _REQUEST_MAX:
                return None
        parts = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0].split()
        if len(parts) != 3:
            return None
        return parts[0].decode("latin-1"), parts[1].decode("latin-1")

    @staticmethod
    async def _send(stream: SocketStream, status: int, body: bytes, content_type: str) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
        head = (
            f"HTTP/1.1 {status} {reason.get(status, 'Service Unavailable')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}\r\n"
            "Connection: close\r\n\r\n"
        )
        with contextlib.suppress(anyio.BrokenResourceError, OSError):
            await stream.send(head.encode("latin-1") + body)
