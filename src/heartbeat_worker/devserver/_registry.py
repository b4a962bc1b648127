"""Domains and activity/workflow types: registration, description, listing, deprecation.

Type defaults are checked when registered, so that scheduling an activity later never has to
reject a default the server itself accepted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Final

from ._model import VALIDATION_EXCEPTION, SWFError
from ._paging import page
from ._state import (
    ACCOUNT_ID,
    REGION,
    ActivityTypeRecord,
    Domain,
    WorkflowTypeRecord,
    parse_duration,
)

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
TAGS_MAX: Final = 50
"""Tags per resource (a domain), SWF's quota."""
_TAG_TEXT: Final = re.compile(r"[\w\s_.:/=+\-@]*")
"""What the model allows in tags: letters, digits, whitespace and ``_ . : / = + - @``."""
_RETENTION: Final = re.compile(r"[0-9]{1,2}", re.ASCII)
_DOMAIN_ARN: Final = re.compile(r"arn:aws:swf:([a-z0-9-]+):([0-9]{12}):/domain/(.+)")

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
        if not name.endswith("Timeout") or parse_duration(value, name) is not None:
            continue
        if name == "defaultExecutionStartToCloseTimeout":
            # The one timeout SWF will not leave open: an execution lasts a year at most.
            raise SWFError(
                VALIDATION_EXCEPTION,
                f"1 validation error detected: Value 'NONE' at '{name}' failed to satisfy "
                "constraint: Member must be a number of seconds",
            )
    return configuration


def _checked_tags(tags: list[Json], path: str) -> dict[str, str]:
    found: dict[str, str] = {}
    problems = []
    for index, tag in enumerate(tags, start=1):
        for member in ("key", "value"):
            text = tag.get(member) or ""
            if _TAG_TEXT.fullmatch(text) is None:
                problems.append(
                    f"Value '{text[:64]}' at '{path}.{index}.member.{member}' failed to satisfy "
                    "constraint: Member may only contain letters, digits, whitespace and "
                    "_ . : / = + - @"
                )
        found[tag["key"]] = tag.get("value") or ""
    if problems:
        raise SWFError(
            VALIDATION_EXCEPTION,
            f"{len(problems)} validation error(s) detected: " + "; ".join(problems),
        )
    return found


def _too_many_tags(count: int) -> SWFError:
    return SWFError(
        "TooManyTagsFault", f"A domain has at most {TAGS_MAX} tags; this would make {count}"
    )


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
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
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
        if retention != "NONE" and not (_RETENTION.fullmatch(retention) and int(retention) <= 90):
            raise SWFError(
                VALIDATION_EXCEPTION,
                f"1 validation error detected: Value '{retention}' at "
                "'workflowExecutionRetentionPeriodInDays' failed to satisfy constraint: "
                "Member must be a number of days between 0 and 90",
            )
        tags = _checked_tags(body.get("tags") or [], "tags")
        if len(tags) > TAGS_MAX:
            raise _too_many_tags(len(tags))
        if name in self.domains:
            raise SWFError("DomainAlreadyExistsFault", f"Domain already exists: {name}")
        self.domains[name] = Domain(name, body.get("description"), retention, tags=tags)
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

    # Tags (SWF tags domains only)

    def _tagged(self, arn: str) -> Domain:
        found = _DOMAIN_ARN.fullmatch(arn)
        domain = self.domains.get(found.group(3)) if found else None
        if (
            found is None
            or domain is None
            or found.group(1) != REGION.get()
            or found.group(2) != ACCOUNT_ID
        ):
            raise SWFError("UnknownResourceFault", f"Unknown resource: {arn}")
        return domain

    def tag_resource(self, body: Json) -> Json:
        domain = self._tagged(body["resourceArn"])
        tags = {**domain.tags, **_checked_tags(body["tags"], "tags")}
        if len(tags) > TAGS_MAX:
            raise _too_many_tags(len(tags))
        domain.tags = tags
        return {}

    def untag_resource(self, body: Json) -> Json:
        domain = self._tagged(body["resourceArn"])
        for key in body["tagKeys"]:
            domain.tags.pop(key, None)
        return {}

    def list_tags_for_resource(self, body: Json) -> Json:
        domain = self._tagged(body["resourceArn"])
        return {"tags": [{"key": key, "value": value} for key, value in domain.tags.items()]}

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
