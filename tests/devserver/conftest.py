from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import boto3
import pytest

from heartbeat_worker.devserver import DevServer
from swfkit import DUMMY_CREDENTIALS, AsyncBoto3, SWFKit, client_config

RawCall = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture(params=["aiobotocore", "boto3"])
async def kit(
    request: pytest.FixtureRequest, dev_server: DevServer, swf_client: Any
) -> AsyncIterator[SWFKit]:
    """An :class:`SWFKit` set up on the dev server, through each SDK in turn."""
    if request.param == "aiobotocore":
        result = SWFKit(swf_client)
        await result.setup()
        yield result
        return
    sync = boto3.client(
        "swf",
        region_name="us-east-1",
        endpoint_url=dev_server.endpoint_url,
        config=client_config(),
        **DUMMY_CREDENTIALS,
    )
    try:
        result = SWFKit(AsyncBoto3(sync))
        await result.setup()
        yield result
    finally:
        sync.close()


@pytest.fixture
async def raw(dev_server: DevServer) -> AsyncIterator[RawCall]:
    """Call the dev server without an SDK: ``await raw("Operation", body)`` gives
    ``(status, json)``; ``data=`` sends bytes as they are, ``target=`` any header."""
    async with aiohttp.ClientSession() as session:

        async def call(
            operation: str,
            body: Any = None,
            *,
            data: bytes | None = None,
            target: str | None = None,
        ) -> tuple[int, Any]:
            payload = data if data is not None else aiohttp.payload.JsonPayload(body or {})
            headers = {
                "X-Amz-Target": target or f"SimpleWorkflowService.{operation}",
                "Content-Type": "application/x-amz-json-1.0",
            }
            async with session.post(dev_server.endpoint_url, data=payload, headers=headers) as r:
                return r.status, await r.json(content_type=None)

        yield call
