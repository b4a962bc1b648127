"""Traces against the dev server: a span per task with its attributes, heartbeats and the
cancel request as events, errors recorded, the token never present."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, get_current_span

import heartbeat_worker
from heartbeat_worker import Interceptor, SWFCallInput, Worker, activity
from heartbeat_worker.tracing import TracingInterceptor
from swfkit import SWFKit

from ._scenario import closed, request_cancel, schedule

pytestmark = pytest.mark.anyio

MakeWorker = Callable[..., Worker]
seen_span_names: list[str] = []


class TokenCatcher(Interceptor):
    """Keeps the task tokens the answers carry, to look for them in the spans."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()

    async def swf_call(self, input: SWFCallInput) -> Mapping[str, Any]:
        if input.operation.startswith("RespondActivityTask"):
            self.tokens.add(input.arguments["taskToken"])
        return await self.next.swf_call(input)


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def naps(seconds: float) -> str:
    seen_span_names.append(get_current_span().name)  # type: ignore[attr-defined]
    await anyio.sleep(seconds)
    return heartbeat_worker.info().activity_id


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def breaks(message: str) -> None:
    raise ValueError(message)


async def test_each_task_is_a_span_with_its_heartbeats_cancel_and_errors(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = TracingInterceptor(tracer_provider=provider)
    tokens = TokenCatcher()
    seen_span_names.clear()
    worker = make_worker([naps, breaks], interceptors=[tracing, tokens], resolve_timeouts="history")
    async with worker:
        execution = await schedule(
            swfkit, [("n1", "naps", 1.2), ("e1", "breaks", "bad input")], heartbeat_timeout="1.5"
        )
        cancel = await schedule(swfkit, [("x1", "naps", 60)], heartbeat_timeout="1.5")
        assert await closed(swfkit, execution, 2) == {
            "n1": "ActivityTaskCompleted",
            "e1": "ActivityTaskFailed",
        }
        await request_cancel(swfkit, cancel, "x1")
        assert await closed(swfkit, cancel, 1) == {"x1": "ActivityTaskCanceled"}
        await worker.wait_handled(3)
    spans = {span.attributes["swf.activity_id"]: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"n1", "e1", "x1"}
    assert seen_span_names == ["swf.activity naps", "swf.activity naps"]

    done, failed, canceled = spans["n1"], spans["e1"], spans["x1"]
    assert done.name == "swf.activity naps"
    attributes = dict(done.attributes or {})
    assert set(attributes) == {
        "swf.domain",
        "swf.task_list",
        "swf.activity_type",
        "swf.activity_version",
        "swf.activity_id",
        "swf.workflow_id",
        "swf.run_id",
        "swf.token_hash",
        "swf.outcome",
    }
    assert attributes["swf.workflow_id"] == execution["workflowId"]
    assert attributes["swf.run_id"] == execution["runId"]
    assert attributes["swf.outcome"] == "completed"
    assert len(str(attributes["swf.token_hash"])) == 12
    assert done.status.status_code is StatusCode.UNSET
    beats = [event for event in done.events if event.name == "heartbeat"]
    assert len(beats) >= 1
    assert all((event.attributes or {})["swf.heartbeat_lateness"] >= 0 for event in beats)

    assert failed.attributes["swf.outcome"] == "failed"
    assert failed.status.status_code is StatusCode.ERROR
    assert "ValueError: bad input" in (failed.status.description or "")
    (exception,) = [event for event in failed.events if event.name == "exception"]
    assert (exception.attributes or {})["exception.message"] == "bad input"

    assert canceled.attributes["swf.outcome"] == "canceled"
    names = [event.name for event in canceled.events]
    assert "cancel requested" in names
    assert names.index("cancel requested") > names.index("heartbeat")

    # The token is in no attribute of any span or event.
    assert len(tokens.tokens) == 3
    for span in spans.values():
        values = [str(v) for v in (span.attributes or {}).values()]
        for event in span.events:
            values.extend(str(v) for v in (event.attributes or {}).values())
        assert not [v for v in values for token in tokens.tokens if token in v]
