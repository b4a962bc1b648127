"""A long ETL job that reports its progress and resumes where a previous attempt stopped.

The job generates a source SQLite database of orders (deterministically, once), then
extracts the orders in id order, transforms them (cleans names, converts amounts to euro
cents, derives the day and a size class) and loads them into a target SQLite database, in
batches. Each batch is one transaction, which also records how far the load has got.

Progress and checkpoints are the same thing. After each commit, and only then, the activity
records ``{"rows_done", "rows_total", "percent", "batch", "batches", "last_id"}`` with
``heartbeat()``; the worker sends it with its next automatic heartbeat. If the attempt times
out (say the worker was killed), SWF hands those details to the decider in the
``ActivityTaskTimedOut`` event, and the decider schedules the next attempt with them::

    input = heartbeat_worker.with_checkpoint(job, json.loads(event_details))

The next attempt finds them in ``info().checkpoint``. Because a heartbeat only ever follows a
commit, the checkpoint is never ahead of the target, but the target may be ahead of it (the
last batches may have committed after the last heartbeat SWF received). So the activity
resumes from what the target says it committed, after checking that the two agree, and no
row is loaded twice (the target's primary key would refuse it anyway). An attempt without a
checkpoint starts the load afresh.

Cancellation is clean: the database work runs in worker threads one chunk at a time, and a
cancellation arriving between chunks rolls back the open batch (in a shielded scope, since
the rollback itself awaits a thread), leaving the target exactly at its last commit.

Input and result are dataclasses (:class:`EtlJob`, :class:`EtlResult`): the worker builds
the job from the task's JSON input, checking each field's type, and encodes the result.
Input, a JSON object (only ``source`` and ``target`` are required)::

    {"source": "/tmp/etl/source.db", "target": "/tmp/etl/target.db",
     "rows": 100000, "batch_size": 5000, "chunk_size": 1000, "seed": 7}

A batch takes about a second, and the activity reports progress after each one, so it
declares a progress timeout of two minutes: a load stuck on a locked database is stopped
and failed ``stalled: ...`` with its last checkpoint, instead of heartbeating for ever.

Serve it::

    heartbeat-worker run examples.etl --domain D --task-list T
    python -m examples.etl --domain D --task-list T --endpoint-url http://127.0.0.1:8080 --register
"""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from heartbeat_worker import activity, heartbeat, info

__all__ = ["EtlJob", "EtlResult", "Progress", "etl", "transform"]

EURO_RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "JPY": 0.0062, "CHF": 1.04}
_FIRST_NAMES = ["ada", "alan", "grace", "edsger", "barbara", "donald", "margaret", "ken"]
_LAST_NAMES = ["lovelace", "turing", "hopper", "dijkstra", "liskov", "knuth", "hamilton"]
_COUNTRIES = ["FR", "DE", "GB", "US", "JP", "CH", "IT", "ES"]
_EPOCH = datetime(2024, 1, 1)


