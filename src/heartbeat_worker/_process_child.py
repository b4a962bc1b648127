"""The child side of the process executor: a loop that runs one activity call at a time.

A child is started by :mod:`heartbeat_worker._process_pool` (``spawn`` or ``forkserver``,
never a plain ``fork`` of the threaded worker) and talks to it over one duplex pipe. Only
strings and plain values cross it: the task's input as SWF sent it, decoded here by the
worker's codec, and the result encoded here, so no user object is ever pickled and a result
that the codec refuses fails exactly as it would in a thread.

Two threads share the pipe, one direction each. The main thread runs the activity and sends
what it produces (each ``heartbeat()``'s details, then the one final message). A daemon
thread reads the parent's messages: a stop request sets the running call's flag, so
``heartbeat()``, ``cancel_requested()`` and ``stop_reason`` behave as in a worker thread;
the end of the pipe means the worker is gone, and the child exits at once, whatever the
activity is doing, so no user code outlives its worker. On Linux the kernel's parent-death
signal backs this up for a child stuck in C code that never lets the reader thread run.

The child ignores SIGINT: a Ctrl-C in a terminal reaches the whole process group, and the
worker alone decides how its activities stop. SIGTERM keeps its default action, which is
how the worker ends a child that ignores its stop request.

Messages, as tuples (``seq`` numbers the calls, so a late stop never reaches the next one):

============================================  ===============================================
parent -> child                                child -> parent
============================================  ===============================================
``("run", seq, module, qualname, input,       ``("ready", pid)`` once, after the preloads
info, every_beat)``                            (``("broken", reason, traceback)`` if one fails)
                                               ``("beat", seq, details_json | None)``
``("stop", seq, reason)``                      ``("returned", seq, latest, result | None)``
                                               ``("failed", seq, latest, reason, details)``
                                               ``("cancelled", seq, latest, details_json,
                                               reason, traceback)``

``latest`` is the activity's latest heartbeat details (JSON, or None), so that the answer
carries them even when the last ``heartbeat()`` calls were not sent on their own: a call
is sent at most every :data:`BEAT_GAP` seconds, unless ``every_beat`` asks for each one (the
testing kit, which shows every call). A loop that calls ``heartbeat()`` for every row thus
costs the worker's event loop nothing more than one that calls it once a second.
============================================  ===============================================
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import inspect
import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from ._codec import InputError, bind_input, encode_result
from ._context import ActivityContext, ActivityInfo, StopReason, bind
from ._errors import ActivityCancelled, SWFLimitError
from ._limits import DATA_MAX, FAILURE_REASON_MAX, cut_end, cut_start

__all__ = ["describe_error", "main", "resolve"]

_PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal the kernel sends when the parent thread exits."""

BEAT_GAP = 0.05
"""Seconds between the heartbeat details a child sends on its own: far below any heartbeat
interval (SWF only keeps the latest details anyway), far above a per-row call rate."""

_Run = tuple[int, str, str, str | None, ActivityInfo, bool]


