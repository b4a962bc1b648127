"""The Python snippets of the README's "Operating a fleet" section run, and what they build
works: the interceptor reports an activity's error, the lifespan opens and closes its
session, a Worker takes metrics and the tracing interceptor."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from heartbeat_worker import ExecuteActivityInput, Interceptor, TaskDescription, activity

README = Path(__file__).resolve().parents[2] / "README.md"


@activity(heartbeat_timeout=10)
async def export() -> None:
    """What the snippets call ``export``."""


def snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Operating a fleet") : text.index("## The dev server")]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def run_snippet(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme_snippet", "export": export}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def test_every_snippet_of_the_section_runs() -> None:
    found = snippets()
    assert len(found) == 4
    for code in found:
        run_snippet(code)


def test_the_error_reporting_interceptor_reports_and_reraises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    (code,) = [code for code in snippets() if "class ReportErrors" in code]
    reporter: Interceptor = run_snippet(code)["ReportErrors"]()

    class Failing(Interceptor):
        async def execute_activity(self, input: ExecuteActivityInput) -> Any:
            raise KeyError("missing")

    reporter.next = Failing()
    task = TaskDescription("d", "t", "export", "1", "a1", "wf-1", "run-1", "abc123")
    call = ExecuteActivityInput(task, None, export, (), {}, False, _call=None)  # type: ignore[arg-type]

    async def main() -> None:
        with pytest.raises(KeyError):
            await reporter.execute_activity(call)

    with caplog.at_level(logging.ERROR, logger="errors"):
        anyio.run(main)
    assert caplog.records[0].getMessage() == "activity failed: export wf-1"
    assert caplog.records[0].token_hash == "abc123"  # type: ignore[attr-defined]


def test_the_lifespan_snippet_opens_and_closes_its_session() -> None:
    (code,) = [code for code in snippets() if "def http_client" in code]
    factory = run_snippet(code)["http_client"]

    async def main() -> None:
        async with factory() as session:
            assert not session.closed
        assert session.closed

    anyio.run(main)
