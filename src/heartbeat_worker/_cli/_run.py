"""``heartbeat-worker run``: serve activities until SIGINT or SIGTERM.

The first signal starts a graceful shutdown; a second one hurries it (running activities are
stopped at once); a third ends the process immediately. Whatever the activities do, the
process ends by the worker's hard deadline: a thread that ignores cancellation cannot be
killed in Python, so it is abandoned and the process exits without waiting for it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

import anyio

from .._budget import ACCOUNT_HEARTBEAT_RATE, parse_share
from .._errors import ConfigurationError, LifespanError, StartupError
from .._heartbeater import DEFAULT_HEARTBEAT_FRACTION
from .._loader import find_lifespan, load_target
from .._logging import get_logger
from .._preflight import user_error_for
from .._worker import Worker
from ._options import add_connection_arguments, add_logging_arguments, apply_logging_arguments

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="module (its @activity functions) or module:attribute (an activity, a list of "
        "them, or a Worker)",
    )
    parser.add_argument("--domain", help="SWF domain (required unless TARGET is a Worker)")
    parser.add_argument(
        "--task-list", help="task list to poll (required unless TARGET is a Worker)"
    )
    add_connection_arguments(parser)
    tuning = parser.add_argument_group("worker")
    tuning.add_argument(
        "--max-concurrency",
        type=int,
        default=10,
        metavar="N",
        help="activities run at once at most",
    )
    tuning.add_argument(
        "--pollers",
        type=int,
        metavar="N",
        help="polls open at once at most (default: min(2, --max-concurrency))",
    )
    tuning.add_argument(
        "--register",
        action="store_true",
        help="register the domain and activity types first (default: check that they exist)",
    )
    tuning.add_argument(
        "--resolve-timeouts",
        choices=("registered", "history"),
        default="registered",
        help="where to read each task's heartbeat timeout (see the README for the API cost)",
    )
    tuning.add_argument(
        "--heartbeat-fraction",
        type=float,
        default=DEFAULT_HEARTBEAT_FRACTION,
        metavar="F",
        help="beat every F x the heartbeat timeout (default: 1/3)",
    )
    budget = tuning.add_mutually_exclusive_group()
    budget.add_argument(
        "--max-heartbeats-per-second",
        type=float,
        metavar="RATE",
        help="account-wide heartbeat budget shared by this worker's activities (default: no limit)",
    )
    tuning.add_argument(
        "--graceful-shutdown-timeout",
        type=float,
        default=20.0,
        metavar="S",
        help="on the first Ctrl-C or SIGTERM, how long running activities may finish "
        "and open polls may return",
    )
    tuning.add_argument(
        "--cancel-grace-period",
        type=float,
        default=3.0,
        metavar="S",
        help="how long a stopped activity may clean up before it is answered in its place",
    )
    budget.add_argument(
        "--heartbeat-share",
        type=_share,
        metavar="FRACTION",
        help=f"this worker's share of the account's {ACCOUNT_HEARTBEAT_RATE:g} heartbeats per "
        "second, such as 1/4 for one of four workers (sets --max-heartbeats-per-second; "
        "default: none)",
    )
    tuning.add_argument("--identity", help="identity reported to SWF (default: host:pid)")
    tuning.add_argument(
        "--max-processes",
        type=int,
        metavar="N",
        help='child processes for executor="process" activities (default: one per CPU)',
    )
    tuning.add_argument(
        "--process-start-method",
        choices=("spawn", "forkserver"),
        default="spawn",
        help="how those child processes start",
    )
    operations = parser.add_argument_group("operations")
    operations.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve /metrics, /healthz and /readyz on PORT (needs heartbeat-worker[metrics])",
    )
    operations.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address to serve them on (default 127.0.0.1; 0.0.0.0 for a pod's probes)",
    )
    add_logging_arguments(parser)


def _share(text: str) -> float:
    try:
        return parse_share(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_metrics(args: argparse.Namespace) -> Any:
    if args.metrics_port is None:
        return None
    try:
        from ..metrics import Metrics
    except ImportError as error:
        raise ConfigurationError(
            f"--metrics-port needs prometheus-client ({error}); "
            "install it with: pip install 'heartbeat-worker[metrics]'"
        ) from None
    return Metrics(port=args.metrics_port, host=args.metrics_host)


def build_worker(args: argparse.Namespace) -> Worker:
    loaded = load_target(args.target)
    if isinstance(loaded, Worker):
        if args.metrics_port is not None:
            raise ConfigurationError(
                "--metrics-port applies to a module's activities; give the configured Worker "
                "metrics=Metrics(port=...) instead"
            )
        return loaded
    if not args.domain or not args.task_list:
        raise ConfigurationError("--domain and --task-list are required for this TARGET")
    return Worker(
        args.domain,
        args.task_list,
        loaded,
        endpoint_url=args.endpoint_url,
        region=args.region,
        identity=args.identity,
        max_concurrency=args.max_concurrency,
        pollers=args.pollers,
        heartbeat_fraction=args.heartbeat_fraction,
        graceful_shutdown_timeout=args.graceful_shutdown_timeout,
        cancel_grace_period=args.cancel_grace_period,
        resolve_timeouts=args.resolve_timeouts,
        max_heartbeats_per_second=(
            args.max_heartbeats_per_second
            if args.heartbeat_share is None
            else args.heartbeat_share * ACCOUNT_HEARTBEAT_RATE
        ),
        register_types=args.register,
        lifespan=find_lifespan(args.target),
        metrics=build_metrics(args),
        max_processes=args.max_processes,
        process_start_method=args.process_start_method,
    )


async def serve(worker: Worker) -> None:
    """Run ``worker`` until it has shut down, translating signals into shutdown requests."""
    async with anyio.create_task_group() as group:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                received = 0
                async for signum in signals:
                    received += 1
                    get_logger().info("signal received", signal=signal.Signals(signum).name)
                    if received == 1:
                        worker.request_shutdown()
                        _explain_shutdown(worker)
                    elif received == 2:
                        worker.request_shutdown(hurry=True)
                    else:
                        _exit_now(130)

        group.start_soon(watch_signals)
        await worker.run()
        group.cancel_scope.cancel()


def _explain_shutdown(worker: Worker) -> None:
    """Say what the graceful shutdown waits for, how long at most, and how to cut it short.

    An idle worker still waits for its open polls: SWF cannot withdraw a poll, and a task
    it hands to one is answered ``worker shutdown`` (so that a decider reschedules it at
    once) only if the worker is still there to answer it.
    """
    running = len(worker.executions)
    most = worker.graceful_shutdown_timeout + (worker.cancel_grace_period if running else 0.0)
    get_logger().warning(
        "shutting down: waiting for running activities and open polls; a task an open poll "
        "still brings is answered 'worker shutdown'; press Ctrl-C again to leave now",
        running=running,
        open_polls=worker.polls_open,
        at_most=f"{most:g} s",
    )


def main(args: argparse.Namespace) -> int:
    apply_logging_arguments(args)
    worker = build_worker(args)
    try:
        anyio.run(serve, worker)
    except BaseException as error:
        startup = user_error_for(error)
        if isinstance(startup, StartupError):
            # The worker cannot know how it was named on the command line; the fix can.
            raise StartupError(str(startup).replace("TARGET", args.target)) from None
        failed = _lifespan_error(error)
        if failed is None:
            raise
        print(f"heartbeat-worker run: {failed}", file=sys.stderr)
        return 3
    code = 1 if worker.tasks_left_at_deadline else 0
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    if any(not t.daemon for t in stuck):
        # Abandoned activity threads would keep the interpreter alive at exit.
        get_logger().warning("exiting without waiting for abandoned activity threads")
        _exit_now(code)
    return code


def _lifespan_error(error: BaseException) -> LifespanError | None:
    """The LifespanError in ``error``, which the signal watcher's task group may wrap."""
    if isinstance(error, LifespanError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _lifespan_error(inner)
            if found is not None:
                return found
    return None


def _exit_now(code: int) -> Any:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
