"""The trainers' background writes: one run's files land in the order asked (its losses before
its checkpoint, an older checkpoint before a newer one), other runs in parallel, and a failed
write surfaces in the training process instead of being lost."""

from __future__ import annotations

import threading
import time

import pytest

from tdw.training.background_writes import BackgroundWrites


def test_one_lane_writes_in_order_even_when_an_earlier_write_is_slower(tmp_path):
    landed: list[str] = []
    lock = threading.Lock()

    def write(name: str, seconds: float):
        def run() -> None:
            time.sleep(seconds)
            (tmp_path / name).write_text(name)
            with lock:
                landed.append(name)
        return run

    writes = BackgroundWrites(threads=4)
    writes.submit("run-a", write("a-losses", 0.3))  # slow, yet the checkpoint after it waits
    writes.submit("run-a", write("a-checkpoint", 0.0))
    writes.submit("run-b", write("b-checkpoint", 0.0))  # another run does not wait for run a
    writes.close()
    assert landed.index("a-losses") < landed.index("a-checkpoint")
    assert landed.index("b-checkpoint") < landed.index("a-losses")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-checkpoint", "a-losses", "b-checkpoint"]


def test_a_failed_write_is_raised_by_drain_and_stops_that_lane(tmp_path):
    def fail() -> None:
        raise OSError(28, "No space left on device")

    writes = BackgroundWrites(threads=2)
    writes.submit("run-a", fail)
    with pytest.raises(OSError, match="No space left"):
        # raised by the next submit if the failure is already known, else by the drain
        writes.submit("run-a", lambda: (tmp_path / "after").write_text("x"))
        writes.close()
    writes.close()
    assert not (tmp_path / "after").exists()  # a run's later file never lands after a failed one
