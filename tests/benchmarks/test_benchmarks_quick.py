"""The performance benchmarks run at smoke size to their end, so that none of them rots.

They run side by side (each mostly waits for heartbeat timeouts to pass), each with its own
dev server process; the figures they print at this size mean nothing, so neither do their
goals: on a busy machine a smoke run may miss one (exit status 1, "MISSED" or a goal line),
which is the benchmarks' business, not this test's. A crash is this test's business: any
traceback (every uncaught exception prints one, and exits 1 too) or any other status.
(``soak.py`` and ``devserver_heartbeats.py`` measure other things over minutes and are
left out; ``heartbeat_scale.py`` runs its budget cases: 2, and 4, which at this size
also covers case 3's path.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = {
    "budget.py": [],
    "cancellation_latency.py": [],
    "heartbeat_scale.py": ["--case", "2", "--case", "4"],
    "observability_cost.py": [],
    "startup.py": [],
    "throughput.py": [],
}


@pytest.mark.slow
@pytest.mark.timeout(170)
def test_every_benchmark_runs_with_quick() -> None:
    processes = {
        name: subprocess.Popen(
            [sys.executable, str(BENCHMARKS / name), "--quick", *options],
            cwd=BENCHMARKS,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, options in SCRIPTS.items()
    }
    deadline = time.monotonic() + 150
    failures = []
    for name, process in processes.items():
        try:
            output, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            failures.append(f"{name} timed out:\n{output[-2000:]}")
            continue
        if process.returncode not in (0, 1) or "Traceback" in output:
            failures.append(f"{name} exited {process.returncode}:\n{output[-2000:]}")
    assert not failures, "\n\n".join(failures)
