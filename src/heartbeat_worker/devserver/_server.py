"""Starting and stopping the dev server, in the caller's event loop or in a thread of its own."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from aiohttp import web

from .._network import is_loopback
from ._engine import Engine
from ._faults import Faults
from ._http import build_app
from ._observers import Observer, Observers
from ._snapshot import Snapshot, take_snapshot
from ._store import Store

__all__ = ["DevServer", "ThreadedDevServer", "is_loopback"]

_START_TIMEOUT: Final = 30.0
# Polls are answered at once on shutdown; this only bounds other requests still running.
_SHUTDOWN_TIMEOUT: Final = 5.0


class DevServer:
    """A local SWF-compatible endpoint.

    ``async with DevServer() as server:`` serves on a free loopback port in the running event
    loop; point clients at ``server.endpoint_url``. The server shares that loop with the caller,
    so a caller that blocks the loop also delays the server's timeouts: use :meth:`in_thread`
    to give it a loop of its own (synchronous clients such as boto3 need that anyway).

    ``poll_timeout`` is how long a poll waits for a task before answering with an empty task
    token (SWF: 60 seconds). A poll whose HTTP connection has closed (its worker was killed
    or restarted) is never handed a task; ``keep_abandoned_polls=True`` keeps SWF's
    behaviour, which hands it one that then waits for its timeout.

    Binding to a non-loopback ``host`` needs ``allow_remote=True``: the server has no
    authentication at all.

    ``state_file`` keeps the state in an SQLite file that survives a restart, or the process
    being killed (see docs/devserver.md); :meth:`start` raises
    :class:`~heartbeat_worker.devserver.StateFileError` for a file it cannot use. Without
    it, everything is in memory.

    ``faults`` holds the fault rules (throttling, errors, latency, dropped connections) that
    make it fail on purpose; see :class:`~heartbeat_worker.devserver.Faults`. They may be set
    before or while it runs. :meth:`snapshot` shows the open activity tasks, and
    :meth:`observe` every call the server handles.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        poll_timeout: float = 60.0,
        allow_remote: bool = False,
        keep_abandoned_polls: bool = False,
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"refusing to listen on non-loopback host {host!r}: the dev server has no "
                "authentication; pass allow_remote=True to do it anyway"
            )
        if poll_timeout <= 0:
            raise ValueError("poll_timeout must be positive")
        # "localhost" may resolve to both ::1 and 127.0.0.1, which with port 0 would mean two
        # sockets on two different ports: bind the one address the URL can name.
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.poll_timeout = poll_timeout
        self.keep_abandoned_polls = keep_abandoned_polls
        self.state_file = Path(state_file) if state_file is not None else None
        self.faults = Faults()
        self._observers = Observers()
        self._runner: web.AppRunner | None = None
        self._engine: Engine | None = None
        self._bound_port: int | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://HOST:PORT`` of the running server, with the port actually bound."""
        if self._bound_port is None:
            raise RuntimeError("the dev server is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._bound_port}"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the dev server is already running")
        store = Store(self.state_file) if self.state_file is not None else None
        try:
            engine = Engine(
                self.poll_timeout, keep_abandoned_polls=self.keep_abandoned_polls, store=store
            )
        except BaseException:
            if store is not None:
                store.db.close()
            raise
        # handler_cancellation stays off (aiohttp's default): with keep_abandoned_polls, a
        # poll whose client went away must still be able to receive its task, as on SWF.
        runner = web.AppRunner(
            build_app(engine, self.faults, self._observers),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, backlog=1024)
            await site.start()
        except BaseException:
            engine.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self._engine = engine
        self._bound_port = int(runner.addresses[0][1])

    def observe(self, callback: Observer) -> Callable[[], None]:
        """Call ``callback`` with a :class:`~heartbeat_worker.devserver.Call` for every call
        the server handles from now on (applied, or refused with an SWF error); returns a
        function that stops it.

        It runs in the server's event loop (its thread, for :meth:`in_thread`), after the
        call and before the answer is sent: keep it quick, and what it raises turns the
        call into an internal failure. A test reads what SWF received this way: the task
        tokens polls handed out, when each heartbeat arrived, what a worker answered.
        """
        return self._observers.add(callback)

    def snapshot(self) -> Snapshot:
        """The open activity tasks, with their last heartbeat details and time.

        Call it from the server's event loop (``ThreadedDevServer.snapshot`` from elsewhere).
        """
        if self._engine is None:
            raise RuntimeError("the dev server is not running")
        return take_snapshot(self._engine)

    async def stop(self) -> None:
        """Answer open polls with no task, then close every connection."""
        runner, engine = self._runner, self._engine
        self._runner = self._engine = None
        self._bound_port = None
        if engine is not None:
            engine.close()
        if runner is not None:
            # Let the released polls send their answers before connections are closed.
            await asyncio.sleep(0)
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def in_thread(self) -> ThreadedDevServer:
        """This server, run in a daemon thread with its own event loop.

        Use it as ``with server.in_thread() as running:`` from synchronous code, or as
        ``async with`` from a coroutine whose loop is too busy to serve timely.
        """
        return ThreadedDevServer(self)


class ThreadedDevServer:
    """A :class:`DevServer` running in a thread of its own; see :meth:`DevServer.in_thread`."""

    def __init__(self, server: DevServer) -> None:
        self.server = server
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    @property
    def faults(self) -> Faults:
        return self.server.faults

    def observe(self, callback: Observer) -> Callable[[], None]:
        """:meth:`DevServer.observe`: ``callback`` runs in the server's thread."""
        return self.server.observe(callback)

    def snapshot(self) -> Snapshot:
        """:meth:`DevServer.snapshot`, taken in the server's thread; call it from another."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("the dev server is not running")

        async def take() -> Snapshot:
            return self.server.snapshot()

        return asyncio.run_coroutine_threadsafe(take(), loop).result(_START_TIMEOUT)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the dev server thread is already running")
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(),), name="heartbeat-worker-devserver"
        )
        self._thread.daemon = True
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError("the dev server thread did not start in time")
        failure = self._take_failure()
        if failure is not None:
            self._thread.join()
            self._thread = None
            raise failure

    def _take_failure(self) -> BaseException | None:
        failure, self._failure = self._failure, None
        return failure

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await self.server.stop()

    def stop(self) -> None:
        thread, loop, stopped = self._thread, self._loop, self._stopped
        if thread is None or loop is None or stopped is None:
            return
        loop.call_soon_threadsafe(stopped.set)
        thread.join()
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.stop)
