"""Typed payloads: the CPU a task spends turning its input into arguments and its result
into JSON, with and without type hints.

Each row runs what the worker runs for one task, in-process and without SWF: the input
string bound to the activity's signature and converted by its hints
(``_codec.bind_input``), and the return value encoded (``_codec.encode_result``). The
payload is the same order in every row (3 lines, about 400 characters of JSON): as a plain
dict for the activity without hints, as nested dataclasses (with a UUID, datetimes, an enum
and Decimals) for the typed one, and as a pydantic model when pydantic is installed. The
baseline is ``json.loads`` plus ``json.dumps`` of the same payload, which is what any JSON
worker must do. CPU time per task is the best of several rounds (``time.process_time``).

    python benchmarks/typed_payloads.py [--tasks 20000] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from _common import machine, table
from heartbeat_worker import activity
from heartbeat_worker._codec import bind_input, encode_result, signature_hints
from heartbeat_worker._converter import DEFAULT_CONVERTER


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


@dataclasses.dataclass
class Line:
    sku: str
    price: Decimal
    quantity: int


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    placed_at: datetime
    due: date
    priority: Priority
    lines: list[Line]
    note: str | None = None


@dataclasses.dataclass
class Summary:
    order: uuid.UUID
    total: Decimal
    lines: int
    order_echo: Order


ORDER_JSON = json.dumps(
    {
        "id": "12345678-1234-5678-1234-567812345678",
        "placed_at": "2026-12-02T06:30:00+00:00",
        "due": "2026-12-24",
        "priority": "high",
        "lines": [
            {"sku": f"sku-{index}", "price": f"{index}.10", "quantity": index}
            for index in (1, 2, 3)
        ],
        "note": "leave at the door",
    }
)


@activity
def untyped(order):  # type: ignore[no-untyped-def]
    return {
        "order": order["id"],
        "total": "14.60",
        "lines": len(order["lines"]),
        "order_echo": order,
    }


@activity
def typed(order: Order) -> Summary:
    return Summary(order.id, Decimal("14.60"), len(order.lines), order)


def _pydantic_activity() -> Any:
    try:
        import pydantic
    except ImportError:
        return None

    class PLine(pydantic.BaseModel):
        sku: str
        price: Decimal
        quantity: int

    class POrder(pydantic.BaseModel):
        id: uuid.UUID
        placed_at: datetime
        due: date
        priority: Priority
        lines: list[PLine]
        note: str | None = None

    class PSummary(pydantic.BaseModel):
        order: uuid.UUID
        total: Decimal
        lines: int
        order_echo: POrder

    def model(order: POrder) -> PSummary:
        return PSummary(order=order.id, total=Decimal("14.60"), lines=3, order_echo=order)

    model.__annotations__ = {"order": POrder, "return": PSummary}
    return activity(name="pydantic")(model)


def _task(definition: Any) -> Callable[[], None]:
    hints = signature_hints(definition.function)

    def run() -> None:
        bound = bind_input(
            definition.signature, ORDER_JSON, converter=DEFAULT_CONVERTER, hints=hints
        )
        encode_result(definition.function(*bound.args, **bound.kwargs), DEFAULT_CONVERTER)

    return run


def _raw() -> None:
    order = json.loads(ORDER_JSON)
    json.dumps({"order": order["id"], "total": "14.60", "lines": 3, "order_echo": order})


def _cpu_per_task(task: Callable[[], None], tasks: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(tasks):
            task()
        best = min(best, (time.process_time() - started) / tasks)
    return best


def main(args: argparse.Namespace) -> int:
    print(
        f"typed payloads: CPU per task to bind the input and encode the result, "
        f"best of {args.rounds} rounds of {args.tasks} tasks"
    )
    print(f"machine: {machine()}")
    bound = bind_input(typed.signature, ORDER_JSON, hints=signature_hints(typed.function))
    assert bound.arguments["order"].lines[0].price == Decimal("1.10")
    rows: list[tuple[str, Callable[[], None]]] = [
        ("json.loads + json.dumps (baseline)", _raw),
        ("no type hints (typed payloads off)", _task(untyped)),
        ("nested dataclasses", _task(typed)),
    ]
    pydantic_activity = _pydantic_activity()
    if pydantic_activity is not None:
        rows.append(("pydantic v2 models", _task(pydantic_activity)))
    baseline = None
    results = []
    for label, task in rows:
        task()  # warm the caches (hints, plans) as the first task of a worker does
        per_task = _cpu_per_task(task, args.tasks, args.rounds)
        baseline = baseline or per_task
        results.append((label, f"{per_task * 1e6:.1f}", f"{per_task / baseline:.2f}x"))
    print(table(["payload", "CPU us/task", "vs baseline"], results))
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.rounds = 500, 2
    return args


if __name__ == "__main__":
    started = time.monotonic()
    code = main(parse())
    print(f"({time.monotonic() - started:.0f} s)")
    sys.exit(code)
