"""Finding the activities named on the command line: ``module`` or ``module:attribute``."""

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
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(f"cannot import {module_name!r}: {error}") from error
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
