"""LatestWins: only the latest request of a key is answered."""

from __future__ import annotations

import threading

from xanes_gui.tasks import LatestWins, Task, TaskRunner


def gated(gate: threading.Event, value):
    """A worker body that returns ``value`` once ``gate`` is set."""
    def body():
        assert gate.wait(10)
        return value
    return body


def test_superseded_result_is_dropped_and_the_latest_delivered(qtbot):
    runner = TaskRunner()
    latest = LatestWins(runner)
    delivered, ended = [], []
    slow_gate, fast_gate = threading.Event(), threading.Event()
    first = latest.start(Task(gated(slow_gate, "old")), "k", succeeded=delivered.append,
                         ended=lambda: ended.append("first"))
    second = latest.start(Task(gated(fast_gate, "new")), "k", succeeded=delivered.append,
                          ended=lambda: ended.append("second"))
    assert first.is_cancelled and latest.running("k") is second
    fast_gate.set()
    qtbot.waitUntil(lambda: delivered == ["new"], timeout=5000)
    # The superseded task (cancelled before or while it ran) ends too; its result never arrives.
    # The runner forgets a task when its "finished" arrives, emitted after its outcome.
    slow_gate.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert delivered == ["new"] and ended == ["second"] and latest.running("k") is None
    runner.wait_all()


def test_keys_are_independent_and_drop_forgets(qtbot):
    runner = TaskRunner()
    latest = LatestWins(runner)
    delivered = []
    gate = threading.Event()
    latest.start(Task(gated(gate, "a")), "a", succeeded=delivered.append)
    dropped = latest.start(Task(gated(gate, "b")), "b", succeeded=delivered.append)
    latest.start(Task(gated(gate, "c")), "c", succeeded=delivered.append)
    latest.drop("b")
    assert dropped.is_cancelled and latest.running("b") is None
    gate.set()
    qtbot.waitUntil(lambda: sorted(delivered) == ["a", "c"], timeout=5000)
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert sorted(delivered) == ["a", "c"]


def test_failure_and_cancel_of_the_latest_are_reported_then_ended(qtbot):
    runner = TaskRunner()
    latest = LatestWins(runner)
    events = []

    def broken():
        raise ValueError("bad input")

    latest.start(Task(broken), failed=lambda m: events.append(("failed", m)), ended=lambda: events.append("ended"))
    qtbot.waitUntil(lambda: "ended" in events, timeout=5000)
    assert events == [("failed", "bad input"), "ended"]
    gate = threading.Event()

    def waits(progress):
        assert gate.wait(10)
        progress(1, 1)  # raises Cancelled once the task is cancelled

    events.clear()
    task = latest.start(Task(waits, with_progress=True), cancelled=lambda: events.append("cancelled"),
                        ended=lambda: events.append("ended"))
    task.cancel()
    gate.set()
    qtbot.waitUntil(lambda: "ended" in events, timeout=5000)
    assert events == ["cancelled", "ended"]
