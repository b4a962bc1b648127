"""Domains and activity/workflow types: registration, description, listing, deprecation.

Type defaults are checked when registered, so that scheduling an activity later never has to
reject a default the server itself accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ._model import VALIDATION_EXCEPTION, SWFError
from ._paging import page
from ._state import ActivityTypeRecord, Domain, WorkflowTypeRecord, parse_duration

__all__ = ["Registry"]

Json = dict[str, Any]

_ACTIVITY_DEFAULTS = (
    "defaultTaskStartToCloseTimeout",
    "defaultTaskHeartbeatTimeout",
    "defaultTaskList",
    "defaultTaskPriority",
    "defaultTaskScheduleToStartTimeout",
    "defaultTaskScheduleToCloseTimeout",
)
_WORKFLOW_DEFAULTS = (
    "defaultTaskStartToCloseTimeout",
    "defaultExecutionStartToCloseTimeout",
    "defaultTaskList",
    "defaultTaskPriority",
    "defaultChildPolicy",
    "defaultLambdaRole",
)


def _configuration(body: Json, members: tuple[str, ...]) -> Json:
    configuration = {name: body[name] for name in members if body.get(name) is not None}
    for name, value in configuration.items():
        if name.endswith("Timeout"):
            parse_duration(value, name)
    return configuration


def _type_label(kind: str, type_ref: Json) -> str:
    return f"{kind}=[name={type_ref['name']}, version={type_ref['version']}]"


class Registry:
    """Every domain, with its types; the part of the state that needs no timers."""

    def __init__(self) -> None:
        self.domains: dict[str, Domain] = {}

    def handlers(self) -> dict[str, Callable[[Json], Json]]:
        return {
            "RegisterDomain": self.register_domain,
            "DescribeDomain": self.describe_domain,
            "ListDomains": self.list_domains,
            "DeprecateDomain": self.deprecate_domain,
            "UndeprecateDomain": self.undeprecate_domain,
            "RegisterActivityType": self.register_activity_type,
            "DescribeActivityType": self.describe_activity_type,
            "ListActivityTypes": self.list_activity_types,
            "DeprecateActivityType": self.deprecate_activity_type,
            "UndeprecateActivityType": self.undeprecate_activity_type,
            "DeleteActivityType": self.delete_activity_type,
            "RegisterWorkflowType": self.register_workflow_type,
            "DescribeWorkflowType": self.describe_workflow_type,
            "ListWorkflowTypes": self.list_workflow_types,
            "DeprecateWorkflowType": self.deprecate_workflow_type,
            "UndeprecateWorkflowType": self.undeprecate_workflow_type,
            "DeleteWorkflowType": self.delete_workflow_type,
        }

    def domain(self, name: str) -> Domain:
        domain = self.domains.get(name)
        if domain is None:
            raise SWFError("UnknownResourceFault", f"Unknown domain: {name}")
        return domain

    def active_domain(self, name: str) -> Domain:
        domain = self.domain(name)
        if domain.deprecated:
            raise SWFError("DomainDeprecatedFault", f"Domain is deprecated: {name}")
        return domain

    # Domains

    def register_domain(self, body: Json) -> Json:
        name = body["name"]
        retention = body["workflowExecutionRetentionPeriodInDays"]
        if retention != "NONE" and not (retention.isdigit() and int(retention) <= 90):
            raise SWFError(
                VALIDATION_EXCEPTION,
                f"1 validation error detected: Value '{retention}' at "
                "'workflowExecutionRetentionPeriodInDays' failed to satisfy constraint: "
                "Member must be a number of days between 0 and 90",
            )
        if name in self.domains:
            raise SWFError("DomainAlreadyExistsFault", f"Domain already exists: {name}")
        self.domains[name] = Domain(name, body.get("description"), retention)
        return {}

    def describe_domain(self, body: Json) -> Json:
        domain = self.domain(body["name"])
        return {
            "domainInfo": domain.info(),
            "configuration": {"workflowExecutionRetentionPeriodInDays": domain.retention_days},
        }

    def list_domains(self, body: Json) -> Json:
        deprecated = body["registrationStatus"] == "DEPRECATED"
        infos = [
            domain.info()
            for _, domain in sorted(self.domains.items())
            if domain.deprecated == deprecated
        ]
        return page(infos, body, "domainInfos", "domains")

    def deprecate_domain(self, body: Json) -> Json:
        self.active_domain(body["name"]).deprecated = True
        return {}

    def undeprecate_domain(self, body: Json) -> Json:
        domain = self.domain(body["name"])
        if not domain.deprecated:
            raise SWFError("DomainAlreadyExistsFault", f"Domain is not deprecated: {domain.name}")
        domain.deprecated = False
        return {}

    # Activity types

    def register_activity_type(self, body: Json) -> Json:
        domain = self.active_domain(body["domain"])
        configuration = _configuration(body, _ACTIVITY_DEFAULTS)
        key = (body["name"], body["version"])
        if key in domain.activity_types:
            raise SWFError(
                "TypeAlreadyExistsFault",
                _type_label("ActivityType", {"name": key[0], "version": key[1]}),
            )
        domain.activity_types[key] = ActivityTypeRecord(
            key[0], key[1], body.get("description"), configuration
        )
        return {}

    def activity_type(self, domain: Domain, type_ref: Json) -> ActivityTypeRecord:
        record = domain.activity_types.get((type_ref["name"], type_ref["version"]))
        if record is None:
            raise SWFError(
                "UnknownResourceFault", "Unknown type: " + _type_label("ActivityType", type_ref)
            )
        return record

    def describe_activity_type(self, body: Json) -> Json:
        record = self.activity_type(self.domain(body["domain"]), body["activityType"])
        return {"typeInfo": record.info(), "configuration": dict(record.configuration)}

    def list_activity_types(self, body: Json) -> Json:
        domain = self.domain(body["domain"])
        deprecated = body["registrationStatus"] == "DEPRECATED"
        name = body.get("name")
        infos = [
            record.info()
            for key, record in sorted(domain.activity_types.items())
            if record.deprecated == deprecated and (name is None or key[0] == name)
        ]
        return page(infos, body, "typeInfos", "activity-types", domain.name)

    def deprecate_activity_type(self, body: Json) -> Json:
        record = self.activity_type(self.domain(body["domain"]), body["activityType"])
        if record.deprecated:
            raise SWFError(
                "TypeDeprecatedFault",
                _type_label("ActivityType", body["activityType"]),
            )
        record.deprecation_date = time.time()
        return {}

    def undeprecate_activity_type(self, body: Json) -> Json:
        record = self.activity_type(self.domain(body["domain"]), body["activityType"])
        if not record.deprecated:
            raise SWFError(
                "TypeAlreadyExistsFault", _type_label("ActivityType", body["activityType"])
            )
        record.deprecation_date = None
        return {}

    def delete_activity_type(self, body: Json) -> Json:
        domain = self.domain(body["domain"])
        record = self.activity_type(domain, body["activityType"])
        if not record.deprecated:
            raise SWFError(
                "TypeNotDeprecatedFault", _type_label("ActivityType", body["activityType"])
            )
        del domain.activity_types[(record.name, record.version)]
        return {}

    # Workflow types

    def register_workflow_type(self, body: Json) -> Json:
        domain = self.active_domain(body["domain"])
        configuration = _configuration(body, _WORKFLOW_DEFAULTS)
        key = (body["name"], body["version"])
        if key in domain.workflow_types:
            raise SWFError(
                "TypeAlreadyExistsFault",
                _type_label("WorkflowType", {"name": key[0], "version": key[1]}),
            )
        domain.workflow_types[key] = WorkflowTypeRecord(
            key[0], key[1], body.get("description"), configuration
        )
        return {}

    def workflow_type(self, domain: Domain, type_ref: Json) -> WorkflowTypeRecord:
        record = domain.workflow_types.get((type_ref["name"], type_ref["version"]))
        if record is None:
            raise SWFError(
                "UnknownResourceFault", "Unknown type: " + _type_label("WorkflowType", type_ref)
            )
        return record

    def describe_workflow_type(self, body: Json) -> Json:
        record = self.workflow_type(self.domain(body["domain"]), body["workflowType"])
        return {"typeInfo": record.info(), "configuration": dict(record.configuration)}

    def list_workflow_types(self, body: Json) -> Json:
        domain = self.domain(body["domain"])
        deprecated = body["registrationStatus"] == "DEPRECATED"
        name = body.get("name")
        infos = [
            record.info()
            for key, record in sorted(domain.workflow_types.items())
            if record.deprecated == deprecated and (name is None or key[0] == name)
        ]
        return page(infos, body, "typeInfos", "workflow-types", domain.name)

    def deprecate_workflow_type(self, body: Json) -> Json:
        record = self.workflow_type(self.domain(body["domain"]), body["workflowType"])
        if record.deprecated:
            raise SWFError("TypeDeprecatedFault", _type_label("WorkflowType", body["workflowType"]))
        record.deprecation_date = time.time()
        return {}

    def undeprecate_workflow_type(self, body: Json) -> Json:
        record = self.workflow_type(self.domain(body["domain"]), body["workflowType"])
        if not record.deprecated:
            raise SWFError(
                "TypeAlreadyExistsFault", _type_label("WorkflowType", body["workflowType"])
            )
        record.deprecation_date = None
        return {}

    def delete_workflow_type(self, body: Json) -> Json:
        domain = self.domain(body["domain"])
        record = self.workflow_type(domain, body["workflowType"])
        if not record.deprecated:
            raise SWFError(
                "TypeNotDeprecatedFault", _type_label("WorkflowType", body["workflowType"])
            )
        del domain.workflow_types[(record.name, record.version)]
        return {}
