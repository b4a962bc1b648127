"""The approval example: the activity files a ticket and leaves the task; the answer, given
later with the ticket's token, is the task's one answer."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from examples.approval import ApprovalRequest, Decision, answer, request_approval

from examples import approval
from heartbeat_worker.testing import Status, start_activity

pytestmark = pytest.mark.anyio

REQUEST = ApprovalRequest(what="new laptop", amount_eur=1800, requested_by="ada")


@pytest.fixture(autouse=True)
def inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(approval, "INBOX", tmp_path)
    return tmp_path


async def test_files_a_private_ticket_and_sends_nothing(inbox: Path) -> None:
    async with start_activity(request_approval, REQUEST) as run:
        outcome = await run.wait()

    assert outcome.status == Status.COMPLETES_LATER
    assert run.client.answers == []
    ticket = inbox / "testing-activity.json"
    assert stat.S_IMODE(ticket.stat().st_mode) == 0o600
    assert json.loads(ticket.read_text())["request"] == {
        "what": "new laptop",
        "amount_eur": 1800,
        "requested_by": "ada",
    }


async def test_approval_completes_the_task_with_the_decision(inbox: Path) -> None:
    async with start_activity(request_approval, REQUEST) as run:
        await run.wait()
        await answer(inbox / "testing-activity.json", approved=True, by="grace", client=run.client)

    [sent] = run.client.answers
    assert sent.status == Status.COMPLETED
    assert json.loads(sent.result or "") == {"approved": True, "by": "grace", "comment": ""}
    assert not (inbox / "testing-activity.json").exists()
    assert Decision(**json.loads(sent.result or "")) == Decision(True, "grace")


async def test_refusal_fails_the_task_non_retryable(inbox: Path) -> None:
    async with start_activity(request_approval, REQUEST) as run:
        await run.wait()
        await answer(
            inbox / "testing-activity.json",
            approved=False,
            by="grace",
            comment="too dear",
            client=run.client,
        )

    [sent] = run.client.answers
    assert sent.status == Status.FAILED
    assert sent.reason == "non-retryable: refused by grace: too dear"
    assert json.loads(sent.details or "")["amount_eur"] == 1800
