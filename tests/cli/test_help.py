"""``--help`` shows every option's default and wraps no word in two."""

from __future__ import annotations

import argparse
import re

import pytest

from heartbeat_worker._cli import build_parser
from heartbeat_worker.devserver._faults import SPEC_HELP

from .commands import DEV_ENVIRONMENT, run_command

pytestmark = pytest.mark.anyio

COMMANDS = ["run", "register", "execute", "demo", "dev-server"]


def options_with_defaults(command: str) -> list[str]:
    parser = build_parser([command])
    sub = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    ).choices[command]
    return [
        action.option_strings[-1]
        for action in sub._actions
        if action.option_strings
        and action.default not in (None, False, argparse.SUPPRESS, [])
        and action.dest != "help"
    ]


def help_blocks(text: str) -> dict[str, str]:
    """Each option's help text, keyed by its longest spelling."""
    blocks: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^  (-[-\w, ]+?)(?:\s[A-Z{]|\s{2,}|$)", line)
        if match:
            current = match.group(1).split(", ")[-1].strip()
            blocks[current] = line
        elif current is not None and line.startswith("    "):
            blocks[current] += " " + line.strip()
        else:
            current = None
    return blocks


@pytest.mark.parametrize("command", COMMANDS)
async def test_every_option_with_a_default_shows_it(command: str) -> None:
    code, out, err = await run_command(command, "--help", env={**DEV_ENVIRONMENT, "COLUMNS": "100"})

    assert code == 0, err
    blocks = help_blocks(out)
    expected = options_with_defaults(command)
    assert expected
    for option in expected:
        assert "default" in blocks[option], (option, blocks.get(option))


async def test_run_help_names_the_numbers() -> None:
    _, out, _ = await run_command("run", "--help", env={**DEV_ENVIRONMENT, "COLUMNS": "100"})
    blocks = help_blocks(out)

    assert "(default: 10)" in blocks["--max-concurrency"]
    assert "(default: 20.0)" in blocks["--graceful-shutdown-timeout"]
    assert "(default: 3.0)" in blocks["--cancel-grace-period"]


@pytest.mark.parametrize("columns", ["80", "100", "123"])
async def test_the_fault_help_wraps_between_words(columns: str) -> None:
    env = {**DEV_ENVIRONMENT, "COLUMNS": columns}
    _, out, _ = await run_command("dev-server", "--help", env=env)
    fault = help_blocks(out)["--fault"]

    # Every bracketed part of the spec survives whole: nothing like "dur ation=S".
    spec = SPEC_HELP.split(": ", 1)[1].split()[0]
    parts = re.split(r"(?<=\])(?=\[)", spec)
    assert len(parts) > 3
    for part in parts:
        assert part in fault, (part, fault)
