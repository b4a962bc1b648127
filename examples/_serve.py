"""What makes an example module runnable on its own: ``python -m examples.etl ...``.

It is ``heartbeat-worker run`` with the module as its target, so the options, the signal
handling and the shutdown are exactly those of the command line.
"""

from __future__ import annotations

import sys

from heartbeat_worker._cli import main


def serve(module: str) -> None:
    """Serve the activities of ``module`` with the rest of the command line as options."""
    sys.exit(main(["run", module, *sys.argv[1:]]))
