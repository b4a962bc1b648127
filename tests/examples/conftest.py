"""Make the repository's ``examples`` package importable from these tests.

The test run does not put the repository root on ``sys.path``, and without it ``examples``
would even resolve to this test directory (as a namespace package).
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
