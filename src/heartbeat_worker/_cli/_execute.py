"""``heartbeat-worker execute``: run one activity through SWF and report how it ended.

For smoke tests and operations: it plays the decider of a one-activity workflow (see
:mod:`heartbeat_worker._decider`) while a worker, elsewhere, serves the task list. The exit
status says how the activity ended, so scripts can branch on it without parsing output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from typing import Any, Final, TextIO

import anyio
from anyio.abc import TaskGroup
from botocore.exceptions import NoCredentialsError, NoRegionError

from .._decider import ActivityRequest, OneActivityWorkflow, RunOutcome, RunStatus
from .._swf import error_code, open_connection
from ._options import add_connection_arguments, add_logging_arguments, apply_logging_arguments
from ._watch import ExecutionWatch

__all__ = ["EXIT_CODES", "add_arguments", "main"]

EXIT_COMPLETED: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_CANCELED: Final = 3
EXIT_TIMED_OUT: Final = 4
EXIT_CLOSED_OTHERWISE: Final = 5
EXIT_SWF_ERROR: Final = 6
EXIT_INTERRUPTED: Final = 130

EXIT_CODES: Final[dict[RunStatus, int]] = {
    RunStatus.COMPLETED: EXIT_COMPLETED,
    RunStatus.FAILED: EXIT_FAILED,
    RunStatus.CANCELED: EXIT_CANCELED,
    RunStatus.TIMED_OUT: EXIT_TIMED_OUT,
    RunStatus.TERMINATED: EXIT_CLOSED_OTHERWISE,
}

_EPILOG = """\
exit status:
  0    the activity completed (with --no-wait: it was scheduled)
  1    the activity failed, or could not be scheduled
  2    bad arguments
  3    the activity was canceled
  4    the activity timed out (after its last retry), or the workflow did
  5    the workflow was closed from outside (terminated)
  6    SWF refused a call or could not be reached (unknown domain, credentials...)
  130  a second Ctrl-C terminated the workflow execution (a first one requests the
       activity's cancellation and waits for its answer: status 3 when it comes)
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = _EPILOG
    parser.add_argument("name", metavar="NAME", help="activity type name")
    parser.add_argument("--version", default="1", help="activity type version (default: 1)")
    parser.add_argument("--domain", required=True, help="SWF domain")
    parser.add_argument("--task-list", required=True, help="activity task list a worker is serving")
    parser.add_argument(
        "--input", default=None, metavar="JSON", help="the activity's input, as JSON"
    )
    timeouts = parser.add_argument_group(
        "timeouts (seconds; default: those registered with the activity type)"
    )
    timeouts.add_argument("--heartbeat-timeout", type=_seconds, metavar="S")
    timeouts.add_argument("--start-to-close-timeout", type=_seconds, metavar="S")
    timeouts.add_argument(
        "--schedule-to-start-timeout",
        type=_seconds,
        metavar="S",
        help="how long the task may wait for a worker",
    )
    timeouts.add_argument(
        "--execution-timeout",
        type=_seconds,
        default=24 * 3600.0,
        metavar="S",
        help="the whole workflow, retries included (default: one day)",
    )
    control = parser.add_argument_group("control")
    control.add_argument(
        "--cancel-after",
        type=_seconds,
        metavar="S",
        help="request the activity's cancellation S seconds after the execution started",
    )
    control.add_argument(
        "--retries",
        type=_count,
        default=0,
        metavar="N",
        help="schedule the activity again, up to N times, after a timeout or a failure, "
        "handing it the last heartbeat details as checkpoint (default: 0)",
    )
    control.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait for the outcome (default); --no-wait schedules the activity, prints the "
        "execution and exits, leaving the execution open until its timeout",
    )
    control.add_argument(
        "--workflow-id", help="workflow id of the execution (default: NAME-<random>)"
    )
    control.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    control.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a live status line on stderr: attempt, which worker started the task, elapsed "
        "time, and against the dev server the latest details (default: on a terminal)",
    )
    add_connection_arguments(parser)
    add_logging_arguments(parser)
    parser.set_defaults(log_level="warning")


