from __future__ import annotations

import pytest

from heartbeat_worker import Activity, ConfigurationError, activity
from heartbeat_worker._definition import format_timeout


@activity
async def bare(x: int) -> int:
    return x + 1


@activity(name="renamed", version="2", task_list="etl", heartbeat_timeout=None)
def configured(x: int) -> int:
    return x * 2


async def test_decorated_functions_stay_callable() -> None:
    assert await bare(1) == 2
    assert configured(3) == 6


def test_decorator_records_the_activity_type() -> None:
    assert isinstance(bare, Activity)
    assert bare.is_coroutine
    assert bare.activity_type.key == ("bare", "1")
    assert not configured.is_coroutine
    assert configured.activity_type.key == ("renamed", "2")
    assert configured.activity_type.registration_defaults() == {
        "defaultTaskHeartbeatTimeout": "NONE",
        "defaultTaskStartToCloseTimeout": "NONE",
        "defaultTaskScheduleToStartTimeout": "NONE",
        "defaultTaskScheduleToCloseTimeout": "NONE",
        "defaultTaskList": {"name": "etl"},
    }


def test_timeouts_render_as_swf_strings() -> None:
    assert format_timeout(None) == "NONE"
    assert format_timeout(30) == "30"
    assert format_timeout(0.5) == "0.5"
    with pytest.raises(ConfigurationError):
        format_timeout(0)


def test_bad_definitions_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="already an activity"):
        activity(bare)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="positive"):
        activity(heartbeat_timeout=-1)(lambda: None)

    def generator() -> object:
        yield 1

    with pytest.raises(ConfigurationError, match="generator"):
        activity(generator)


pytestmark = pytest.mark.anyio
