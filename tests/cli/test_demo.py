"""``heartbeat-worker demo`` as ``make demo`` runs it: from the root of the checkout."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DEMO_DEADLINE = 150.0
"""A guard against a hang, not a figure: the demo takes about half a minute on an idle
2-core machine and twice that beside two CPU burners."""
# The installed command, as `make demo` runs it; else the same through the interpreter.
_SCRIPT = Path(sys.executable).parent / "heartbeat-worker"
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "heartbeat_worker._cli"]


async def demo(cwd: Path, *arguments: str) -> tuple[int, str, str, float]:
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
    started = time.monotonic()
    with anyio.fail_after(DEMO_DEADLINE):
        done = await anyio.run_process(
            [*COMMAND, "demo", *arguments],
            cwd=cwd,
            env=env,
            check=False,
        )
    return (
        done.returncode,
        done.stdout.decode(),
        done.stderr.decode(),
        time.monotonic() - started,
    )


@pytest.mark.timeout(DEMO_DEADLINE + 20)
async def test_demo_runs_to_completion_then_cancels(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    code, out, err, _ = await demo(ROOT, "--log-file", str(log))

    assert code == 0, f"{out}\n{err}"
    assert "run 1: completed in " in out
    assert "run 2: canceled in " in out
    # The summaries: heartbeats, timestamped events, the cancellation and its clean-up.
    assert len(re.findall(r"heartbeats +\d+ sent", out)) == 2
    assert re.search(r"^ +\d+\.\d{3} +ActivityTaskCompleted$", out, re.MULTILINE)
    assert re.search(r"^ +\d+\.\d{3} +ActivityTaskCanceled$", out, re.MULTILINE)
    assert re.search(r"latency +\d+\.\d\d s from ActivityTaskCancelRequested", out)
    assert "the open batch was rolled back" in out
    # Progress came from the heartbeats: a percentage and rows done, on the progress lines.
    assert re.search(r"run 1 +\[[#-]+\] +\d+\.\d%", out)
    # Worker logs went to the file, not over the progress line.
    assert "task received" not in out + err
    assert "task completed" in log.read_text()


async def test_demo_outside_a_checkout_says_why_it_cannot_run(tmp_path: Path) -> None:
    code, _, err, _ = await demo(tmp_path, "--log-file", str(tmp_path / "demo.log"))

    assert code == 1
    assert "cannot import examples.etl" in err
    assert "make demo" in err
