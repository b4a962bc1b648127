"""The secrecy check: no task token and no secret access key in any log line.

A task token authorises answering its task, so the worker logs only ``token_hash(token)``
(12 hex digits). The check knows every token the dev server handed out (they are recorded
from its poll replies) and the secret key the workers were given, and looks for both in
every captured line, whole or in part. It also checks the shape of every ``token`` field
of the JSON lines, and flags any run of characters that looks like a dev server token.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from heartbeat_worker.devserver import Call, DevServer

Json = dict[str, Any]

ACCESS_KEY = "AKIAHWRELIABILITY000"
SECRET_KEY = "hw-reliability-secret-" + secrets.token_hex(12)
"""Distinctive, so that finding it in a log line cannot be a coincidence."""

WORKER_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
}

_TOKEN_FIELD = re.compile(r"[0-9a-f]{12}")
# The dev server's tokens: secrets.token_urlsafe(32), 43 characters.
_TOKEN_LIKE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
_FRAGMENT = 16
"""A token is also looked for by its pieces of this length, in case a line cut it."""


@dataclass
class LogCapture:
    """Captured log output: the structlog stream plus whatever else a test adds."""

    stream: io.StringIO
    tokens: set[str] = field(default_factory=set)
    extra: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        """Add output captured elsewhere (a worker process's stderr)."""
        self.extra.append(text)

    def lines(self) -> list[str]:
        text = self.stream.getvalue() + "".join(self.extra)
        return [line for line in text.splitlines() if line.strip()]

    def records(self) -> list[Json]:
        """The JSON lines, parsed (other lines are skipped)."""
        found = []
        for line in self.lines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append(record)
        return found

    def events(self, prefix: str) -> list[Json]:
        return [r for r in self.records() if str(r.get("event", "")).startswith(prefix)]

    def assert_no_secrets(self) -> None:
        problems = find_secrets(self.lines(), self.tokens)
        assert not problems, "secrets in the logs:\n" + "\n".join(problems[:10])


def find_secrets(lines: list[str], tokens: set[str]) -> list[str]:
    """Every problem found, each naming its line number (never quoting the secret)."""
    fragments = {token[i : i + _FRAGMENT] for token in tokens for i in (0, len(token) // 2)}
    problems = []
    for number, line in enumerate(lines, 1):
        if SECRET_KEY in line:
            problems.append(f"line {number}: the secret access key")
        if any(fragment in line for fragment in fragments):
            problems.append(f"line {number}: a task token (or a piece of one)")
        if _TOKEN_LIKE.search(line):
            problems.append(f"line {number}: a 43-character token-like string")
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "token" in record:
            value = record["token"]
            if not (isinstance(value, str) and _TOKEN_FIELD.fullmatch(value)):
                problems.append(f"line {number}: a token field that is not a 12-hex hash")
    return problems


_POLLS = ("PollForActivityTask", "PollForDecisionTask")


def record_tokens(server: DevServer, tokens: set[str]) -> None:
    """Record every task token ``server`` hands out (activity and decision tasks)."""

    def record(call: Call) -> None:
        token = call.reply.get("taskToken") if call.reply is not None else None
        if call.operation in _POLLS and token:
            tokens.add(token)

    server.observe(record)
