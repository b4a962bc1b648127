"""Async completion: an activity that a person finishes, from another process, later.

``request_approval`` does not wait for the answer: it files a ticket (the request and the
task token, in a file only its owner can read) and raises ``CompleteLater``. The worker
then sends nothing, stops heartbeating and frees its slot, however long the decision
takes. Whoever decides runs :func:`answer` (or ``python -m examples.approval answer``),
which reads the ticket and answers the task with ``complete_task`` or ``fail_task``; it
may run anywhere with SWF credentials, long after the worker moved on.

The token is the only way to answer the task, and a secret: anyone holding it can answer.
It is handed out only by ``current_activity().task_token_for_later()`` and never logged;
here it lives in a ``0600`` file, which a real system would replace with its own store (a
database row, a message to the approval service).

The activity type has no heartbeat timeout (nobody heartbeats while a person thinks) and a
start-to-close timeout of a day, after which SWF times the task out and the decider decides.

Serve it, and answer a ticket::

    heartbeat-worker run examples.approval --domain D --task-list T
    python -m examples.approval answer /tmp/approvals/<activity id>.json --approve \\
        --endpoint-url http://127.0.0.1:8866
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

from heartbeat_worker import (
    CompleteLater,
    activity,
    complete_task,
    current_activity,
    fail_task,
    info,
)

__all__ = ["ApprovalRequest", "Decision", "answer", "request_approval"]

INBOX = Path(os.environ.get("APPROVAL_INBOX", "/tmp/approvals"))
"""Where tickets are filed (``APPROVAL_INBOX`` overrides it)."""


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """The activity's input."""

    what: str
    amount_eur: int
    requested_by: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The activity's result, as the approver answers it."""

    approved: bool
    by: str
    comment: str = ""


@activity(heartbeat_timeout=None, start_to_close_timeout=24 * 3600)
def request_approval(request: ApprovalRequest) -> Decision:
    """File a ticket for a person to decide on, and leave the task to them."""
    INBOX.mkdir(parents=True, exist_ok=True)
    ticket = INBOX / f"{info().activity_id}.json"
    # Created readable by the owner only, before the token is written into it.
    descriptor = os.open(ticket, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(
            {"request": asdict(request), "token": current_activity().task_token_for_later()},
            file,
        )
    raise CompleteLater(f"waiting for a decision on {ticket.name}")


async def answer(
    ticket: Path, *, approved: bool, by: str, comment: str = "", **connection: Any
) -> None:
    """Answer the task of ``ticket``: completed with a :class:`Decision` when approved,
    failed (non-retryable: asking again would not change the answer) when refused.

    ``connection`` goes to the helpers: ``endpoint_url``, ``region``, ``session`` or an
    SWF ``client``.
    """
    filed = json.loads(await anyio.Path(ticket).read_text())
    token = filed["token"]
    if approved:
        await complete_task(token, Decision(True, by, comment), **connection)
    else:
        reason = f"refused by {by}" + (f": {comment}" if comment else "")
        await fail_task(token, reason, filed["request"], non_retryable=True, **connection)
    await anyio.Path(ticket).unlink()


def _answer_from_command_line(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.approval answer")
    parser.add_argument("ticket", type=Path)
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", action="store_true")
    choice.add_argument("--refuse", action="store_true")
    parser.add_argument("--by", default=os.environ.get("USER", "someone"))
    parser.add_argument("--comment", default="")
    parser.add_argument("--endpoint-url")
    options = parser.parse_args(arguments)

    async def main() -> None:
        await answer(
            options.ticket,
            approved=options.approve,
            by=options.by,
            comment=options.comment,
            endpoint_url=options.endpoint_url,
        )

    anyio.run(main)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["answer"]:
        sys.exit(_answer_from_command_line(sys.argv[2:]))
    from examples._serve import serve

    serve("examples.approval")
