from __future__ import annotations

import pytest

from heartbeat_worker import ConfigurationError, Worker
from heartbeat_worker._loader import load_target


def test_module_target_gives_its_activities() -> None:
    found = load_target("tests.worker.activities")
    assert isinstance(found, list)
    assert {a.activity_type.name for a in found} >= {"sleeper", "progress", "cancellable"}


def test_attribute_target_gives_one_activity() -> None:
    found = load_target("tests.worker.activities:sleeper")
    assert isinstance(found, list)
    assert [a.activity_type.name for a in found] == ["sleeper"]


def test_worker_target_is_returned_as_is() -> None:
    assert isinstance(load_target("tests.unit.worker_target:worker"), Worker)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_here", "no module named .no_such_module_here."),
        ("tests.worker.activities:nope", "has no attribute"),
        ("tests.worker.activities:events", "neither an activity"),
        (":x", "no module"),
        ("tests.unit.__init__", "defines no @activity"),
    ],
)
def test_bad_targets_say_what_is_wrong(target: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_target(target)
