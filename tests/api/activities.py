"""Activities for the activity-API tests against the dev server."""

from __future__ import annotations

import dataclasses
import enum
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path

import anyio
import pydantic

from heartbeat_worker import ActivityFailed, CompleteLater, activity, current_activity, heartbeat

release = threading.Event()
"""Set by the tests to let stuck activities end once the test is over."""

pool_beats_sent = threading.Event()
pool_beats_seen = threading.Event()
"""The first is set by ``pool_heartbeats`` once its thread-pool thread heartbeated; the test
sets the second once SWF holds those details, which lets the activity finish."""

stuck_on_event_started = threading.Event()

token_file: Path | None = None
"""Where ``later`` stores its task token (the test points it into its tmp_path)."""


class Unit(enum.Enum):
    KG = "kg"
    LB = "lb"


@dataclasses.dataclass
class Parcel:
    weight: Decimal
    unit: Unit


@dataclasses.dataclass
class Shipment:
    id: str
    ship_on: date
    parcels: list[Parcel]


@dataclasses.dataclass
class Quote:
    shipment: Shipment
    total_kg: Decimal


@activity(heartbeat_timeout=5)
async def quote(shipment: Shipment) -> Quote:
    factor = {Unit.KG: Decimal(1), Unit.LB: Decimal("0.4536")}
    total = sum((parcel.weight * factor[parcel.unit] for parcel in shipment.parcels), Decimal(0))
    return Quote(shipment, total.quantize(Decimal("0.001")))


class Invoice(pydantic.BaseModel):
    customer: str
    amounts: list[Decimal]
    due: date


class Receipt(pydantic.BaseModel):
    customer: str
    total: Decimal


@activity(heartbeat_timeout=5)
async def pay(invoice: Invoice) -> Receipt:
    return Receipt(customer=invoice.customer, total=sum(invoice.amounts, Decimal(0)))


@activity(heartbeat_timeout=5)
async def refuse(customer: str) -> None:
    raise ActivityFailed(f"unknown customer {customer}", {"customer": customer}, non_retryable=True)


@activity(heartbeat_timeout=5)
async def flaky_once(customer: str) -> None:
    raise ActivityFailed(f"customer {customer} is busy")


@activity(heartbeat_timeout=3, progress_timeout=2)
def stuck_in_thread() -> None:
    heartbeat({"row": 7})
    while not release.is_set():
        time.sleep(0.05)  # stuck: no heartbeat() ever again


@activity(heartbeat_timeout=3, progress_timeout=2)
async def stuck_on_event() -> None:
    heartbeat({"row": 8})
    stuck_on_event_started.set()
    never = anyio.Event()
    await never.wait()  # stuck: the event never fires


@activity(heartbeat_timeout=3)
async def pool_heartbeats() -> str:
    handle = current_activity()

    def work() -> None:
        handle.heartbeat({"from": "pool", "thread": threading.current_thread().name})
        pool_beats_sent.set()
        pool_beats_seen.wait(15)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool") as pool:
        await anyio.to_thread.run_sync(lambda: pool.submit(work).result())
    return "done"


@activity(heartbeat_timeout=None, start_to_close_timeout=60)
def later() -> None:
    assert token_file is not None
    token_file.write_text(current_activity().task_token_for_later())
    raise CompleteLater
