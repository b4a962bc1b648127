from __future__ import annotations

import pytest
from aiobotocore.session import get_session

from heartbeat_worker._swf import open_connection
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
