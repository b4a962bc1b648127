from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from heartbeat_worker.devserver import DevServer, ThreadedDevServer
from swfkit import SWFKit

# A poll answers empty after this long: short, so tests that wait for nothing stay fast.
TEST_POLL_TIMEOUT = 1.0
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def swf_client_config() -> Any:
    """Client settings for the dev server: no retries (a retried poll or answer would hide
    server behaviour) and a read timeout well above the poll timeout."""
    from botocore.config import Config

    return Config(
        retries={"max_attempts": 1, "mode": "standard"},
        read_timeout=TEST_POLL_TIMEOUT + 10,
        connect_timeout=5,
        max_pool_connections=32,
    )


@pytest.fixture
async def dev_server() -> AsyncIterator[DevServer]:
    """A dev server in the test's event loop, on a free loopback port."""
    async with DevServer(poll_timeout=TEST_POLL_TIMEOUT) as server:
        yield server


@pytest.fixture
async def swf_client(dev_server: DevServer) -> AsyncIterator[Any]:
    """An aiobotocore SWF client pointed at ``dev_server``."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(
        retries={"max_attempts": 1, "mode": "standard"},
        read_timeout=TEST_POLL_TIMEOUT + 10,
        connect_timeout=5,
        max_pool_connections=32,
    )
    async with get_session().create_client(
        "swf",
        region_name="us-east-1",
        endpoint_url=dev_server.endpoint_url,
        config=config,
        **DUMMY_CREDENTIALS,
    ) as client:
        yield client


@pytest.fixture
async def swfkit(swf_client: Any) -> SWFKit:
    """An :class:`SWFKit` on ``swf_client`` with its domain and default types registered."""
    kit = SWFKit(swf_client)
    await kit.setup()
    return kit


@pytest.fixture
def threaded_dev_server() -> Iterator[ThreadedDevServer]:
    """A dev server in a thread of its own, for synchronous clients."""
    with DevServer(poll_timeout=TEST_POLL_TIMEOUT).in_thread() as server:
        yield server


@pytest.fixture
def boto3_swf_client(threaded_dev_server: ThreadedDevServer) -> Iterator[Any]:
    """A boto3 SWF client pointed at ``threaded_dev_server``."""
    import boto3

    client = boto3.client(
        "swf",
        region_name="us-east-1",
        endpoint_url=threaded_dev_server.endpoint_url,
        config=swf_client_config(),
        **DUMMY_CREDENTIALS,
    )
    yield client
    client.close()
