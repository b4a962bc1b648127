from __future__ import annotations

from decider.conftest import worker

__all__ = ["worker"]
