from __future__ import annotations

from tests.worker.activities import add

from heartbeat_worker import Worker

worker = Worker("hw-test", "hw-activities", [add])
