"""Imported first by these tests: puts the repository root on ``sys.path``.

The test run does not, and without it ``examples`` would even resolve to this test
directory (as a namespace package). This is a plain module rather than a ``conftest.py``
because the suite's conftest modules share the module name ``conftest``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
