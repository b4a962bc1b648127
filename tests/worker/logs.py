"""The worker's own log lines, read back as JSON: one helper for the worker tests."""

from __future__ import annotations

import io
import json
from typing import Any


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]
