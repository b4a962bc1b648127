"""The example test in docs/testing.md runs and passes, so the documentation stays true."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

_DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def _example_tests() -> dict[str, Callable[[], Any]]:
    blocks = re.findall(r"```python\n(.*?)```", _DOC.read_text(encoding="utf-8"), re.DOTALL)
    (code,) = [block for block in blocks if block.startswith("# test_resize.py")]
    namespace: dict[str, Any] = {"__name__": "test_resize"}
    exec(compile(code, str(_DOC), "exec"), namespace)
    return {name: value for name, value in namespace.items() if name.startswith("test_")}


_TESTS = _example_tests()


def test_the_example_has_its_tests() -> None:
    assert len(_TESTS) == 4


@pytest.mark.parametrize("name", sorted(_TESTS))
def test_documented_example(name: str) -> None:
    function = _TESTS[name]
    if inspect.iscoroutinefunction(function):
        anyio.run(function, backend="asyncio")
    else:
        function()