def main(connection: Connection, preload: list[str]) -> None:
    """The child's entry point (the target of its ``multiprocessing`` process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    try:
        for module in preload:
            importlib.import_module(module)
    except BaseException as error:
        with contextlib.suppress(OSError):
            connection.send(("broken", *describe_error(error)))
        os._exit(1)
    runs: queue.SimpleQueue[_Run | None] = queue.SimpleQueue()
    calls = _Calls()
    reader = threading.Thread(
        target=_read, args=(connection, runs, calls), name="heartbeat-worker-pipe", daemon=True
    )
    reader.start()
    try:
        connection.send(("ready", os.getpid()))
    except OSError:
        os._exit(0)  # the pool closed while this child was starting
    outbox = _Outbox(connection)
    while (run := runs.get()) is not None:
        outbox.answer(_call(run, outbox, calls))
    # The parent closed the pipe between calls: a normal shutdown.
    os._exit(0)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a kill -9 of the worker)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the pipe the reader thread watches still ends the child


class _Outbox:
    """The child's sending side, shared by the main thread and a flusher thread.

    A heartbeat sent less than :data:`BEAT_GAP` after the previous one waits, and the
    flusher sends the latest waiting one when the gap has passed, so the worker always ends
    up with the latest details, however fast or slowly the activity calls ``heartbeat()``.
    An answer replaces whatever beat still waits (it carries the latest details itself).
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Condition()
        self._waiting: tuple[Any, ...] | None = None
        self._next_send = 0.0
        threading.Thread(target=self._flush, name="heartbeat-worker-beats", daemon=True).start()

    def beat(self, message: tuple[Any, ...], *, at_once: bool) -> None:
        with self._lock:
            now = time.monotonic()
            if at_once or now >= self._next_send:
                self._waiting = None
                self._send(message, now)
            else:
                self._waiting = message
                self._lock.notify()

    def answer(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self._waiting = None
            self._send(message, time.monotonic())

    def _send(self, message: tuple[Any, ...], now: float) -> None:
        self._next_send = now + BEAT_GAP
        try:
            self._connection.send(message)
        except OSError:
            os._exit(1)  # the worker is gone

    def _flush(self) -> None:
        with self._lock:
            while True:
                if self._waiting is None:
                    self._lock.wait()
                    continue
                delay = self._next_send - time.monotonic()
                if delay > 0:
                    self._lock.wait(delay)
                    continue
                message, self._waiting = self._waiting, None
                self._send(message, time.monotonic())


class _Calls:
    """The call running in the main thread, and stops that arrived before it started."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq = -1
        self.context: ActivityContext | None = None
        self.early_stops: dict[int, StopReason] = {}

    def start(self, seq: int, context: ActivityContext) -> None:
        with self.lock:
            self.seq, self.context = seq, context
            reason = self.early_stops.pop(seq, None)
            if reason is not None:
                context.request_stop(reason)

    def finish(self) -> None:
        with self.lock:
            self.context = None

    def stop(self, seq: int, reason: StopReason) -> None:
        with self.lock:
            if seq == self.seq and self.context is not None:
                self.context.request_stop(reason)
            elif seq > self.seq:
                self.early_stops[seq] = reason


def _read(connection: Connection, runs: queue.SimpleQueue[_Run | None], calls: _Calls) -> None:
    """The reader thread: hands calls to the main thread, applies stops, exits on EOF."""
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            # The worker closed the pipe or died. An idle child ends normally; a busy one
            # ends now, since nobody is left to take its result.
            with calls.lock:
                busy = calls.context is not None
            if busy:
                os._exit(1)
            runs.put(None)
            return
        if message[0] == "run":
            runs.put(message[1:])
        elif message[0] == "stop":
            calls.stop(message[1], StopReason(message[2]))


def _call(run: _Run, outbox: _Outbox, calls: _Calls) -> tuple[Any, ...]:
    seq, module, qualname, raw_input, info, every_beat = run
    context = ActivityContext(info, in_thread=True)

    def send_beat(details: Any) -> None:
        # Each call, as made (the testing kit shows them all); or else, rate-limited, the
        # latest details, which a later call without details must not erase.
        encoded = None if every_beat and details is None else context.details_json
        outbox.beat(("beat", seq, encoded), at_once=every_beat)

    context.observer = send_beat
    bind(context)
    calls.start(seq, context)
    try:
        function = resolve(module, qualname)
        try:
            arguments = bind_input(inspect.signature(function), raw_input)
        except InputError as error:
            return ("failed", seq, None, f"bad input: {error}", None)
        value = function(*arguments.args, **arguments.kwargs)
        latest = context.details_json
        try:
            return ("returned", seq, latest, encode_result(value))
        except SWFLimitError as error:
            return ("failed", seq, latest, f"result too large: {error}", None)
        except (TypeError, ValueError) as error:
            return ("failed", seq, latest, f"result is not JSON-serializable: {error}", None)
    except ActivityCancelled as cancelled:
        reason, details = describe_error(cancelled)
        cancel_details = _encode_details(cancelled.details)
        return ("cancelled", seq, context.details_json, cancel_details, reason, details)
    except BaseException as error:  # SystemExit too: the child serves on
        return ("failed", seq, context.details_json, *describe_error(error))
    finally:
        calls.finish()


def resolve(module: str, qualname: str) -> Callable[..., Any]:
    """The function an activity wraps, found again by its module and qualified name."""
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    function = getattr(target, "function", target)  # an Activity wraps the function
    if not callable(function):
        raise TypeError(f"{module}.{qualname} is not callable")
    return function  # type: ignore[no-any-return]


def describe_error(error: BaseException) -> tuple[str, str]:
    """The failure reason (type and message) and the traceback text of ``error``."""
    message = cut_end(str(error), FAILURE_REASON_MAX)
    name = type(error).__name__
    reason = f"{name}: {message}" if message else name
    # As in a thread: the message may be huge, and the frames are what locate the error.
    frames_from = error.__traceback__
    if frames_from is not None and frames_from.tb_frame.f_code is _call.__code__:
        frames_from = frames_from.tb_next  # start at the activity, as in a thread
    frames = "".join(traceback.format_tb(frames_from))
    details = f"Traceback (most recent call last):\n{frames}{name}: "
    details += cut_end(str(error), DATA_MAX // 4)
    return reason, cut_start(details, DATA_MAX)


def _encode_details(details: Any) -> str | None:
    if details is None:
        return None
    try:
        return json.dumps(details, separators=(",", ":"))
    except (TypeError, ValueError):
        return json.dumps(repr(details))
