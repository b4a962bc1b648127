"""Example activities for heartbeat-worker: copy them, run them, read their tests.

Each module can be served by the command line worker::

    heartbeat-worker run examples.etl --domain D --task-list T

or started directly (``python -m examples.etl --help``). Their unit tests, which run them
without SWF through :mod:`heartbeat_worker.testing`, are in ``tests/examples``.
"""
