from __future__ import annotations

import pytest

from heartbeat_worker import HeartbeatWorkerError, SWFLimitError
from heartbeat_worker._limits import check_length, cut_end, cut_start


def test_check_length_names_the_field_and_the_limit() -> None:
    assert check_length("details", "x" * 2048, 2048) == "x" * 2048
    with pytest.raises(SWFLimitError, match=r"details is 2049 characters long; .* 2048") as exc:
        check_length("details", "x" * 2049, 2048)
    assert isinstance(exc.value, HeartbeatWorkerError)
    assert isinstance(exc.value, ValueError)
    assert (exc.value.field, exc.value.limit, exc.value.actual) == ("details", 2048, 2049)


def test_cut_end_keeps_the_beginning() -> None:
    assert cut_end("short", 256) == "short"
    cut = cut_end("ValueError: " + "x" * 1000, 256)
    assert len(cut) == 256
    assert cut.startswith("ValueError: ")
    assert cut.endswith("...")


def test_cut_start_keeps_the_end() -> None:
    text = "Traceback\n" + "frame\n" * 10000 + "KeyError: 'the cause'"
    cut = cut_start(text, 32768)
    assert len(cut) == 32768
    assert cut.endswith("KeyError: 'the cause'")
    assert cut.startswith("...")
