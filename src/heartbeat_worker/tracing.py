"""OpenTelemetry traces: a span per task, ``Worker(interceptors=[TracingInterceptor()])``.

Built on the public interceptor hooks, like the metrics. The span covers the task from the
poll reply to the end of its answer and is current while the activity runs, so spans the
activity opens (an HTTP client's, a database driver's) are its children. Heartbeats and the
cancel request are events on it: they happen in the heartbeat scheduler's tasks, not in the
activity's context, so the interceptor finds the span by task. The task token never appears:
``swf.token_hash`` correlates with the worker's log lines instead.

opentelemetry-api is an optional extra (``pip install 'heartbeat-worker[otel]'``); this
module is what imports it, so a worker without tracing pays nothing. Without an SDK and a
tracer provider configured, the API's no-op tracer makes every span free as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from ._interceptor import (
    AnswerInput,
    ExecuteActivityInput,
    HandleTaskInput,
    Interceptor,
    SWFCallInput,
    TaskDescription,
)
from ._swf import error_code
from ._version import VERSION

__all__ = ["TracingInterceptor"]

_ERROR_OUTCOMES = frozenset({"failed", "shutdown", "left"})


def _attributes(task: TaskDescription) -> dict[str, str]:
    return {
        "swf.domain": task.domain,
        "swf.task_list": task.task_list,
        "swf.activity_type": task.activity_type,
        "swf.activity_version": task.activity_version,
        "swf.activity_id": task.activity_id,
        "swf.workflow_id": task.workflow_id,
        "swf.run_id": task.run_id,
        "swf.token_hash": task.token_hash,
    }


class TracingInterceptor(Interceptor):
    """A span ``swf.activity <type>`` per task; ``tracer_provider`` defaults to the global
    one (``opentelemetry.trace.set_tracer_provider``)."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer(
            "heartbeat_worker", VERSION, tracer_provider=tracer_provider
        )
        self._spans: dict[TaskDescription, Span] = {}

    async def handle_task(self, input: HandleTaskInput) -> str:
        task = input.task
        with self._tracer.start_as_current_span(
            f"swf.activity {task.activity_type}",
            kind=SpanKind.CONSUMER,
            attributes=_attributes(task),
        ) as span:
            self._spans[task] = span
            try:
                outcome = await self.next.handle_task(input)
            finally:
                del self._spans[task]
            span.set_attribute("swf.outcome", outcome)
            return outcome

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except Exception as error:
            span = self._spans.get(input.task)
            if span is not None:
                span.record_exception(error)
            raise

    async def answer(self, input: AnswerInput) -> None:
        span = self._spans.get(input.task)
        if span is not None and input.outcome in _ERROR_OUTCOMES:
            span.set_status(Status(StatusCode.ERROR, input.reason or input.outcome))
        await self.next.answer(input)

    async def swf_call(self, input: SWFCallInput) -> Mapping[str, Any]:
        task = input.task
        span = None if task is None else self._spans.get(task)
        if span is None or input.operation != "RecordActivityTaskHeartbeat":
            return await self.next.swf_call(input)
        attributes: dict[str, Any] = {}
        if input.heartbeat_lateness is not None:
            attributes["swf.heartbeat_lateness"] = input.heartbeat_lateness
        try:
            reply = await self.next.swf_call(input)
        except Exception as error:
            attributes["error"] = error_code(error) or type(error).__name__
            span.add_event("heartbeat failed", attributes)
            raise
        span.add_event("heartbeat", attributes)
        if reply.get("cancelRequested"):
            span.add_event("cancel requested")
        return reply
