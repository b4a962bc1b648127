from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from heartbeat_worker.devserver import DevServer, ThreadedDevServer
from swfkit import DUMMY_CREDENTIALS, TEST_POLL_TIMEOUT, SWFKit, aio_client, client_config


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def dev_server() -> AsyncIterator[DevServer]:
    """A dev server in the test's event loop, on a free loopback port, with a 1 s poll timeout."""
    async with DevServer(poll_timeout=TEST_POLL_TIMEOUT) as server:
        yield server


@pytest.fixture
def task_tokens() -> set[str]:
    """Every task token the test's workers received (see ``swfkit.record_task_tokens``)."""
    return set()


@pytest.fixture
async def swf_client(dev_server: DevServer) -> AsyncIterator[Any]:
    """An aiobotocore SWF client pointed at ``dev_server`` (no retries, dummy credentials)."""
    async with aio_client(dev_server.endpoint_url) as client:
        yield client


@pytest.fixture
async def swfkit(swf_client: Any) -> SWFKit:
    """An :class:`swfkit.SWFKit` on ``swf_client``, its domain and default types registered."""
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
        config=client_config(),
        **DUMMY_CREDENTIALS,
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto_server process on a free loopback port: a second, independent SWF peer for
    what moto implements (no cancellation, no long polls, few timeouts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("moto_server did not start")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
async def moto_client(moto_url: str) -> AsyncIterator[Any]:
    """An aiobotocore SWF client pointed at ``moto_url``."""
    async with aio_client(moto_url) as client:
        yield client
