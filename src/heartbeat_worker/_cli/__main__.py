"""``python -m heartbeat_worker._cli``: the console script without the installed wrapper."""

import sys

from . import main

sys.exit(main())
