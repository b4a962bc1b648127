"""The dev server's status page: its JSON view, its HTML, and the page in a real browser."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from heartbeat_worker._logging import token_hash
from heartbeat_worker.devserver import DevServer, _status
from swfkit import DOMAIN, SWFKit, schedule_activity_decision

pytestmark = pytest.mark.anyio

Json = dict[str, Any]

ACTIVITY_ID = "activity-1"
HOSTILE = "<script>window.injected = true</script><img src=x onerror=\"alert('x')\">&amp;"


async def _get(server: DevServer, path: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as session, session.get(server.endpoint_url + path) as r:
        await r.read()
        return r


async def _status_json(server: DevServer) -> Json:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.endpoint_url}/status.json") as reply,
    ):
        assert reply.status == 200
        assert reply.content_type == "application/json"
        result: Json = await reply.json()
        return result


async def _page(server: DevServer) -> str:
    async with aiohttp.ClientSession() as session, session.get(server.endpoint_url) as reply:
        assert reply.status == 200
        assert reply.content_type == "text/html"
        assert "script-src 'sha256-" in reply.headers["Content-Security-Policy"]
        return await reply.text()


async def _start(swfkit: SWFKit, **timeouts: str) -> Json:
    options = {
        "heartbeat_timeout": "30",
        "start_to_close_timeout": "60",
        "schedule_to_close_timeout": "120",
        **timeouts,
    }
    return await swfkit.start_activity(ACTIVITY_ID, **options)


async def test_the_json_view_follows_a_running_activity(
    dev_server: DevServer, swf_client: Any, swfkit: SWFKit
) -> None:
    task = await _start(swfkit)
    await swf_client.record_activity_task_heartbeat(
        taskToken=task["taskToken"], details='{"rows": 10}'
    )
    first = await _status_json(dev_server)

    assert [d["name"] for d in first["domains"]] == [DOMAIN]
    assert first["domains"][0]["open_executions"] == 1
    assert first["open_executions"] == 1
    [execution] = first["executions"]
    assert execution["workflow_id"] == task["workflowExecution"]["workflowId"]
    assert execution["open_activity_tasks"] == 1
    assert 0 < execution["time_left"] <= 300
    assert first["open_activity_tasks"] == 1
    [view] = first["activity_tasks"]
    assert view["activity_id"] == ACTIVITY_ID
    assert view["state"] == "started"
    assert view["details"] == '{"rows": 10}'
    assert view["heartbeats"] == 1
    assert view["last_heartbeat_at"] <= first["taken_at"]
    assert view["cancel_requested"] is False
    assert view["timeouts"] == {
        "heartbeat": 30.0,
        "start_to_close": 60.0,
        "schedule_to_close": 120.0,
        "schedule_to_start": None,
    }
    left = view["time_left"]
    # Wide margins: a loaded machine may take seconds between the calls.
    assert 20 < left["heartbeat"] <= 30
    assert 50 < left["start_to_close"] <= 60
    assert 110 < left["schedule_to_close"] <= 120
    assert left["schedule_to_start"] is None  # started: that timeout is over
    # The token stays secret: only the digest worker logs also carry is shown.
    assert view["token_hash"] == token_hash(task["taskToken"])
    assert task["taskToken"] not in json.dumps(first)

    await asyncio.sleep(0.3)
    await swfkit.request_cancel_activity(ACTIVITY_ID)
    second = await _status_json(dev_server)
    [view] = second["activity_tasks"]
    assert view["cancel_requested"] is True
    for timeout in ("heartbeat", "start_to_close", "schedule_to_close"):
        assert view["time_left"][timeout] <= left[timeout] - 0.25, timeout

    # A heartbeat resets the heartbeat clock, not the others.
    await swf_client.record_activity_task_heartbeat(taskToken=task["taskToken"], details="later")
    third = await _status_json(dev_server)
    [after] = third["activity_tasks"]
    assert after["details"] == "later"
    assert after["time_left"]["heartbeat"] > view["time_left"]["heartbeat"]
    assert after["time_left"]["start_to_close"] <= view["time_left"]["start_to_close"]

    await swf_client.respond_activity_task_canceled(taskToken=task["taskToken"])
    closed = await _status_json(dev_server)
    assert closed["activity_tasks"] == []
    assert closed["open_activity_tasks"] == 0


async def test_the_json_view_names_the_worker_and_the_progress(
    dev_server: DevServer, swf_client: Any, swfkit: SWFKit
) -> None:
    task = await _start(swfkit)
    await swf_client.record_activity_task_heartbeat(
        taskToken=task["taskToken"], details='{"done": 2, "total": 8, "phase": "load"}'
    )

    [view] = (await _status_json(dev_server))["activity_tasks"]
    assert view["identity"] == "swfkit"
    assert view["progress"] == {"done": 2, "total": 8}
    page = await _page(dev_server)
    assert '<progress max="1" value="0.2500"></progress>' in page
    assert "2 / 8" in page

    await swf_client.record_activity_task_heartbeat(taskToken=task["taskToken"], details="7 rows")
    [view] = (await _status_json(dev_server))["activity_tasks"]
    assert view["progress"] is None


async def test_open_polls_show_their_worker_and_age(dev_server: DevServer, swfkit: SWFKit) -> None:
    polling = asyncio.create_task(
        swfkit.client.poll_for_activity_task(
            domain=DOMAIN, taskList={"name": "idle-list"}, identity="worker-7"
        )
    )
    try:
        async with asyncio.timeout(5):
            while True:
                status = await _status_json(dev_server)
                if status["polls"]:
                    break
                await asyncio.sleep(0.02)
        [poll] = status["polls"]
        assert poll["kind"] == "activity"
        assert poll["domain"] == DOMAIN
        assert poll["task_list"] == "idle-list"
        assert poll["identity"] == "worker-7"
        assert 0 <= poll["age"] < 5
        assert "worker-7" in await _page(dev_server)
    finally:
        await polling
    assert (await _status_json(dev_server))["polls"] == []


async def test_closed_executions_say_how_each_ended(
    dev_server: DevServer, swf_client: Any, swfkit: SWFKit
) -> None:
    async def close(decision_type: str, **attributes: str) -> None:
        await swfkit.start()
        key = decision_type[0].lower() + decision_type[1:] + "DecisionAttributes"
        await swfkit.decide([{"decisionType": decision_type, key: attributes}])

    await close("CompleteWorkflowExecution", result="42")
    await close("FailWorkflowExecution", reason="disk full")
    await close("CancelWorkflowExecution")
    execution = await swfkit.start()
    await swf_client.terminate_workflow_execution(
        domain=DOMAIN, workflowId=execution["workflowId"], reason="by hand"
    )
    timing_out = await swfkit.start(executionStartToCloseTimeout="1")
    async with asyncio.timeout(10):
        while True:
            status = await _status_json(dev_server)
            if len(status["closed_executions"]) == 5:
                break
            await asyncio.sleep(0.05)

    endings = [x["ending"] for x in status["closed_executions"]]
    assert endings == [
        "timed out (START_TO_CLOSE)",
        "terminated: by hand",
        "canceled",
        "failed: disk full",
        "completed",
    ]
    newest = status["closed_executions"][0]
    assert newest["workflow_id"] == timing_out["workflowId"]
    assert newest["closed_at"] >= newest["started_at"]
    page = await _page(dev_server)
    assert "failed: disk full" in page
    assert "Recently closed executions" in page


async def test_a_scheduled_task_shows_its_schedule_to_start_time_left(
    dev_server: DevServer, swfkit: SWFKit
) -> None:
    await swfkit.start()
    await swfkit.schedule_activity(
        ACTIVITY_ID, heartbeat_timeout="30", schedule_to_start_timeout="45"
    )
    [view] = (await _status_json(dev_server))["activity_tasks"]
    assert view["state"] == "scheduled"
    assert view["token_hash"] is None
    assert view["time_left"]["heartbeat"] is None  # its clock starts with the task
    assert 35 < view["time_left"]["schedule_to_start"] <= 45
    page = await _page(dev_server)
    assert "starts within " in page
    assert "not started" in page


async def test_the_page_escapes_details(
    dev_server: DevServer, swf_client: Any, swfkit: SWFKit
) -> None:
    task = await _start(swfkit)
    await swf_client.record_activity_task_heartbeat(taskToken=task["taskToken"], details=HOSTILE)

    page = await _page(dev_server)

    assert html.escape(HOSTILE, quote=True) in page
    assert "<img" not in page
    assert "window.injected" not in page.replace(html.escape(HOSTILE, quote=True), "")
    assert len(re.findall(r"<script", page)) == 1  # the page's own
    assert task["taskToken"] not in page
    assert token_hash(task["taskToken"]) in page
    # The JSON view carries the details as data, for the script to set as text.
    [view] = (await _status_json(dev_server))["activity_tasks"]
    assert view["details"] == HOSTILE


async def test_the_page_without_anything_open(dev_server: DevServer) -> None:
    page = await _page(dev_server)
    assert "No domains registered." in page
    assert "No open workflow executions." in page
    assert "No open activity tasks." in page


async def test_long_details_and_many_tasks_are_cut(
    dev_server: DevServer, swf_client: Any, swfkit: SWFKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_status, "LIMIT", 1)
    task = await _start(swfkit)
    await swf_client.record_activity_task_heartbeat(
        taskToken=task["taskToken"], details="x" * (_status.DETAILS_MAX + 10)
    )
    await swfkit.decide([schedule_activity_decision("second")])
    await swfkit.start()

    data = await _status_json(dev_server)
    assert data["open_executions"] == 2
    assert len(data["executions"]) == 1
    assert data["open_activity_tasks"] == 2
    [view] = data["activity_tasks"]
    assert view["details"] == "x" * _status.DETAILS_MAX
    assert view["details_truncated"] is True
    assert "(1 of 2)" in await _page(dev_server)


async def test_injected_faults_leave_the_page_alone(dev_server: DevServer) -> None:
    dev_server.faults.add("error")
    dev_server.faults.add("drop")
    assert (await _get(dev_server, "/")).status == 200
    assert (await _get(dev_server, "/status.json")).status == 200
    assert dev_server.faults.total() == 0


# The page in a real browser: Debian's chromium, driven through the DevTools protocol.

_CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
_DEADLINE = 15.0
# Chromium starts several processes before it prints its DevTools endpoint: beside the
# suite on a busy 2-core machine that took more than 15 s.
_START_DEADLINE = 60.0


class _Page:
    """One browser tab, reached over a DevTools websocket with a flat session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next_id = 0
        self.session_id: str | None = None

    async def send(self, method: str, **params: Any) -> Json:
        self._next_id += 1
        message: Json = {"id": self._next_id, "method": method, "params": params}
        if self.session_id is not None:
            message["sessionId"] = self.session_id
        await self._ws.send_json(message)
        while True:
            reply = await self._ws.receive_json()
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply
                result: Json = reply["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _DEADLINE
        # Until the page has loaded, the expression may throw: that counts as not yet.
        guarded = (
            f"(() => {{ try {{ return Boolean({expression}); }} catch {{ return false; }} }})()"
        )
        while not await self.evaluate(guarded):
            if loop.time() > give_up:
                text = await self.evaluate("document.body.innerText")
                pytest.fail(f"the page did not show {what} within {_DEADLINE} s:\n{text}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _browser_page(url: str, profile: Path) -> AsyncIterator[_Page]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed: the browser test needs it (apt-get install chromium)")
    process = await asyncio.create_subprocess_exec(
        chromium,
        *_CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    drain: asyncio.Task[None] | None = None
    try:
        endpoint = None
        async with asyncio.timeout(_START_DEADLINE):
            while endpoint is None:
                line = await process.stderr.readline()
                if not line:
                    pytest.fail("chromium exited before its DevTools endpoint was up")
                found = re.search(rb"DevTools listening on (ws://\S+)", line)
                endpoint = found.group(1).decode() if found else None

        async def discard(stream: asyncio.StreamReader) -> None:
            while await stream.read(65536):
                pass

        drain = asyncio.create_task(discard(process.stderr))
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(endpoint, max_msg_size=0) as ws,
        ):
            page = _Page(ws)
            target = await page.send("Target.createTarget", url=url)
            attached = await page.send(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            page.session_id = attached["sessionId"]
            yield page
            page.session_id = None
            with contextlib.suppress(Exception):
                await page.send("Browser.close")
    finally:
        if process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            await drain


async def test_the_page_refreshes_in_a_browser(
    dev_server: DevServer, swf_client: Any, swfkit: SWFKit, tmp_path: Path
) -> None:
    # Beside busy processes Chromium can take tens of seconds to start: the task, beaten
    # only by hand, must outlive that.
    task = await _start(
        swfkit,
        heartbeat_timeout="600",
        start_to_close_timeout="1200",
        schedule_to_close_timeout="1800",
    )
    token = task["taskToken"]
    await swf_client.record_activity_task_heartbeat(taskToken=token, details="step 1 <b>bold</b>")

    async with _browser_page(dev_server.endpoint_url + "/", tmp_path / "profile") as page:
        tasks = "document.querySelector('#tasks tbody').textContent"
        await page.wait_for(f"{tasks}.includes('step 1 <b>bold</b>')", "the first details")
        assert await page.evaluate("document.querySelectorAll('#tasks b').length") == 0

        # Only the script's refresh can bring these in.
        await swf_client.record_activity_task_heartbeat(taskToken=token, details=HOSTILE)
        await page.wait_for(f"{tasks}.includes({json.dumps(HOSTILE)})", "the new details")
        await swfkit.request_cancel_activity(ACTIVITY_ID)
        await page.wait_for(f"{tasks}.includes('requested')", "the cancel request")

        assert await page.evaluate("typeof window.injected") == "undefined"
        assert await page.evaluate("document.querySelectorAll('#tasks script, img').length") == 0
        assert await page.evaluate("document.body.dataset.state") == "live"
        live = await page.evaluate("document.getElementById('live').textContent")
        assert live.startswith("updated ")
        body = await page.evaluate("document.body.innerText")
        assert token not in body
        assert token_hash(token) in body
        assert DOMAIN in body

        # Progress bars, the worker's identity, open polls and closed executions arrive
        # with the refresh too.
        await swf_client.record_activity_task_heartbeat(
            taskToken=token, details='{"done": 3, "total": 4}'
        )
        bar = "document.querySelector('#tasks progress')"
        await page.wait_for(f"{bar} && {bar}.value === 0.75", "the progress bar")
        assert "3 / 4" in await page.evaluate(tasks)
        assert "swfkit" in await page.evaluate(tasks)
        polling = asyncio.create_task(
            swf_client.poll_for_activity_task(
                domain=DOMAIN, taskList={"name": "browser-polls"}, identity="poller-in-browser"
            )
        )
        polls = "document.querySelector('#polls tbody').textContent"
        await page.wait_for(f"{polls}.includes('poller-in-browser')", "the open poll")
        await polling
        await swf_client.respond_activity_task_canceled(taskToken=token)
        await swfkit.decide(
            [
                {
                    "decisionType": "FailWorkflowExecution",
                    "failWorkflowExecutionDecisionAttributes": {"reason": "rolled back"},
                }
            ]
        )
        closed = "document.querySelector('#closed tbody').textContent"
        await page.wait_for(f"{closed}.includes('failed: rolled back')", "the closed execution")
