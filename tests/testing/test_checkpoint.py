from __future__ import annotations

import json

import pytest

from heartbeat_worker import SWFLimitError, with_checkpoint
from heartbeat_worker._checkpoint import CHECKPOINT_KEY, INPUT_KEY, unwrap_input


def test_envelope_round_trip() -> None:
    raw = with_checkpoint({"rows": 10}, {"rows_done": 4})
    assert json.loads(raw) == {CHECKPOINT_KEY: {"rows_done": 4}, INPUT_KEY: {"rows": 10}}
    inner, checkpoint = unwrap_input(raw)
    assert inner is not None
    assert json.loads(inner) == {"rows": 10}
    assert checkpoint == {"rows_done": 4}


def test_no_checkpoint_gives_plain_input() -> None:
    assert with_checkpoint({"rows": 10}, None) == '{"rows":10}'
    assert unwrap_input('{"rows":10}') == ('{"rows":10}', None)


def test_rewrapping_replaces_the_checkpoint_instead_of_nesting() -> None:
    first = with_checkpoint([1, 2], {"step": 1})
    second = with_checkpoint(json.loads(first), {"step": 2})
    inner, checkpoint = unwrap_input(second)
    assert inner == "[1, 2]"
    assert checkpoint == {"step": 2}


def test_null_inner_input_becomes_absent_input() -> None:
    assert unwrap_input(with_checkpoint(None, "c")) == (None, "c")


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "not json but mentions heartbeat_worker.checkpoint",
        json.dumps({CHECKPOINT_KEY: 1}),
        json.dumps({CHECKPOINT_KEY: 1, INPUT_KEY: 2, "other": 3}),
        json.dumps([CHECKPOINT_KEY, INPUT_KEY]),
    ],
)
def test_anything_but_an_exact_envelope_passes_through(raw: str | None) -> None:
    assert unwrap_input(raw) == (raw, None)


def test_oversized_envelope_is_refused_where_it_is_built() -> None:
    with pytest.raises(SWFLimitError, match="input is"):
        with_checkpoint("x" * 32_000, "y" * 1_000)
