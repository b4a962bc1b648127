"""The command line's layout: one module per command, and only the chosen one imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["run", "register", "execute", "demo", "dev-server"]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_builds_its_parser_without_importing_the_others(command: str) -> None:
    probe = (
        "import sys\n"
        "from heartbeat_worker._cli import build_parser\n"
        f"build_parser([{command!r}]).parse_args([{command!r}, '--help'])\n"
    )
    others = {
        "run": "heartbeat_worker._cli._run",
        "register": "heartbeat_worker._cli._register",
        "execute": "heartbeat_worker._cli._execute",
        "demo": "heartbeat_worker._cli._demo",
        "dev-server": "heartbeat_worker.devserver._command",
    }
    check = (
        "import atexit, sys\n"
        f"others = {[m for c, m in others.items() if c != command]!r}\n"
        "atexit.register(lambda: print('IMPORTED', [m for m in others if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check + probe],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: heartbeat-worker " + command)
    assert done.stdout.rstrip().endswith("IMPORTED []")
