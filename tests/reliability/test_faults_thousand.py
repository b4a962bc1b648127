"""1,000 short activities while 20% of the worker's SWF calls fail."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import anyio
import pytest

from heartbeat_worker import Worker
from heartbeat_worker.devserver import DevServer

from . import activities
from .decide import Decider, attributes, report
from .secrecy import LogCapture

pytestmark = pytest.mark.anyio

COUNT = 1000
HANG_GUARD = 140.0
"""Not a figure (the report prints the time taken): about 45 s on an idle 2-core machine,
60 s beside two CPU burners."""
TASK_LIST = "thousand"
ANSWERS = [
    "RecordActivityTaskHeartbeat",
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondActivityTaskCanceled",
]
OTHERS = ["PollForActivityTask", "DescribeActivityType", "RegisterDomain", "RegisterActivityType"]


def inject_twenty_percent(server: DevServer) -> None:
    """20% of every call the worker makes fails: throttled, 500, or a broken connection
    (for answers and heartbeats, a quarter of those broken connections lose the reply after
    the call was applied); a tenth of the calls also answer 50 ms late."""
    faults = server.faults
    worker_calls = ANSWERS + OTHERS
    faults.add("throttle", operation=worker_calls, probability=0.07)
    faults.add("error", operation=worker_calls, probability=0.07)
    faults.add("drop", operation=worker_calls, probability=0.045)
    # A lost poll reply loses the task until its timeout, on SWF as here: not for polls.
    faults.add("drop-reply", operation=ANSWERS, probability=0.015)
    faults.add("drop", operation=OTHERS, probability=0.015)
    faults.add("latency", operation=worker_calls, probability=0.1, latency=0.05)


@pytest.mark.timeout(HANG_GUARD + 30)
async def test_a_thousand_activities_complete_once_with_a_fifth_of_calls_failing(
    server: DevServer,
    decider: Decider,
    make_worker: Callable[..., Worker],
    logs: LogCapture,
) -> None:
    execution = await decider.schedule("quick", list(range(COUNT)), task_list=TASK_LIST)
    inject_twenty_percent(server)
    worker = make_worker([activities.quick], TASK_LIST, max_concurrency=250, pollers=10)
    started = time.monotonic()
    async with worker:
        with anyio.fail_after(HANG_GUARD):
            await worker.wait_handled(COUNT)
        elapsed = time.monotonic() - started
        server.faults.clear()
    found = await decider.outcomes(execution)

    kinds = found.kinds()
    assert kinds == Counter({"ActivityTaskCompleted": COUNT}), kinds
    assert found.duplicates() == 0
    for index in range(COUNT):
        assert attributes(found.closing(f"a{index}"))["result"] == str(index * index)
    assert worker.outcomes == {"completed": COUNT}

    faults = server.faults
    calls = sum(faults.calls.values())
    refused = faults.total() - faults.total("latency")
    lost_replies = faults.total("drop-reply")
    already_recorded = len(logs.events("SWF no longer knows the task"))
    assert refused / calls > 0.17
    report(
        "1,000 activities, 20% of SWF calls failing",
        {
            "worker's SWF calls": calls,
            "failed by injection": f"{refused} ({100 * refused / calls:.1f}%)",
            "  throttled (400)": faults.total("throttle"),
            "  internal failure (500)": faults.total("error"),
            "  connection dropped": faults.total("drop"),
            "  reply lost after applying": lost_replies,
            "delayed 50 ms": faults.total("latency"),
            "retries logged": len(logs.events("swf call failed; retrying")),
            "failed polls backed off": len(logs.events("poll failed")),
            "answers found recorded on retry": already_recorded,
            "ActivityTaskCompleted": kinds["ActivityTaskCompleted"],
            "ActivityTaskFailed": kinds["ActivityTaskFailed"],
            "ActivityTaskTimedOut": kinds["ActivityTaskTimedOut"],
            "duplicated answers": found.duplicates(),
            "wall time": f"{elapsed:.1f} s",
        },
    )
