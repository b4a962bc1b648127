"""Run every benchmark script of this directory, one after the other (``make bench``).

Each script runs in its own process with the same interpreter, so that one benchmark's
imports, threads or event loop cannot skew the next; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve()
    scripts = sorted(
        path for path in here.parent.glob("*.py") if path != here and not path.name.startswith("_")
    )
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
