"""The example tests shown in the documentation run and pass, so the documentation stays true."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

_ROOT = Path(__file__).resolve().parents[1]

# (document, first line of the code block, number of tests it defines)
_EXAMPLES = [
    ("docs/testing.md", "# test_resize.py", 4),
    ("README.md", "# test_quickstart.py", 1),
]


def _example_tests(document: str, first_line: str) -> dict[str, Callable[[], Any]]:
    path = _ROOT / document
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    (code,) = [block for block in blocks if block.startswith(first_line)]
    namespace: dict[str, Any] = {"__name__": first_line.removeprefix("# ").removesuffix(".py")}
    exec(compile(code, str(path), "exec"), namespace)
    return {name: value for name, value in namespace.items() if name.startswith("test_")}


_TESTS = {
    (document, name): function
    for document, first_line, _ in _EXAMPLES
    for name, function in _example_tests(document, first_line).items()
}


@pytest.mark.parametrize(("document", "first_line", "count"), _EXAMPLES)
def test_each_example_has_its_tests(document: str, first_line: str, count: int) -> None:
    assert len(_example_tests(document, first_line)) == count


@pytest.mark.parametrize(("document", "name"), sorted(_TESTS))
def test_documented_example(document: str, name: str) -> None:
    function = _TESTS[document, name]
    if inspect.iscoroutinefunction(function):
        anyio.run(function, backend="asyncio")
    else:
        function()
