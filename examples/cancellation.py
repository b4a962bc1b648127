"""Graceful cancellation: undo everything, then say what was undone.

The job archives orders: step by step, it copies live orders into an export file and moves
them to an archive table, all inside one SQLite transaction, writing the export under a
temporary name. Only at the end does it commit and give the export its final name. Until
then it holds two things that must not outlive a cancellation: the open transaction and the
temporary file.

Two variants, for the two kinds of activity:

``archive_orders`` (``async def``)
    The worker cancels it through anyio cancellation: the ``await`` it is waiting on raises
    the cancellation exception. Its handler rolls back and removes the file, and because
    that cleanup awaits (the database runs in a thread), it runs in
    ``anyio.CancelScope(shield=True)``; without the shield, the first ``await`` of the
    cleanup would be cancelled too. It then raises ``ActivityCancelled(details=...)``, and
    the worker answers ``RespondActivityTaskCanceled`` with those details.

``archive_orders_blocking`` (``def``, run in a thread)
    A thread cannot be interrupted, so it asks: ``cancel_requested()`` between steps, and
    ``heartbeat()`` raises ``ActivityCancelled`` once cancellation was requested. It cleans
    up the same way, without any shield (there is no anyio cancellation in a thread).

Cleanup must be quick: the worker waits for it for its ``cancel_grace_period`` only.

Input, a JSON object (``database`` and ``export`` required)::

    {"database": "/tmp/shop.db", "export": "/tmp/archive.jsonl",
     "orders": 200, "per_step": 10, "pause": 0.02}

``orders`` live orders are created when the database has none yet; ``pause`` seconds per step
stand for slow work (a remote call, say) between the steps.

Serve it::

    heartbeat-worker run examples.cancellation --domain D --task-list T
    python -m examples.cancellation --domain D --task-list T --endpoint-url URL --register
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from heartbeat_worker import ActivityCancelled, activity, cancel_requested, heartbeat

__all__ = ["ArchiveJob", "Archiving", "archive_orders", "archive_orders_blocking"]


@dataclass(frozen=True, slots=True)
class ArchiveJob:
    database: str
    export: str
    orders: int = 200
    per_step: int = 10
    pause: float = 0.02


class Archiving:
    """One archiving run: an open transaction and a temporary export file (blocking calls)."""

    def __init__(self, job: ArchiveJob) -> None:
        self.job = job
        self.archived = 0
        self.db = sqlite3.connect(job.database, isolation_level=None, check_same_thread=False)
        try:
            _create_orders_if_missing(self.db, job.orders)
            self.db.execute("BEGIN IMMEDIATE")
            export = Path(job.export)
            # Next to the final file, so that the final rename is atomic.
            descriptor, name = tempfile.mkstemp(
                prefix=export.name + ".", suffix=".partial", dir=export.parent
            )
        except BaseException:
            self.db.close()
            raise
        self.temporary = Path(name)
        self.file = os.fdopen(descriptor, "w", encoding="utf-8")

    def step(self) -> int:
        """Export and archive up to ``per_step`` orders; returns how many."""
        rows = self.db.execute(
            "SELECT id, customer, amount_cents FROM orders ORDER BY id LIMIT ?",
            (self.job.per_step,),
        ).fetchall()
        for order_id, customer, amount_cents in rows:
            record = {"id": order_id, "customer": customer, "amount_cents": amount_cents}
            self.file.write(json.dumps(record) + "\n")
        self.db.executemany(
            "INSERT INTO archived_orders SELECT * FROM orders WHERE id = ?",
            [(row[0],) for row in rows],
        )
        self.db.executemany("DELETE FROM orders WHERE id = ?", [(row[0],) for row in rows])
        self.archived += len(rows)
        return len(rows)

    def finish(self) -> dict[str, Any]:
        self.file.close()
        self.db.execute("COMMIT")
        os.replace(self.temporary, self.job.export)
        self.db.close()
        return {"archived": self.archived, "export": self.job.export}

    def undo(self) -> dict[str, Any]:
        """Roll back and remove the temporary file; returns what was undone."""
        rolled_back = self.db.in_transaction
        if rolled_back:
            self.db.execute("ROLLBACK")
        self.db.close()
        self.file.close()
        self.temporary.unlink(missing_ok=True)
        return {
            "rolled_back": rolled_back,
            "orders_restored": self.archived,
            "removed_file": str(self.temporary),
        }


def _create_orders_if_missing(db: sqlite3.Connection, count: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'orders'"
        ).fetchone()
        if not exists:
            for table in ("orders", "archived_orders"):
                db.execute(
                    f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, "
                    "amount_cents INTEGER NOT NULL)"
                )
            db.executemany(
                "INSERT INTO orders VALUES (?, ?, ?)",
                [(n, f"customer {n % 37}", 100 + n * 7 % 9_000) for n in range(1, count + 1)],
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# A short heartbeat timeout: the worker beats every 2 s, and a cancellation arrives with a
# heartbeat reply, so it is noticed within about 2 s.
@activity(name="archive_orders", heartbeat_timeout=6, start_to_close_timeout=600)
async def archive_orders(job: dict[str, Any]) -> dict[str, Any]:
    """Archive all live orders; if cancelled, roll back and report what was undone."""
    spec = ArchiveJob(**job)
    run = await anyio.to_thread.run_sync(Archiving, spec)
    try:
        while await anyio.to_thread.run_sync(run.step):
            heartbeat({"archived": run.archived})
            await anyio.sleep(spec.pause)
        return await anyio.to_thread.run_sync(run.finish)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            undone = await anyio.to_thread.run_sync(run.undo)
        raise ActivityCancelled(details=undone) from None
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(run.undo)
        raise


@activity(name="archive_orders_blocking", heartbeat_timeout=6, start_to_close_timeout=600)
def archive_orders_blocking(job: dict[str, Any]) -> dict[str, Any]:
    """The same job as a blocking function: it checks for cancellation between steps."""
    spec = ArchiveJob(**job)
    run = Archiving(spec)
    try:
        while not cancel_requested():
            if not run.step():
                return run.finish()
            heartbeat({"archived": run.archived})  # raises ActivityCancelled once cancelled
            time.sleep(spec.pause)
        raise ActivityCancelled()
    except ActivityCancelled:
        raise ActivityCancelled(details=run.undo()) from None
    except BaseException:
        run.undo()
        raise


if __name__ == "__main__":
    from examples._serve import serve

    serve("examples.cancellation")
