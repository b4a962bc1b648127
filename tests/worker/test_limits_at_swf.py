"""SWF's field limits where the worker cuts a value rather than fail (README, "SWF's limits
and what the framework does at each"), checked in what the dev server recorded."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from heartbeat_worker import Worker
from swfkit import SWFKit, attributes

from . import activities
from .activities import event
from .test_worker_devserver import (
    closing_event,
    history,
    request_cancel,
    schedule,
    wait_threading_event,
)

pytestmark = pytest.mark.anyio

MakeWorker = Callable[..., Worker]

DATA_MAX = 32_768
IDENTITY_MAX = 256


async def test_oversized_cancel_details_become_a_json_marker_within_32768_characters(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    event("long_details.started").clear()
    async with make_worker([activities.cancelled_with_long_details]):
        execution = await schedule(swfkit, "cancelled_with_long_details", 40_000)
        await wait_threading_event("long_details.started")
        await request_cancel(swfkit, execution)
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCanceled"
    details = attributes(closed)["details"]
    assert len(details) <= DATA_MAX
    marker = json.loads(details)  # still JSON, unlike JSON cut anywhere
    encoded = json.dumps("HEAD" + "x" * 40_000 + "TAIL")
    assert marker["truncated"] is True
    assert marker["length"] == len(encoded)
    assert encoded.startswith(marker["start"])  # the beginning is kept, as a string
    assert marker["start"].startswith('"HEADxx')
    assert marker["dropped"] == len(encoded) - len(marker["start"])


async def test_the_identity_is_cut_to_256_characters(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    identity = "host-" + "w" * 300 + "-END"
    async with make_worker([activities.add], identity=identity):
        execution = await schedule(swfkit, "add", [1, 2])
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCompleted"
    events = await history(swfkit, execution)
    started = next(e for e in events if e["eventType"] == "ActivityTaskStarted")
    recorded = attributes(started)["identity"]
    assert len(recorded) == IDENTITY_MAX
    assert recorded.startswith("host-www")  # the beginning is kept
    assert "END" not in recorded
