from __future__ import annotations

import pytest
from aiobotocore.session import get_session

import heartbeat_worker
from heartbeat_worker._swf import USER_AGENT, open_connection
from heartbeat_worker.devserver import DevServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")


@pytest.mark.usefixtures("no_aws_configuration")
async def test_loopback_endpoint_needs_no_region_nor_credentials(dev_server: DevServer) -> None:
    session = get_session()
    async with open_connection(endpoint_url=dev_server.endpoint_url, session=session) as swf:
        reply = await swf.call_client.list_domains(registrationStatus="REGISTERED")
    assert reply["domainInfos"] == []
    # Credentials were looked for without asking the network (instance metadata).
    methods = [p.METHOD for p in session.get_component("credential_provider").providers]
    assert "iam-role" not in methods
    assert "container-role" not in methods


@pytest.mark.usefixtures("no_aws_configuration")
async def test_loopback_endpoint_from_the_environment(
    dev_server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SWF", dev_server.endpoint_url)
    async with open_connection() as swf:
        reply = await swf.call_client.list_domains(registrationStatus="REGISTERED")
    assert reply["domainInfos"] == []


async def test_requests_name_the_framework_in_their_user_agent(dev_server: DevServer) -> None:
    sent: list[str] = []

    def record(request: object, **_: object) -> None:
        sent.append(request.headers["User-Agent"].decode())  # type: ignore[attr-defined]

    async with open_connection(endpoint_url=dev_server.endpoint_url) as swf:
        for client in (swf.poll_client, swf.call_client):
            client.meta.events.register("before-send.swf.*", record)
            await client.list_domains(registrationStatus="REGISTERED")
    assert len(sent) == 2
    assert all(header.startswith(USER_AGENT) for header in sent)
    assert USER_AGENT.startswith(f"heartbeat-worker/{heartbeat_worker.__version__} ")
