"""kill -9 of a worker in the middle of the ETL example: the timeout carries the last
progress, and the next attempt resumes from it without loading a row twice."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from examples.etl import EtlJob, ensure_source, transform

from heartbeat_worker._decider import ActivityRequest, OneActivityWorkflow, RunOutcome
from heartbeat_worker.devserver import DevServer

from .decide import DOMAIN, report
from .processes import worker_process
from .secrecy import LogCapture

pytestmark = pytest.mark.anyio

ROWS = 200_000
HEARTBEAT_TIMEOUT = 1.5
TASK_LIST = "etl-kill"


def _expected(source: Path) -> tuple[int, int]:
    """(rows, checksum) that a complete load of ``source`` must give."""
    with sqlite3.connect(source) as db:
        rows = db.execute(
            "SELECT id, customer, country, currency, amount, ordered_at FROM orders"
        ).fetchall()
    db.close()
    return len(rows), sum(transform(row, 0)[3] for row in rows)


def _loaded(target: Path) -> tuple[int, int, int]:
    """(rows, distinct order ids, checksum) of the target."""
    with sqlite3.connect(target) as db:
        found = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT order_id), COALESCE(SUM(amount_eur_cents), 0) "
            "FROM facts"
        ).fetchone()
    db.close()
    return int(found[0]), int(found[1]), int(found[2])


async def test_kill_9_mid_etl_times_out_with_the_last_progress_and_the_retry_resumes(
    server: DevServer, client: Any, logs: LogCapture, tmp_path: Path
) -> None:
    job = {"source": str(tmp_path / "orders.db"), "target": str(tmp_path / "facts.db")}
    job.update(rows=ROWS, batch_size=2_000)
    await anyio.to_thread.run_sync(ensure_source, EtlJob(**job))  # type: ignore[arg-type]
    workflow = OneActivityWorkflow(
        client,
        DOMAIN,
        ActivityRequest(
            "etl", TASK_LIST, input=json.dumps(job), heartbeat_timeout=HEARTBEAT_TIMEOUT
        ),
        retries=2,
    )
    options = ["--register", "--resolve-timeouts", "history", "--max-concurrency", "1"]
    outcome: list[RunOutcome] = []
    decided = anyio.Event()
    async with anyio.create_task_group() as group:
        async with worker_process(server, "examples.etl", TASK_LIST, *options, logs=logs) as first:
            await workflow.start()

            async def decide() -> None:
                outcome.append(await workflow.run())
                decided.set()

            group.start_soon(decide)
            # Until the server has heard of a fifth of the rows, then kill -9.
            with anyio.fail_after(20):
                while True:
                    task = server.snapshot().task("etl-1")
                    if task and task.details and json.loads(task.details)["rows_done"] >= ROWS / 5:
                        break
                    await anyio.sleep(0.01)
            first.kill()
            await first.wait(10)
            killed_at = time.monotonic()
        # What the server last heard before the task closed: the last heartbeat's details.
        last_details = task.details
        with anyio.fail_after(HEARTBEAT_TIMEOUT + 5):
            while (task := server.snapshot().task("etl-1")) is not None:
                last_details = task.details
                await anyio.sleep(0.005)
        timed_out_after = time.monotonic() - killed_at
        async with worker_process(server, "examples.etl", TASK_LIST, *options, logs=logs):
            with anyio.fail_after(30):
                await decided.wait()
    (result,) = outcome

    assert result.completed, (result.status, result.reason)
    assert result.attempts == 2
    timed_out = result.first("ActivityTaskTimedOut")
    assert timed_out is not None
    assert timed_out.attributes["timeoutType"] == "HEARTBEAT"
    assert last_details is not None
    assert timed_out.attributes["details"] == last_details
    checkpoint = json.loads(last_details)
    assert 0 < checkpoint["rows_done"] < ROWS

    loaded = json.loads(result.result or "{}")
    assert loaded["resumed"] is True
    assert loaded["checkpoint_last_id"] == checkpoint["last_id"]
    assert loaded["rows_total"] == ROWS
    expected_rows, expected_checksum = await anyio.to_thread.run_sync(
        _expected, Path(job["source"])
    )
    rows, distinct, checksum = await anyio.to_thread.run_sync(_loaded, Path(job["target"]))
    assert (rows, distinct) == (expected_rows, expected_rows) == (ROWS, ROWS)
    assert checksum == loaded["checksum"] == expected_checksum
    report(
        f"kill -9 mid-ETL ({ROWS} rows, heartbeat timeout {HEARTBEAT_TIMEOUT} s)",
        {
            "progress in ActivityTaskTimedOut": f"{checkpoint['rows_done']} rows "
            f"(last_id {checkpoint['last_id']})",
            "timeout recorded after the kill": f"{timed_out_after:.2f} s",
            "resumed after order id": loaded["resumed_after_id"],
            "rows loaded by the second attempt": loaded["rows_loaded"],
            "rows in the target / distinct": f"{rows} / {distinct}",
            "checksum matches the source": checksum == expected_checksum,
            "attempts": result.attempts,
        },
    )
