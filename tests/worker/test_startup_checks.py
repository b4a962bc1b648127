"""The worker's start-up checks, through its public read-out ``startup_checks_passed``."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from heartbeat_worker import StartupError, Worker, WorkerStoppedError
from heartbeat_worker._preflight import STARTUP_PATIENCE
from heartbeat_worker.devserver import DevServer

from . import activities

pytestmark = pytest.mark.anyio


async def test_the_checks_pass_before_the_first_poll(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker([activities.add])
    assert worker.startup_checks_passed is False

    async with worker:
        assert worker.startup_checks_passed is True


async def test_a_type_that_is_not_registered_stops_the_worker_before_polling(
    make_worker: Callable[..., Worker],
) -> None:
    # Registered once for the domain, then a worker that serves a type nobody registered.
    async with make_worker([activities.add]):
        pass
    worker = make_worker([activities.add, activities.failing], register_types=False)

    with anyio.fail_after(10), pytest.raises(StartupError, match="failing:1 not registered"):
        await worker.run()
    assert worker.startup_checks_passed is False
    assert worker.polls_open == 0


async def test_an_unknown_domain_names_the_fix(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker([activities.add], register_types=False)
    worker.domain = "never-registered"

    with anyio.fail_after(10), pytest.raises(StartupError) as raised:
        await worker.run()
    assert "domain 'never-registered' does not exist" in str(raised.value)
    assert "--register" in str(raised.value)
    assert raised.value.exit_status == 2


def test_errors_carry_their_exit_status() -> None:
    assert StartupError("x").exit_status == 2
    assert WorkerStoppedError("x").exit_status == 3
    assert StartupError("x", exit_status=7).exit_status == 7


async def test_throttling_at_start_up_is_waited_out(
    make_worker: Callable[..., Worker], dev_server: DevServer
) -> None:
    # Longer than a refused connection is given: a fleet restarting at once gets throttled.
    dev_server.faults.add("throttle", operation="DescribeDomain", duration=STARTUP_PATIENCE + 1)
    worker = make_worker([activities.add])

    with anyio.fail_after(STARTUP_PATIENCE + 20):
        async with worker:
            assert worker.startup_checks_passed is True
    assert dev_server.faults.total("throttle", "DescribeDomain") >= 2
