"""How ``--help`` is laid out: every option's default shown, and no word cut in two.

argparse shows a default only where the help text spells ``%(default)s``, and wraps with
:mod:`textwrap`, which cuts a token longer than the line (a fault spec such as
``KIND[,operation=OP][,after=S]...``) wherever the line ends. This formatter appends the
default to every option that has one, and breaks long tokens only between their
``][`` brackets.
"""

from __future__ import annotations

import argparse
import re
from typing import Final

__all__ = ["HelpFormatter"]

_BETWEEN_BRACKETS: Final = re.compile(r"(?<=\])(?=\[)")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Raw description and epilog (they hold tables), defaults shown, tokens kept whole."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.default in (None, False, argparse.SUPPRESS)
            or action.default == []
        ):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"

    def _split_lines(self, text: str, width: int) -> list[str]:
        return wrap_keeping_tokens(" ".join(text.split()), width)


def wrap_keeping_tokens(text: str, width: int) -> list[str]:
    """Greedy wrapping that breaks a token wider than half a line only between ``][``."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        pieces = _BETWEEN_BRACKETS.split(word) if len(word) > width // 2 else [word]
        for index, piece in enumerate(pieces):
            separator = "" if index else " "
            if line and len(line) + len(separator) + len(piece) > width:
                lines.append(line)
                line = piece
            else:
                line = f"{line}{separator}{piece}" if line else piece
    if line:
        lines.append(line)
    return lines
