"""The state file: the dev server's state in SQLite, so that it survives a restart or a crash.

The engine keeps working in memory; the store only writes down what changed. Three kinds of
change reach it: an execution that recorded an event (its row, its new events), an activity
task that changed (its row, or its deletion once closed), and the registry (domain rows,
rewritten whole: they change rarely). The engine calls :meth:`Store.commit` at the end of
every request, before the answer is sent, and after every timer that fired, so whatever a
client was told is on disk (in SQLite's WAL, which survives the process being killed).

Heartbeats are the exception, for speed: they write no history, and a heartbeat's new
details and deadline are written within :data:`HEARTBEAT_FLUSH` seconds, together with
everything else that changed meanwhile, so thousands of heartbeats a second cost one small
transaction every few milliseconds instead of one each.

Timers are stored as wall-clock deadlines (epoch seconds), since the event loop's clock
means nothing to the next process; :mod:`._restore` re-arms them, and those that fell due
while the server was down fire at start-up, in deadline order.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._errors import StateFileError
from .._version import VERSION

if TYPE_CHECKING:
    import asyncio

    from ._registry import Registry
    from ._state import ActivityTask, Execution

__all__ = ["FORMAT", "HEARTBEAT_FLUSH", "Store"]

Json = dict[str, Any]

FORMAT: Final = 1
"""The layout of the tables; a file of another format is refused, never half read."""
APPLICATION: Final = "heartbeat-worker dev server"
HEARTBEAT_FLUSH: Final = 0.05
"""Seconds within which a heartbeat reaches the file (everything else is written before the
answer): small beside any heartbeat timeout, large enough to batch a busy server's beats."""

_SCHEMA: Final = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE domains (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE executions (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE events (
    execution INTEGER NOT NULL, event_id INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (execution, event_id)
) WITHOUT ROWID;
CREATE TABLE activities (
    execution INTEGER NOT NULL, activity_id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (execution, activity_id)
) WITHOUT ROWID;
"""
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _refuse(path: Path, problem: str) -> StateFileError:
    return StateFileError(f"state file {path}: {problem}")


class Store:
    """An open state file; one per server, used from the server's event loop only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loop: asyncio.AbstractEventLoop | None = None
        self.registry: Registry | None = None
        self.executions: set[Execution] = set()
        self.tasks: set[ActivityTask] = set()
        self.heartbeats: set[ActivityTask] = set()
        self.registry_changed = False
        self.ids: dict[Execution, int] = {}
        self.written: dict[Execution, int] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        path = self.path
        if path.is_dir():
            raise _refuse(path, "is a directory; give the path of a file")
        try:
            db = sqlite3.connect(path, timeout=0, isolation_level=None)
        except sqlite3.Error as exc:
            raise _refuse(path, f"cannot be opened ({exc})") from None
        try:
            # One server per file: the exclusive lock is held until the process ends.
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            db.execute("PRAGMA journal_mode = WAL")
            # WAL with NORMAL survives the process being killed, not the machine losing
            # power: the right trade for a development server.
            db.execute("PRAGMA synchronous = NORMAL")
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if not tables:
                db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("application", APPLICATION), ("format", str(FORMAT)), ("writer", VERSION)],
                )
                return db
            self._check(db, tables)
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" in str(exc):
                raise _refuse(path, "is in use by another dev server") from None
            raise _refuse(path, f"is damaged or not a state file ({exc})") from None
        except sqlite3.DatabaseError as exc:
            db.close()
            raise _refuse(path, f"is damaged or not a state file ({exc})") from None
        except StateFileError:
            db.close()
            raise
        return db

    def _check(self, db: sqlite3.Connection, tables: set[str]) -> None:
        path = self.path
        if "meta" not in tables:
            raise _refuse(path, "is an SQLite file but not a dev server state file")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("application") != APPLICATION:
            raise _refuse(path, "is an SQLite file but not a dev server state file")
        if meta.get("format") != str(FORMAT):
            raise _refuse(
                path,
                f"was written by heartbeat-worker {meta.get('writer', '?')} in state format "
                f"{meta.get('format', '?')}; this is {VERSION}, which reads format {FORMAT}: "
                "start it with another --state-file, or delete this one",
            )
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise _refuse(path, f"is damaged ({verdict}); delete it or restore a copy")
        if not {"domains", "executions", "events", "activities"} <= tables:
            raise _refuse(path, "is damaged (tables are missing); delete it")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.db.execute(sql).fetchall()

    def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.db.close()

    # What changed

    def heartbeat(self, task: ActivityTask) -> None:
        """A heartbeat changed ``task``: written within :data:`HEARTBEAT_FLUSH` seconds."""
        self.heartbeats.add(task)
        if self._flush_handle is None and self.loop is not None:
            self._flush_handle = self.loop.call_later(HEARTBEAT_FLUSH, self._flush_heartbeats)

    def _flush_heartbeats(self) -> None:
        self._flush_handle = None
        self.tasks |= self.heartbeats
        self.heartbeats.clear()
        self.commit()

    # Writing

    def commit(self) -> None:
        """Write everything that changed since the last commit, in one transaction."""
        if not (self.executions or self.tasks or self.registry_changed):
            return
        self.tasks |= self.heartbeats
        db = self.db
        now_epoch, now_loop = time.time(), self.loop.time() if self.loop is not None else 0.0

        def epoch(when: float | None) -> float | None:
            return None if when is None else now_epoch + (when - now_loop)

        db.execute("BEGIN")
        try:
            if self.registry_changed:
                self._write_registry()
            for execution in list(self.executions):
                self._write_execution(execution, epoch)
            for task in self.tasks:
                self._write_task(task, epoch)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.executions.clear()
        self.tasks.clear()
        self.heartbeats.clear()
        self.registry_changed = False

    def _write_registry(self) -> None:
        from ._restore import domain_data

        assert self.registry is not None
        self.db.execute("DELETE FROM domains")
        self.db.executemany(
            "INSERT INTO domains VALUES (?, ?)",
            [
                (domain.name, _dumps(domain_data(domain)))
                for domain in self.registry.domains.values()
            ],
        )

    def _write_execution(self, execution: Execution, epoch: Any) -> None:
        from ._restore import execution_data

        db = self.db
        row_id = self.ids.get(execution)
        data = _dumps(execution_data(execution, epoch))
        if row_id is None:
            cursor = db.execute("INSERT INTO executions (data) VALUES (?)", (data,))
            row_id = self.ids[execution] = int(cursor.lastrowid or 0)
        else:
            db.execute("UPDATE executions SET data = ? WHERE id = ?", (data, row_id))
        written = self.written.get(execution, 0)
        events = execution.events
        if written < len(events):
            db.executemany(
                "INSERT INTO events VALUES (?, ?, ?)",
                [(row_id, event["eventId"], _dumps(event)) for event in events[written:]],
            )
            self.written[execution] = len(events)

    def _write_task(self, task: ActivityTask, epoch: Any) -> None:
        from ._restore import task_data

        execution = task.execution
        row_id = self.ids.get(execution)
        if row_id is None:  # pragma: no cover - a task's execution is written first
            self._write_execution(execution, epoch)
            row_id = self.ids[execution]
        if task.closed:
            self.db.execute(
                "DELETE FROM activities WHERE execution = ? AND activity_id = ?",
                (row_id, task.activity_id),
            )
            return
        self.db.execute(
            "INSERT OR REPLACE INTO activities VALUES (?, ?, ?)",
            (row_id, task.activity_id, _dumps(task_data(task, epoch))),
        )
