"""The cancellation example undoes its transaction and temporary file, and says so."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from examples.cancellation import archive_orders, archive_orders_blocking

from heartbeat_worker import Activity
from heartbeat_worker.testing import run_activity

pytestmark = pytest.mark.anyio

BOTH = pytest.mark.parametrize(
    "job_activity", [archive_orders, archive_orders_blocking], ids=["async", "blocking"]
)


def _job(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "database": str(tmp_path / "shop.db"),
        "export": str(tmp_path / "archive.jsonl"),
        **overrides,
    }


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def _exists(path: str) -> bool:
    return Path(path).exists()


def _counts(tmp_path: Path) -> tuple[int, int]:
    """(live orders, archived orders)."""
    with sqlite3.connect(tmp_path / "shop.db") as db:
        live = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        archived = db.execute("SELECT COUNT(*) FROM archived_orders").fetchone()[0]
    db.close()
    return int(live), int(archived)


@BOTH
async def test_completes_with_export_and_archive(
    job_activity: Activity[..., Any], tmp_path: Path
) -> None:
    outcome = await run_activity(job_activity, _job(tmp_path, orders=50, pause=0))
    assert outcome.expect_completed() == {"archived": 50, "export": str(tmp_path / "archive.jsonl")}
    lines = (tmp_path / "archive.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(1, 51))
    assert _counts(tmp_path) == (0, 50)
    assert _files(tmp_path) == ["archive.jsonl", "shop.db"]


@BOTH
async def test_cancellation_rolls_back_and_removes_the_temporary_file(
    job_activity: Activity[..., Any], tmp_path: Path
) -> None:
    # Far more work than the test waits for: cancellation ends it.
    job = _job(tmp_path, orders=20_000, per_step=10, pause=0.005)
    outcome = await run_activity(job_activity, job, cancel_after_heartbeats=3)

    assert outcome.canceled
    undone = outcome.details
    assert undone["rolled_back"] is True
    assert undone["orders_restored"] >= 30
    assert undone["removed_file"].endswith(".partial")
    assert not _exists(undone["removed_file"])
    assert _counts(tmp_path) == (20_000, 0)
    assert _files(tmp_path) == ["shop.db"]


async def test_shutdown_cleans_up_too_and_fails_the_task(tmp_path: Path) -> None:
    job = _job(tmp_path, orders=20_000, per_step=10, pause=0.005)
    outcome = await run_activity(archive_orders, job, shutdown_after_heartbeats=2)

    assert outcome.failed
    assert outcome.reason == "worker shutdown"
    assert _counts(tmp_path) == (20_000, 0)
    assert _files(tmp_path) == ["shop.db"]
