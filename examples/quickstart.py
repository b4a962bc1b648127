"""The quick start: one activity, no heartbeat code, progress and cancellation for free.

Serve it (from the repository root) and run it once::

    heartbeat-worker dev-server &
    heartbeat-worker run examples.quickstart --domain demo --task-list images \
        --endpoint-url http://127.0.0.1:8866 --register &
    heartbeat-worker execute resize --domain demo --task-list images \
        --endpoint-url http://127.0.0.1:8866 --input '{"images": ["a.png", "b.png"]}'
"""

from __future__ import annotations

import anyio

from heartbeat_worker import activity, heartbeat


@activity(heartbeat_timeout=10, start_to_close_timeout=3600)
async def resize(job: dict[str, list[str]]) -> dict[str, int]:
    for done, image in enumerate(job["images"], start=1):
        await anyio.sleep(0.5)  # the real work; heartbeats go out in the background
        heartbeat({"done": done, "of": len(job["images"]), "last": image})
    return {"resized": len(job["images"])}


if __name__ == "__main__":
    from examples._serve import serve

    serve("examples.quickstart")
