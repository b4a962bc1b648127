"""Registering the domain and the activity types: idempotent, safe to run at every start."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import anyio
from structlog.typing import FilteringBoundLogger

from ._definition import Activity
from ._swf import SWFClient, error_code, retry_transient

__all__ = ["register"]

DEFAULT_RETENTION_DAYS = "7"
_RETRY_FOR = 60.0
"""Seconds to keep retrying a throttled or failed registration call before giving up."""


async def register(
    client: SWFClient,
    domain: str,
    activities: Iterable[Activity[..., Any]],
    log: FilteringBoundLogger,
    *,
    retention_days: str = DEFAULT_RETENTION_DAYS,
) -> None:
    """Register ``domain`` and each activity type unless SWF already has them.

    An existing type is left as it is: SWF types are immutable once registered (a new
    version is the way to change defaults), and the worker's timeout resolution warns when
    the registered defaults differ from the decorator's.
    """
    try:
        await retry_transient(
            lambda: client.register_domain(
                name=domain, workflowExecutionRetentionPeriodInDays=retention_days
            ),
            deadline=anyio.current_time() + _RETRY_FOR,
            what="RegisterDomain",
        )
        log.info("domain registered", domain=domain)
    except Exception as error:
        if error_code(error) != "DomainAlreadyExistsFault":
            raise
    for activity in activities:
        activity_type = activity.activity_type
        try:
            await retry_transient(
                functools.partial(
                    client.register_activity_type,
                    domain=domain,
                    name=activity_type.name,
                    version=activity_type.version,
                    **activity_type.registration_defaults(),
                ),
                deadline=anyio.current_time() + _RETRY_FOR,
                what="RegisterActivityType",
            )
            log.info(
                "activity type registered",
                activity_type=activity_type.name,
                activity_version=activity_type.version,
            )
        except Exception as error:
            if error_code(error) != "TypeAlreadyExistsFault":
                raise
