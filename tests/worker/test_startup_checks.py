"""The worker's start-up checks, through its public read-out ``startup_checks_passed``."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from heartbeat_worker import StartupError, Worker, WorkerStoppedError

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
