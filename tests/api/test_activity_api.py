"""The activity API through the test kit (the worker's own execution, SWF in memory):
chosen failures, the handle from other threads, stop reasons, stall detection, typed
payloads and async completion."""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypedDict

import anyio
import pytest
import structlog.testing

from heartbeat_worker import (
    NON_RETRYABLE_PREFIX,
    ActivityFailed,
    CompleteLater,
    StopReason,
    activity,
    current_activity,
    heartbeat,
    wait_for_stop,
)
from heartbeat_worker._limits import DATA_MAX
from heartbeat_worker.testing import Status, run_activity, start_activity

pytestmark = pytest.mark.anyio


# -- structured failures -----------------------------------------------------------------


async def test_activity_failed_answers_exactly_its_reason_and_details() -> None:
    @activity
    async def refuse() -> None:
        raise ActivityFailed("quota exceeded", {"limit": 10, "used": 12})

    outcome = await run_activity(refuse)

    assert outcome.status == Status.FAILED
    assert outcome.reason == "quota exceeded"
    assert json.loads(outcome.details) == {"limit": 10, "used": 12}


async def test_non_retryable_failure_marks_the_reason() -> None:
    @activity
    async def refuse() -> None:
        raise ActivityFailed("no such customer", "customer 7", non_retryable=True)

    outcome = await run_activity(refuse)

    assert outcome.reason == NON_RETRYABLE_PREFIX + "no such customer"
    assert outcome.details == "customer 7"


async def test_declared_exception_types_fail_non_retryable_and_others_do_not() -> None:
    @activity(non_retryable=(KeyError,))
    async def lookup(key: str) -> None:
        if key == "missing":
            raise KeyError(key)
        raise RuntimeError("database down")

    declared = await run_activity(lookup, "missing")
    other = await run_activity(lookup, "present")

    assert declared.reason == NON_RETRYABLE_PREFIX + "KeyError: 'missing'"
    assert "Traceback" in declared.details
    assert other.reason == "RuntimeError: database down"


async def test_huge_failure_details_stay_valid_json_within_the_limit() -> None:
    @activity
    async def verbose() -> None:
        raise ActivityFailed("too much", {"rows": ['"quoted"'] * 20_000})

    outcome = await run_activity(verbose)

    assert len(outcome.details) <= DATA_MAX
    assert isinstance(json.loads(outcome.details), str)


# -- the handle, stop reasons, wait_for_stop ----------------------------------------------


async def test_handle_heartbeats_from_a_thread_pool_thread() -> None:
    @activity
    async def fan_out() -> int:
        handle = current_activity()

        def work(part: int) -> int:
            handle.heartbeat({"part": part})
            return part

        loop_thread = threading.get_ident()
        with ThreadPoolExecutor(max_workers=2) as pool:
            parts = await anyio.to_thread.run_sync(lambda: list(pool.map(work, range(3))))
        assert threading.get_ident() == loop_thread
        return sum(parts)

    outcome = await run_activity(fan_out)

    assert outcome.result == 3
    assert sorted(detail["part"] for detail in outcome.heartbeats) == [0, 1, 2]


async def test_handle_in_a_foreign_thread_raises_cancelled_once_stopped() -> None:
    seen: list[str] = []

    @activity
    async def watched() -> None:
        handle = current_activity()
        stop = threading.Event()

        def loop() -> None:
            try:
                while not stop.wait(0.01):
                    handle.heartbeat()
            except Exception as error:
                seen.append(type(error).__name__)

        thread = threading.Thread(target=loop)
        thread.start()
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(thread.join, 5)
                stop.set()

    outcome = await run_activity(watched, cancel_after=0.2)

    assert outcome.status == Status.CANCELED
    assert seen == ["ActivityCancelled"]


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [("cancel_after", StopReason.CANCEL_REQUESTED), ("shutdown_after", StopReason.SHUTDOWN)],
)
async def test_wait_for_stop_tells_a_cancel_request_from_a_shutdown(
    trigger: str, expected: StopReason
) -> None:
    reasons: list[StopReason | None] = []

    @activity
    async def cleaner() -> None:
        async with anyio.create_task_group() as group:

            async def watcher() -> None:
                with anyio.CancelScope(shield=True):
                    reasons.append(await wait_for_stop())
                    reasons.append(current_activity().stop_reason())

            group.start_soon(watcher)
            await anyio.sleep_forever()

    await run_activity(cleaner, **{trigger: 0.1})

    assert reasons == [expected, expected]


async def test_heartbeat_without_details_keeps_the_latest_and_counts_as_progress() -> None:
    @activity(progress_timeout=0.4)
    async def steady() -> str:
        heartbeat({"step": 1})
        for _ in range(10):
            await anyio.sleep(0.1)
            heartbeat()
        return "done"

    outcome = await run_activity(steady)

    assert outcome.result == "done"
    assert outcome.last_sent == {"step": 1}


# -- stall detection ----------------------------------------------------------------------


async def test_stalled_coroutine_fails_with_the_last_details_and_logs_its_stack() -> None:
    never = anyio.Event()

    @activity(progress_timeout=0.3)
    async def stuck() -> None:
        heartbeat({"row": 41})
        await never.wait()  # the stuck line

    with structlog.testing.capture_logs() as logs:
        outcome = await run_activity(stuck, cancel_grace_period=0.2)

    assert outcome.status == Status.FAILED
    assert outcome.reason is not None
    assert outcome.reason.startswith("stalled: no progress reported for ")
    assert outcome.reason.endswith("(progress timeout 0.3 s)")
    assert json.loads(outcome.details) == {"row": 41}
    [warning] = [line for line in logs if line["log_level"] == "warning"]
    assert warning["event"] == "activity stalled; stopping it"
    assert "await never.wait()  # the stuck line" in warning["stack"]


