"""Checkpoints: how a decider hands an activity the progress of a previous attempt.

When a task times out, SWF gives the decider the last heartbeat details it recorded (in the
``ActivityTaskTimedOut`` event). Those details are the natural checkpoint for the next
attempt, but ``ScheduleActivityTask`` has a single ``input`` field. So the decider wraps the
original input and the checkpoint in a small envelope::

    {"heartbeat_worker.checkpoint": <checkpoint>, "heartbeat_worker.input": <input>}

and the worker unwraps it before binding the input to the activity's parameters: the
activity receives its usual input, and the checkpoint through ``info().checkpoint``. Input
that is not exactly such an envelope passes through untouched.
"""

from __future__ import annotations

import json
from typing import Any

from ._limits import DATA_MAX, check_length

__all__ = ["CHECKPOINT_KEY", "INPUT_KEY", "unwrap_input", "with_checkpoint"]

CHECKPOINT_KEY = "heartbeat_worker.checkpoint"
INPUT_KEY = "heartbeat_worker.input"


def _is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {CHECKPOINT_KEY, INPUT_KEY}


def with_checkpoint(input: Any, checkpoint: Any) -> str:
    """Build the ``input`` string that schedules an activity to resume from ``checkpoint``.

    Both arguments are decoded JSON values: typically ``json.loads`` of the input of the
    attempt that timed out, and ``json.loads`` of the ``details`` of its
    ``ActivityTaskTimedOut`` event. If ``input`` is itself an envelope (the previous attempt
    was a resumption too), its checkpoint is replaced rather than nested, so attempts can be
    chained. A ``None`` checkpoint gives the plain JSON input: there is nothing to resume.

    Raises :class:`~heartbeat_worker.SWFLimitError` when the result exceeds SWF's
    32768-character ``input`` limit, here rather than when SWF would reject the decision.
    """
    if _is_envelope(input):
        input = input[INPUT_KEY]
    if checkpoint is None:
        encoded = json.dumps(input, separators=(",", ":"))
    else:
        envelope = {CHECKPOINT_KEY: checkpoint, INPUT_KEY: input}
        encoded = json.dumps(envelope, separators=(",", ":"))
    return check_length("input", encoded, DATA_MAX)


def unwrap_input(raw_input: str | None) -> tuple[str | None, Any]:
    """Split a task's input into the activity's own input (JSON, or None) and a checkpoint.

    Input without an envelope is returned unchanged with a ``None`` checkpoint; so is input
    that is not valid JSON, which the input binding then reports as such.
    """
    if not raw_input or CHECKPOINT_KEY not in raw_input:
        return raw_input, None
    try:
        value = json.loads(raw_input)
    except ValueError:
        return raw_input, None
    if not _is_envelope(value):
        return raw_input, None
    inner = value[INPUT_KEY]
    return (None if inner is None else json.dumps(inner)), value[CHECKPOINT_KEY]
