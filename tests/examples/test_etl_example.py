"""The ETL example: every row loaded exactly once, including across a resumption."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from examples.etl import etl, transform

from heartbeat_worker.testing import run_activity, start_activity

pytestmark = pytest.mark.anyio

ROWS = 100_000


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated source for the module: generating it is the slow part."""
    return tmp_path_factory.mktemp("etl") / "orders.db"


def _job(source: Path, target: Path, **overrides: Any) -> dict[str, Any]:
    return {"source": str(source), "target": str(target), "rows": ROWS, **overrides}


def _target_summary(target: Path) -> tuple[int, int, int]:
    """(rows, distinct order ids, checksum) of a target."""
    with sqlite3.connect(target) as db:
        row = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT order_id), COALESCE(SUM(amount_eur_cents), 0) "
            "FROM facts"
        ).fetchone()
    db.close()
    return int(row[0]), int(row[1]), int(row[2])


def _committed(target: Path) -> tuple[int, int, int]:
    with sqlite3.connect(target) as db:
        row = db.execute("SELECT last_id, rows_done, batch FROM etl_progress").fetchone()
    db.close()
    return int(row[0]), int(row[1]), int(row[2])


def _expected_checksum(source: Path) -> int:
    with sqlite3.connect(source) as db:
        rows = db.execute(
            "SELECT id, customer, country, currency, amount, ordered_at FROM orders"
        ).fetchall()
    db.close()
    return sum(transform(row, 0)[3] for row in rows)


async def test_loads_every_row_once_and_reports_progress(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.db"
    outcome = await run_activity(etl, _job(source, target))

    result = outcome.expect_completed()
    assert result.rows_loaded == ROWS
    assert result.batches == 20
    assert result.resumed is False
    assert _target_summary(target) == (ROWS, ROWS, result.checksum)
    assert result.checksum == _expected_checksum(source)

    progress = [beat["rows_done"] for beat in outcome.heartbeats]
    assert progress == [batch * 5_000 for batch in range(21)]
    assert outcome.heartbeats[-1]["percent"] == 100.0
    assert outcome.sent, "the heartbeater sent nothing"


async def test_resumes_after_a_lost_attempt_without_loading_twice(
    source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target.db"
    job = _job(source, target, batch_size=2_000)
    async with start_activity(etl, job) as run:
        await run.wait_for_heartbeats(4)  # three batches committed
        await run.wait_for_beats(len(run.sent) + 1)  # and SWF has heard of them
        run.lose_task()  # as if the attempt timed out
        first = await run.wait()
    assert first.left

    checkpoint = first.last_sent  # what ActivityTaskTimedOut would carry
    assert checkpoint["batch"] >= 3
    last_id, rows_done, _ = _committed(target)
    assert rows_done % 2_000 == 0, "a partial batch was committed"
    assert rows_done >= checkpoint["rows_done"]
    assert _target_summary(target)[:2] == (rows_done, rows_done)

    second = await run_activity(etl, job, checkpoint=checkpoint)
    result = second.expect_completed()
    assert result.resumed is True
    assert result.resumed_after_id == last_id
    assert result.rows_loaded == ROWS - rows_done
    assert second.heartbeats[0]["rows_done"] == rows_done
    assert _target_summary(target) == (ROWS, ROWS, _expected_checksum(source))


async def test_an_older_checkpoint_after_a_cancellation_loads_nothing_twice(
    source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target.db"
    job = _job(source, target, batch_size=2_000)
    first = await run_activity(etl, job, cancel_after_heartbeats=4)
    assert first.canceled
    # The cancellation rolled the open batch back: the target is at a commit.
    last_id, rows_done, batch = _committed(target)
    assert rows_done == batch * 2_000 == last_id
    assert first.details["rows_done"] <= rows_done

    stale = first.heartbeats[1]  # one batch done: the target is well ahead of it
    second = await run_activity(etl, job, checkpoint=stale)
    result = second.expect_completed()
    assert result.batches_after_checkpoint == batch - 1
    assert result.rows_loaded == ROWS - rows_done
    assert _target_summary(target) == (ROWS, ROWS, _expected_checksum(source))


async def test_a_checkpoint_ahead_of_the_target_is_refused(tmp_path: Path) -> None:
    job = _job(tmp_path / "small.db", tmp_path / "target.db", rows=1_000)
    assert (await run_activity(etl, job)).completed

    outcome = await run_activity(etl, job, checkpoint={"last_id": 5_000, "batch": 5})
    assert outcome.failed
    assert outcome.reason is not None
    assert "cannot resume" in outcome.reason
    assert _target_summary(tmp_path / "target.db")[0] == 1_000


async def test_bad_job_fails_with_a_clear_reason(tmp_path: Path) -> None:
    outcome = await run_activity(etl, {"source": str(tmp_path / "s.db"), "rows": 10})
    assert outcome.failed
    assert outcome.reason is not None
    assert "target" in outcome.reason