@dataclass(frozen=True, slots=True)
class EtlJob:
    """The activity's input, checked."""

    source: str
    target: str
    rows: int = 100_000
    batch_size: int = 5_000
    chunk_size: int = 1_000
    seed: int = 7

    def __post_init__(self) -> None:
        if self.rows < 1 or self.batch_size < 1 or self.chunk_size < 1:
            raise ValueError("rows, batch_size and chunk_size must be positive")

    @property
    def batches(self) -> int:
        return -(-self.rows // self.batch_size)


@dataclass(frozen=True, slots=True)
class EtlResult:
    """The activity's result; the ``resumed_*`` fields are set when it resumed."""

    rows_loaded: int
    rows_total: int
    batches: int
    checksum: int
    target: str
    resumed: bool
    checkpoint_last_id: int | None = None
    resumed_after_id: int | None = None
    batches_after_checkpoint: int | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the load has got: what the target committed, and what heartbeats report."""

    last_id: int = 0
    rows_done: int = 0
    batch: int = 0

    def details(self, job: EtlJob) -> dict[str, Any]:
        return {
            "rows_done": self.rows_done,
            "rows_total": job.rows,
            "percent": round(100 * self.rows_done / job.rows, 1),
            "batch": self.batch,
            "batches": job.batches,
            "last_id": self.last_id,
        }


# -- extract: the generated source -------------------------------------------------------


def ensure_source(job: EtlJob) -> None:
    """Generate the source database unless it exists with the same rows and seed.

    It is written under another name and renamed when complete, so an interrupted
    generation never leaves a source that looks finished.
    """
    path = Path(job.source)
    if _source_matches(path, job):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own, in case another attempt generates the same source meanwhile.
    descriptor, partial_name = tempfile.mkstemp(
        prefix=path.name, suffix=".partial", dir=path.parent
    )
    os.close(descriptor)
    partial = Path(partial_name)
    generator = random.Random(job.seed)
    connection = sqlite3.connect(partial)
    try:
        connection.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, "
            "country TEXT NOT NULL, currency TEXT NOT NULL, amount TEXT NOT NULL, "
            "ordered_at TEXT NOT NULL)"
        )
        connection.execute("CREATE TABLE meta (rows INTEGER NOT NULL, seed INTEGER NOT NULL)")
        connection.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
            (_source_row(order_id, generator) for order_id in range(1, job.rows + 1)),
        )
        connection.execute("INSERT INTO meta VALUES (?, ?)", (job.rows, job.seed))
        connection.commit()
    except BaseException:
        connection.close()
        partial.unlink(missing_ok=True)
        raise
    connection.close()
    os.replace(partial, path)


def _source_matches(path: Path, job: EtlJob) -> bool:
    if not path.exists():
        return False
    connection = sqlite3.connect(path)
    try:
        meta = connection.execute("SELECT rows, seed FROM meta").fetchone()
    except sqlite3.DatabaseError:
        return False
    finally:
        connection.close()
    return bool(meta == (job.rows, job.seed))


def _source_row(order_id: int, generator: random.Random) -> tuple[Any, ...]:
    # Messy on purpose: odd casing and stray spaces for the transform to clean up.
    first, last = generator.choice(_FIRST_NAMES), generator.choice(_LAST_NAMES)
    customer = f" {first.upper() if generator.random() < 0.2 else first}  {last} "
    cents = generator.randint(50, 500_000)
    ordered_at = _EPOCH + timedelta(seconds=generator.randint(0, 365 * 86_400))
    return (
        order_id,
        customer,
        generator.choice(_COUNTRIES),
        generator.choice(list(EURO_RATES)),
        f"{cents // 100}.{cents % 100:02d}",
        ordered_at.isoformat(),
    )


# -- transform ---------------------------------------------------------------------------


def transform(row: tuple[Any, ...], batch: int) -> tuple[Any, ...]:
    """One source order to one target fact."""
    order_id, customer, country, currency, amount, ordered_at = row
    whole, _, fraction = amount.partition(".")
    euro_cents = round((int(whole) * 100 + int(fraction)) * EURO_RATES[currency])
    size = "small" if euro_cents < 2_000 else "medium" if euro_cents < 20_000 else "large"
    day = date.fromisoformat(ordered_at[:10])
    name = " ".join(part.capitalize() for part in customer.split())
    return (order_id, name, country, euro_cents, size, day.isoformat(), day.strftime("%a"), batch)


# -- load: the target --------------------------------------------------------------------


class Target:
    """The target database and the source it reads from; every method blocks (threads)."""

    def __init__(self, job: EtlJob) -> None:
        self.job = job
        source_uri = Path(job.source).resolve().as_uri() + "?mode=ro"
        self.source = sqlite3.connect(source_uri, uri=True, check_same_thread=False)
        # Autocommit mode: transactions are exactly the BEGIN/COMMIT written below.
        self.db = sqlite3.connect(job.target, isolation_level=None, check_same_thread=False)

    def close(self) -> None:
        self.db.close()
        self.source.close()

    def start_afresh(self) -> Progress:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("DROP TABLE IF EXISTS facts")
        self.db.execute("DROP TABLE IF EXISTS etl_progress")
        self.db.execute(
            "CREATE TABLE facts (order_id INTEGER PRIMARY KEY, customer TEXT NOT NULL, "
            "country TEXT NOT NULL, amount_eur_cents INTEGER NOT NULL, size TEXT NOT NULL, "
            "order_day TEXT NOT NULL, weekday TEXT NOT NULL, batch INTEGER NOT NULL)"
        )
        self.db.execute(
            "CREATE TABLE etl_progress (rows_total INTEGER NOT NULL, last_id INTEGER NOT NULL, "
            "rows_done INTEGER NOT NULL, batch INTEGER NOT NULL)"
        )
        self.db.execute("INSERT INTO etl_progress VALUES (?, 0, 0, 0)", (self.job.rows,))
        self.db.execute("COMMIT")
        return Progress()

    def committed(self) -> Progress:
        """What the target has committed, checked against its own rows."""
        try:
            recorded = self.db.execute(
                "SELECT rows_total, last_id, rows_done, batch FROM etl_progress"
            ).fetchone()
        except sqlite3.OperationalError:
            recorded = None
        if recorded is None:
            raise ValueError(f"cannot resume: {self.job.target} holds no ETL progress")
        rows_total, last_id, rows_done, batch = recorded
        if rows_total != self.job.rows:
            raise ValueError(f"cannot resume: the target was loading {rows_total} rows")
        count, highest = self.db.execute(
            "SELECT COUNT(*), COALESCE(MAX(order_id), 0) FROM facts"
        ).fetchone()
        if (count, highest) != (rows_done, last_id):
            raise ValueError("cannot resume: the target's rows disagree with its progress")
        return Progress(last_id=last_id, rows_done=rows_done, batch=batch)

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def load_chunk(self, after_id: int, limit: int, batch: int) -> tuple[int, int]:
        """Extract, transform and insert up to ``limit`` orders; returns (count, last id)."""
        rows = self.source.execute(
            "SELECT id, customer, country, currency, amount, ordered_at FROM orders "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        self.db.executemany(
            "INSERT INTO facts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [transform(row, batch) for row in rows],
        )
        return len(rows), (rows[-1][0] if rows else after_id)

    def commit(self, progress: Progress) -> None:
        self.db.execute(
            "UPDATE etl_progress SET last_id = ?, rows_done = ?, batch = ?",
            (progress.last_id, progress.rows_done, progress.batch),
        )
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def checksum(self) -> int:
        query = "SELECT COALESCE(SUM(amount_eur_cents), 0) FROM facts"
        return int(self.db.execute(query).fetchone()[0])


async def load_batch(target: Target, progress: Progress) -> Progress:
    """Load the next batch in one transaction; any interruption rolls it back."""
    job = target.job
    batch = progress.batch + 1
    last_id, rows = progress.last_id, 0
    await anyio.to_thread.run_sync(target.begin)
    try:
        while rows < job.batch_size:
            limit = min(job.chunk_size, job.batch_size - rows)
            count, last_id = await anyio.to_thread.run_sync(
                target.load_chunk, last_id, limit, batch
            )
            rows += count
            if count < limit:
                break  # the source is exhausted
        done = Progress(last_id=last_id, rows_done=progress.rows_done + rows, batch=batch)
        await anyio.to_thread.run_sync(target.commit, done)
    except BaseException:
        # Cancelled (or failed) mid-batch: undo it. The shield lets the rollback's own
        # await run although the surrounding scope is cancelled.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(target.rollback)
        raise
    return done


def _resume_point(target: Target, checkpoint: Any) -> tuple[Progress, dict[str, Any]]:
    """Where to start: afresh without a checkpoint, else at the target's last commit."""
    if checkpoint is None:
        return target.start_afresh(), {"resumed": False}
    committed = target.committed()
    if not isinstance(checkpoint, dict) or "last_id" not in checkpoint:
        raise ValueError(f"cannot resume: unexpected checkpoint {checkpoint!r}")
    if checkpoint["last_id"] > committed.last_id:
        raise ValueError(
            f"cannot resume: the checkpoint is at order {checkpoint['last_id']}, but the "
            f"target only committed up to order {committed.last_id}"
        )
    return committed, {
        "resumed": True,
        "checkpoint_last_id": checkpoint["last_id"],
        "resumed_after_id": committed.last_id,
        "batches_after_checkpoint": committed.batch - int(checkpoint.get("batch", 0)),
    }


@activity(
    name="etl",
    version="1",
    heartbeat_timeout=30,
    start_to_close_timeout=3600,
    progress_timeout=120,
    description="Load generated orders into a SQLite target in batches; resumable.",
)
async def etl(spec: EtlJob) -> EtlResult:
    """Extract, transform and load ``spec.rows`` orders, resuming from a checkpoint."""
    await anyio.to_thread.run_sync(ensure_source, spec)
    target = await anyio.to_thread.run_sync(Target, spec)
    try:
        progress, resumption = await anyio.to_thread.run_sync(
            _resume_point, target, info().checkpoint
        )
        started_at = progress.rows_done
        heartbeat(progress.details(spec))
        while progress.rows_done < spec.rows:
            previous, progress = progress, await load_batch(target, progress)
            if progress.rows_done == previous.rows_done:
                raise RuntimeError(f"the source ends after {previous.rows_done} orders")
            heartbeat(progress.details(spec))  # after the commit: never ahead of the target
        checksum = await anyio.to_thread.run_sync(target.checksum)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(target.close)
    return EtlResult(
        rows_loaded=progress.rows_done - started_at,
        rows_total=progress.rows_done,
        batches=progress.batch,
        checksum=checksum,
        target=spec.target,
        **resumption,
    )


if __name__ == "__main__":
    from examples._serve import serve

    serve("examples.etl")
