from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from heartbeat_worker import configure_logging
from heartbeat_worker._logging import get_logger


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_auto_writes_json_where_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("auto", logging.INFO, stream=stream)
    get_logger(domain="d").info("task completed", duration=0.5)
    line = json.loads(stream.getvalue())
    assert line["event"] == "task completed"
    assert line["domain"] == "d"
    assert line["level"] == "info"


def test_auto_writes_aligned_text_on_a_terminal() -> None:
    stream = Terminal()
    configure_logging("auto", logging.INFO, stream=stream)
    get_logger(domain="d").info("task completed")
    text = stream.getvalue()
    assert "task completed" in text
    assert "\x1b[" in text  # coloured, as for a person
    assert not text.startswith("{")


def test_the_level_filters() -> None:
    stream = io.StringIO()
    configure_logging("json", logging.INFO, stream=stream)
    get_logger().debug("task received")
    assert stream.getvalue() == ""