def main(args: argparse.Namespace) -> int:
    apply_logging_arguments(args)
    problem = _check(args)
    if problem is not None:
        print(f"heartbeat-worker execute: {problem}", file=sys.stderr)
        return EXIT_USAGE
    request = ActivityRequest(
        name=args.name,
        version=args.version,
        task_list=args.task_list,
        input=args.input,
        heartbeat_timeout=args.heartbeat_timeout,
        start_to_close_timeout=args.start_to_close_timeout,
        schedule_to_start_timeout=args.schedule_to_start_timeout,
    )
    started: list[dict[str, str]] = []
    try:
        return anyio.run(_execute, args, request, started)
    except KeyboardInterrupt:
        if started:
            execution = started[0]
            print(
                f"interrupted: execution {_describe(execution)} is left open until its "
                f"timeout; end it with: aws swf terminate-workflow-execution --domain "
                f"{args.domain} --workflow-id {execution['workflowId']} "
                f"--run-id {execution['runId']}",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    except Exception as caught:
        error = _leaf(caught)
        if isinstance(error, NoRegionError | NoCredentialsError):
            raise error from None  # a set-up mistake: one line and status 2, from main
        code = error_code(error)
        what = f"{code}: {error}" if code else f"{type(error).__name__}: {error}"
        print(f"heartbeat-worker execute: SWF call failed: {what}", file=sys.stderr)
        return EXIT_SWF_ERROR


def _check(args: argparse.Namespace) -> str | None:
    if args.input is not None:
        try:
            json.loads(args.input)
        except ValueError as error:
            return f"--input is not valid JSON: {error}"
    if not args.wait and (args.cancel_after is not None or args.retries):
        return "--cancel-after and --retries need a decider that waits: drop --no-wait"
    return None


async def _execute(
    args: argparse.Namespace, request: ActivityRequest, started: list[dict[str, str]]
) -> int:
    async with open_connection(endpoint_url=args.endpoint_url, region=args.region) as connection:
        workflow = OneActivityWorkflow(
            connection.call_client,
            args.domain,
            request,
            poll_client=connection.poll_client,
            retries=args.retries,
            cancel_after=args.cancel_after,
            workflow_id=args.workflow_id,
            execution_timeout=args.execution_timeout,
        )
        started.append(await workflow.start())
        if not args.wait:
            execution = await workflow.schedule_only()
            if args.json:
                print(json.dumps({"status": "scheduled", **execution}))
            else:
                print(f"scheduled: execution {_describe(execution)}")
                print("nothing will close it: it stays open until its execution timeout")
            return EXIT_COMPLETED
        live = args.progress if args.progress is not None else sys.stderr.isatty()
        watch = ExecutionWatch(
            connection.call_client,
            workflow,
            endpoint_url=args.endpoint_url,
            region=args.region,
            stream=sys.stderr,
            live=live,
        )
        outcome: RunOutcome | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(watch.run)
            group.start_soon(_on_interrupt, connection.call_client, workflow, watch, group)
            outcome = await workflow.run()
            group.cancel_scope.cancel()
    if outcome is None:
        return EXIT_INTERRUPTED  # terminated by a second Ctrl-C
    if args.json:
        print(json.dumps(outcome_as_json(outcome)))
    else:
        print_outcome(outcome, sys.stdout)
    return EXIT_CODES[outcome.status]


async def _on_interrupt(
    client: Any, workflow: OneActivityWorkflow, watch: ExecutionWatch, group: TaskGroup
) -> None:
    """First Ctrl-C: request the activity's cancellation and wait for its answer; second:
    terminate the workflow execution and leave."""
    with anyio.open_signal_receiver(signal.SIGINT) as signals:
        count = 0
        async for _ in signals:
            count += 1
            if count == 1:
                watch.say(
                    "interrupted: requested the activity's cancellation; waiting for its "
                    "answer (press Ctrl-C again to terminate the workflow execution)"
                )
                await workflow.request_cancel()
                continue
            with contextlib.suppress(Exception):  # closed already: nothing to terminate
                await client.terminate_workflow_execution(
                    domain=workflow.domain,
                    **workflow.execution,
                    reason="terminated by heartbeat-worker execute (Ctrl-C)",
                    childPolicy="TERMINATE",
                )
            watch.say(
                f"terminated: execution {_describe(workflow.execution)}; its worker learns "
                "it at the next heartbeat"
            )
            group.cancel_scope.cancel()
            return


def _leaf(error: BaseException) -> BaseException:
    """The one error inside task-group wrappers, if there is just one."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _describe(execution: dict[str, str]) -> str:
    return f"workflowId={execution['workflowId']} runId={execution['runId']}"


def outcome_as_json(outcome: RunOutcome) -> dict[str, Any]:
    """The outcome as plain JSON values (``--json``): payloads stay the strings SWF holds."""
    return {
        "status": outcome.status.value,
        "workflowId": outcome.workflow_id,
        "runId": outcome.run_id,
        "attempts": outcome.attempts,
        "result": outcome.result,
        "reason": outcome.reason,
        "details": outcome.details,
        "timeoutType": outcome.timeout_type,
        "duration": outcome.duration,
        "cancelLatency": outcome.cancel_latency,
    }


def print_outcome(outcome: RunOutcome, stream: TextIO) -> None:
    """The outcome for people: status first, then what explains it."""
    status = outcome.status.value
    if outcome.timeout_type is not None:
        status += f" ({outcome.timeout_type})"
    attempts = "1 attempt" if outcome.attempts == 1 else f"{outcome.attempts} attempts"
    duration = "" if outcome.duration is None else f", {outcome.duration:.2f} s"
    print(f"outcome: {status} after {attempts}{duration}", file=stream)
    print(
        f"execution: {_describe({'workflowId': outcome.workflow_id, 'runId': outcome.run_id})}",
        file=stream,
    )
    if outcome.status is RunStatus.COMPLETED:
        print(f"result: {_or_none(outcome.result)}", file=stream)
    elif outcome.status is RunStatus.CANCELED:
        print(f"cancel details: {_or_none(outcome.details)}", file=stream)
        if outcome.cancel_latency is not None:
            print(f"cancel latency: {outcome.cancel_latency:.2f} s", file=stream)
    elif outcome.status is RunStatus.TIMED_OUT:
        print(f"last details: {_or_none(outcome.details)}", file=stream)
    else:
        print(f"reason: {_or_none(outcome.reason)}", file=stream)
        print(f"details: {_or_none(outcome.details)}", file=stream)


def _or_none(value: str | None) -> str:
    return "(none)" if value is None else value