async def test_worker_default_progress_timeout_applies_and_inf_turns_it_off() -> None:
    @activity
    async def quiet() -> str:
        await anyio.sleep(0.5)
        return "ok"

    @activity(progress_timeout=float("inf"))
    async def exempt() -> str:
        await anyio.sleep(0.5)
        return "ok"

    stalled = await run_activity(quiet, progress_timeout=0.2)
    finished = await run_activity(exempt, progress_timeout=0.2)

    assert stalled.reason is not None
    assert stalled.reason.startswith("stalled: ")
    assert finished.result == "ok"


async def test_stalled_thread_is_answered_after_the_grace_period() -> None:
    release = threading.Event()

    @activity(progress_timeout=0.3)
    def stuck_in_thread() -> None:
        release.wait(10)

    try:
        outcome = await run_activity(stuck_in_thread, cancel_grace_period=0.2)
    finally:
        release.set()

    assert outcome.status == Status.FAILED
    assert outcome.reason.startswith("stalled: ")


# -- typed payloads -----------------------------------------------------------------------


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


@dataclasses.dataclass
class Line:
    sku: str
    price: Decimal
    quantity: int = 1


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    placed_at: datetime
    due: date
    priority: Priority
    lines: list[Line]
    note: str | None = None
    blob: bytes = b""


class Totals(TypedDict):
    order: uuid.UUID
    total: Decimal
    lines: int


@activity
async def total(order: Order) -> Totals:
    assert isinstance(order.lines[0], Line)
    assert isinstance(order.lines[0].price, Decimal)
    heartbeat(order.lines[-1])
    amount = sum((line.price * line.quantity for line in order.lines), Decimal(0))
    return {"order": order.id, "total": amount, "lines": len(order.lines)}


@dataclasses.dataclass
class Summary:
    order: Order
    total: Decimal


@activity
async def summarize(order: Order) -> Summary:
    return Summary(order, sum((line.price for line in order.lines), Decimal(0)))


ORDER = Order(
    id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    placed_at=datetime(2026, 12, 2, 6, 30, tzinfo=UTC),
    due=date(2026, 12, 24),
    priority=Priority.HIGH,
    lines=[Line("a", Decimal("1.10"), 2), Line("b", Decimal("0.05"))],
    blob=b"\x00\xff",
)


async def test_dataclass_input_and_result_round_trip_typed() -> None:
    outcome = await run_activity(summarize, ORDER)

    assert outcome.result == Summary(ORDER, Decimal("1.15"))
    sent = json.loads(outcome.answer.result)
    assert sent["order"]["placed_at"] == "2026-12-02T06:30:00+00:00"
    assert sent["order"]["priority"] == "high"
    assert sent["order"]["blob"] == "AP8="
    assert sent["total"] == "1.15"


async def test_typed_dict_result() -> None:
    outcome = await run_activity(total, ORDER)

    assert outcome.result == {"order": ORDER.id, "total": Decimal("2.25"), "lines": 2}


async def test_heartbeat_details_accept_typed_values() -> None:
    @activity
    async def report() -> None:
        heartbeat(Line("b", Decimal("0.05")))
        await anyio.sleep_forever()

    async with start_activity(report) as run:
        await run.wait_for_beats(1)
        run.request_cancel()

    assert run.sent[0] == {"sku": "b", "price": "0.05", "quantity": 1}


async def test_mismatched_input_fails_naming_the_field_and_the_problem() -> None:
    bad = dataclasses.asdict(ORDER)
    bad = json.loads(json.dumps(bad, default=str))
    bad["lines"][1]["quantity"] = "two"
    bad["priority"] = "high"
    bad["blob"] = ""

    outcome = await run_activity(total, raw_input=json.dumps(bad))

    assert outcome.status == Status.FAILED
    assert outcome.reason == "bad input: lines[1].quantity: expected an integer, got str 'two'"


async def test_missing_field_and_bad_enum_are_named() -> None:
    @activity
    async def prioritize(priority: Priority, line: Line) -> None:
        return None

    missing = await run_activity(prioritize, {"priority": "low", "line": {"sku": "x"}})
    bad_enum = await run_activity(prioritize, {"priority": "urgent", "line": {}})

    assert missing.reason == "bad input: line.price: missing (a required field of Line)"
    assert bad_enum.reason == (
        "bad input: priority: 'urgent' is not a valid Priority (one of 'low', 'high')"
    )


async def test_cancel_details_accept_typed_values() -> None:
    from heartbeat_worker import ActivityCancelled

    @activity
    def undo() -> None:
        while True:
            try:
                heartbeat()
            except ActivityCancelled:
                raise ActivityCancelled(details=Line("undone", Decimal("0"))) from None
            time.sleep(0.01)

    outcome = await run_activity(undo, cancel_after=0.1)

    assert outcome.details == {"sku": "undone", "price": "0", "quantity": 1}


# -- async completion ---------------------------------------------------------------------


async def test_complete_later_sends_nothing_and_hands_out_the_token_explicitly() -> None:
    stored: list[str] = []

    @activity
    async def deferred() -> None:
        stored.append(current_activity().task_token_for_later())
        raise CompleteLater

    async with start_activity(deferred) as run:
        outcome = await run.wait()

    assert outcome.status == Status.COMPLETES_LATER
    assert run.client.answers == []
    assert stored
    assert stored[0].startswith("testing-token-")
    assert stored[0] not in repr(current_activity_info(run))


def current_activity_info(run: Any) -> Any:
    return run.info
