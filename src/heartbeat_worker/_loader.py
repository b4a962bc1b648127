"""Finding the activities named on the command line: ``module`` or ``module:attribute``.

The usual mistakes (a file path, ``myjobs.py``, a leading dot, a syntax error in the
module) surface from importlib as a ``TypeError`` or a page of its own frames; each is
turned into a :class:`~heartbeat_worker.ConfigurationError` of one line that gives the
right spelling, or the file, line and message of the syntax error.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from ._definition import Activity
from ._errors import ConfigurationError
from ._lifespan import LIFESPAN_MARK
from ._worker import Worker

__all__ = ["find_lifespan", "load_target"]


def load_target(target: str) -> list[Activity[..., Any]] | Worker:
    """Import ``target`` and return its activities, or the :class:`Worker` it names.

    ``module`` gives every :func:`~heartbeat_worker.activity` defined at the module's top
    level; ``module:attribute`` gives what the attribute holds: one activity, a list or
    tuple of them, or a configured ``Worker``. The current directory is importable, as with
    ``python -m``, so ``heartbeat-worker run examples.etl`` works from a checkout.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name:
        raise ConfigurationError(f"no module in target {target!r}; expected module[:attribute]")
    problem = _spelling_problem(module_name)
    if problem is not None:
        raise ConfigurationError(problem)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as error:
        where = os.path.relpath(error.filename) if error.filename else module_name
        raise ConfigurationError(
            f"syntax error in {where}, line {error.lineno}: {error.msg}"
        ) from None
    except ModuleNotFoundError as error:
        if error.name is not None and (
            module_name == error.name or module_name.startswith(error.name + ".")
        ):
            raise ConfigurationError(
                f"no module named {error.name!r} in {os.getcwd()} or on sys.path: check the "
                "spelling, or run from the directory that holds it"
            ) from None
        raise ConfigurationError(f"cannot import {module_name!r}: {error}") from None
    except ImportError as error:
        raise ConfigurationError(f"cannot import {module_name!r}: {error}") from None
    if not attribute:
        found = [value for value in vars(module).values() if isinstance(value, Activity)]
        if not found:
            raise ConfigurationError(f"module {module_name!r} defines no @activity functions")
        return found
    try:
        value: Any = module
        for part in attribute.split("."):
            value = getattr(value, part)
    except AttributeError:
        raise ConfigurationError(f"{module_name!r} has no attribute {attribute!r}") from None
    if isinstance(value, Worker):
        return value
    if isinstance(value, Activity):
        return [value]
    if isinstance(value, list | tuple) and value and all(isinstance(v, Activity) for v in value):
        return list(value)
    raise ConfigurationError(
        f"{target!r} is neither an activity, a list of activities, nor a Worker"
    )


def find_lifespan(target: str) -> Callable[[], Any] | None:
    """The module-level ``@heartbeat_worker.lifespan`` function of ``target``'s module, if
    it has one (after :func:`load_target` imported it); two of them are an error."""
    module = sys.modules.get(target.partition(":")[0])
    found = [
        value
        for value in vars(module or object()).values()
        if callable(value) and getattr(value, LIFESPAN_MARK, False)
    ]
    if len(found) > 1:
        raise ConfigurationError(f"{target!r} defines more than one @heartbeat_worker.lifespan")
    return found[0] if found else None


def _spelling_problem(module_name: str) -> str | None:
    """What is wrong with a module name that is really a path or a relative name."""
    path_like = "/" in module_name or "\\" in module_name or module_name.endswith(".py")
    if not path_like and not module_name.startswith("."):
        return None
    name = module_name.replace("\\", "/")
    name = name.removesuffix(".py")
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/").replace("/", ".").lstrip(".")
    if path_like:
        return (
            f"TARGET {module_name!r} is a file name; give the module name instead: {name} "
            "(run from the directory that holds it)"
        )
    return f"TARGET {module_name!r} is a relative module name; drop the leading dot: {name}"
