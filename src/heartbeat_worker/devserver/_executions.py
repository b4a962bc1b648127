"""Workflow executions: start, signal, cancel, terminate, time out, describe, list, count.

An execution owns everything opened in it (activity tasks, timers, decision tasks), so
closing it, for whatever reason, closes all of that in one place (:meth:`Executions.close`).
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from ._model import VALIDATION_EXCEPTION, SWFError
from ._paging import page
from ._state import Execution, optional, parse_duration

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["Executions"]

Json = dict[str, Any]


class Executions:
    """The workflow executions of every domain."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, body: Json) -> Json:
        engine = self.engine
        domain = engine.registry.active_domain(body["domain"])
        record = engine.registry.workflow_type(domain, body["workflowType"])
        if record.deprecated:
            raise SWFError(
                "TypeDeprecatedFault",
                f"WorkflowType=[name={record.name}, version={record.version}] is deprecated",
            )
        defaults = record.configuration

        def resolved(member: str, default: str) -> Any:
            value = body.get(member)
            if value is None:
                value = defaults.get(default)
            if value is None:
                raise SWFError(
                    "DefaultUndefinedFault",
                    f"{member} is not given and the workflow type has no {default}",
                )
            return value

        task_list = resolved("taskList", "defaultTaskList")["name"]
        execution_timeout = resolved(
            "executionStartToCloseTimeout", "defaultExecutionStartToCloseTimeout"
        )
        task_timeout = resolved("taskStartToCloseTimeout", "defaultTaskStartToCloseTimeout")
        child_policy = resolved("childPolicy", "defaultChildPolicy")
        seconds = parse_duration(execution_timeout, "executionStartToCloseTimeout")
        if seconds is None:
            raise SWFError(
                VALIDATION_EXCEPTION,
                "1 validation error detected: Value 'NONE' at 'executionStartToCloseTimeout' "
                "failed to satisfy constraint: Member must be a number of seconds",
            )
        parse_duration(task_timeout, "taskStartToCloseTimeout")
        workflow_id = body["workflowId"]
        if workflow_id in domain.open_executions:
            raise SWFError(
                "WorkflowExecutionAlreadyStartedFault",
                f"An execution with workflowId {workflow_id} is already open",
            )
        priority = body.get("taskPriority", defaults.get("defaultTaskPriority"))
        execution = Execution(
            domain=domain,
            workflow_id=workflow_id,
            run_id=uuid.uuid4().hex,
            workflow_type={"name": record.name, "version": record.version},
            task_list=task_list,
            task_priority=priority,
            execution_start_to_close=execution_timeout,
            task_start_to_close=task_timeout,
            child_policy=child_policy,
            tag_list=list(body.get("tagList") or ()),
            start_timestamp=time.time(),
            journal=engine.journal,
        )
        attributes: Json = {
            "executionStartToCloseTimeout": execution_timeout,
            "taskStartToCloseTimeout": task_timeout,
            "childPolicy": child_policy,
            "taskList": {"name": task_list},
            "workflowType": execution.workflow_type,
        }
        optional(attributes, "input", body.get("input"))
        optional(attributes, "taskPriority", priority)
        if execution.tag_list:
            attributes["tagList"] = execution.tag_list
        optional(attributes, "lambdaRole", body.get("lambdaRole"))
        execution.record("WorkflowExecutionStarted", attributes)
        domain.open_executions[workflow_id] = execution
        domain.runs[(workflow_id, execution.run_id)] = execution
        execution.handle = engine.later(seconds, self.timed_out, execution)
        engine.decisions.schedule(execution)
        return {"runId": execution.run_id}

    def _open(self, body: Json) -> Execution:
        domain = self.engine.registry.domain(body["domain"])
        execution = domain.open_executions.get(body["workflowId"])
        run_id = body.get("runId")
        if execution is None or (run_id and run_id != execution.run_id):
            raise SWFError(
                "UnknownResourceFault", f"Unknown execution: workflowId={body['workflowId']}"
            )
        return execution

    def _any(self, body: Json) -> Execution:
        domain = self.engine.registry.domain(body["domain"])
        reference = body["execution"]
        execution = domain.runs.get((reference["workflowId"], reference["runId"]))
        if execution is None:
            raise SWFError(
                "UnknownResourceFault",
                f"Unknown execution: WorkflowExecution=[workflowId={reference['workflowId']}, "
                f"runId={reference['runId']}]",
            )
        return execution

    def signal(self, body: Json) -> Json:
        execution = self._open(body)
        attributes: Json = {"signalName": body["signalName"]}
        optional(attributes, "input", body.get("input"))
        execution.record("WorkflowExecutionSignaled", attributes)
        self.engine.decisions.need(execution)
        return {}

    def request_cancel(self, body: Json) -> Json:
        execution = self._open(body)
        if not execution.cancel_requested:
            execution.cancel_requested = True
            execution.record("WorkflowExecutionCancelRequested", {})
            self.engine.decisions.need(execution)
        return {}

    def terminate(self, body: Json) -> Json:
        execution = self._open(body)
        attributes: Json = {"childPolicy": body.get("childPolicy") or execution.child_policy}
        optional(attributes, "reason", body.get("reason"))
        optional(attributes, "details", body.get("details"))
        execution.record("WorkflowExecutionTerminated", attributes)
        self.close(execution, "TERMINATED")
        return {}

    def timed_out(self, execution: Execution) -> None:
        if not execution.is_open:
            return
        execution.record(
            "WorkflowExecutionTimedOut",
            {"timeoutType": "START_TO_CLOSE", "childPolicy": execution.child_policy},
        )
        self.close(execution, "TIMED_OUT")

    def close(self, execution: Execution, status: str) -> None:
        """Close the execution and everything still open in it: tasks, timers, decisions."""
        engine = self.engine
        execution.close_status = status
        execution.close_timestamp = time.time()
        if execution.handle is not None:
            execution.handle.cancel()
            execution.handle = None
        for task in list(execution.activities.values()):
            engine.activities.close(task)
        engine.timers.close_all(execution)
        scheduled = execution.scheduled_decision
        if scheduled is not None:
            engine.decision_queue(execution.domain.name, execution.task_list).remove(scheduled)
            execution.scheduled_decision = None
        if execution.started_decision is not None:
            engine.decisions.drop(execution.started_decision)
        del execution.domain.open_executions[execution.workflow_id]

    def describe(self, body: Json) -> Json:
        execution = self._any(body)
        configuration: Json = {
            "taskStartToCloseTimeout": execution.task_start_to_close,
            "executionStartToCloseTimeout": execution.execution_start_to_close,
            "taskList": {"name": execution.task_list},
            "childPolicy": execution.child_policy,
        }
        optional(configuration, "taskPriority", execution.task_priority)
        open_decisions = int(
            execution.scheduled_decision is not None or execution.started_decision is not None
        )
        result: Json = {
            "executionInfo": execution.info(),
            "executionConfiguration": configuration,
            "openCounts": {
                "openActivityTasks": len(execution.activities),
                "openDecisionTasks": open_decisions,
                "openTimers": len(execution.timers),
                "openChildWorkflowExecutions": 0,
                "openLambdaFunctions": 0,
            },
        }
        optional(result, "latestActivityTaskTimestamp", execution.latest_activity_task_timestamp)
        optional(result, "latestExecutionContext", execution.latest_execution_context)
        return result

    def history(self, body: Json) -> Json:
        execution = self._any(body)
        key = f"{execution.workflow_id}/{execution.run_id}"
        return page(execution.events, body, "events", "history", key)

    # Listing and counting

    def _matching(self, body: Json, *, closed: bool) -> list[Execution]:
        domain = self.engine.registry.domain(body["domain"])
        exclusive = [
            name
            for name in ("executionFilter", "typeFilter", "tagFilter", "closeStatusFilter")
            if body.get(name) is not None
        ]
        if len(exclusive) > 1:
            raise SWFError(
                VALIDATION_EXCEPTION,
                "executionFilter, typeFilter, tagFilter and closeStatusFilter are mutually "
                f"exclusive; got {', '.join(exclusive)}",
            )
        start_filter = body.get("startTimeFilter")
        close_filter = body.get("closeTimeFilter")
        if closed and (start_filter is None) == (close_filter is None):
            raise SWFError(
                VALIDATION_EXCEPTION, "Exactly one of startTimeFilter and closeTimeFilter is needed"
            )
        execution_filter = body.get("executionFilter")
        type_filter = body.get("typeFilter")
        tag_filter = body.get("tagFilter")
        status_filter = body.get("closeStatusFilter")

        def in_range(moment: float | None, window: Json | None) -> bool:
            if window is None:
                return True
            if moment is None or moment < window["oldestDate"]:
                return False
            latest = window.get("latestDate")
            return latest is None or moment <= latest

        found = []
        for execution in domain.runs.values():
            if execution.is_open == closed:
                continue
            if not in_range(execution.start_timestamp, start_filter):
                continue
            if closed and not in_range(execution.close_timestamp, close_filter):
                continue
            if execution_filter and execution.workflow_id != execution_filter["workflowId"]:
                continue
            if type_filter and (
                execution.workflow_type["name"] != type_filter["name"]
                or type_filter.get("version") not in (None, execution.workflow_type["version"])
            ):
                continue
            if tag_filter and tag_filter["tag"] not in execution.tag_list:
                continue
            if status_filter and execution.close_status != status_filter["status"]:
                continue
            found.append(execution)
        # SWF lists newest first unless reverseOrder is set.
        if close_filter is not None:
            found.sort(key=lambda execution: execution.close_timestamp or 0.0, reverse=True)
        else:
            found.sort(key=lambda execution: execution.start_timestamp, reverse=True)
        return found

    def list_open(self, body: Json) -> Json:
        infos = [execution.info() for execution in self._matching(body, closed=False)]
        return page(infos, body, "executionInfos", "open-executions", body["domain"])

    def list_closed(self, body: Json) -> Json:
        infos = [execution.info() for execution in self._matching(body, closed=True)]
        return page(infos, body, "executionInfos", "closed-executions", body["domain"])

    def count_open(self, body: Json) -> Json:
        return {"count": len(self._matching(body, closed=False)), "truncated": False}

    def count_closed(self, body: Json) -> Json:
        return {"count": len(self._matching(body, closed=True)), "truncated": False}
