"""Autosave: debounced atomic writes, one file per instance, removal on clean exit, recovery after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.xanes_gui.fakes import cu4o_cluster
from xanes_gui import autosave
from xanes_gui.autosave import Autosaver, claim_orphans, recover

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    """Every test writes its autosaves under its own tmp folder, never the user's."""
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


class Counter:
    """A snapshot callable that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict:
        self.calls += 1
        return {"version": 1, "structures": [{"path": "/x.cif", "selection": []}], "n": self.calls}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG layout is Linux only")
def test_folder_follows_xdg_state_home(state_home):
    assert autosave.autosave_dir() == state_home / "xanes-gui" / "autosave"


def test_several_changes_give_one_debounced_write(qtbot):
    snapshot = Counter()
    saver = Autosaver(snapshot, delay_ms=50)
    for _ in range(5):
        saver.schedule()
    assert saver.pending and not saver.path.exists()
    with qtbot.waitSignal(saver.saved, timeout=5000):
        pass
    assert snapshot.calls == 1
    assert json.loads(saver.path.read_text())["n"] == 1
    saver.close()


def test_state_signals_schedule_a_save(qtbot, state, tmp_path):
    saver = Autosaver(Counter(), delay_ms=10)
    saver.listen(getattr(state, name) for name in autosave.SESSION_SIGNALS)
    with qtbot.waitSignal(saver.saved, timeout=10000):
        state.open_files([cu4o_cluster(tmp_path / "a.xyz")])
    saver.close()


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "s.json"
    autosave.write_atomically(target, "old")
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        # Just before the rename the target still holds the complete old text.
        seen.append((Path(dst).read_text(), Path(src).read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(autosave.os, "replace", replace)
    autosave.write_atomically(target, "new")
    assert seen == [("old", "new")]
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_failed_write_removes_the_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "s.json"
    autosave.write_atomically(target, "old")

    def broken(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(autosave.os, "replace", broken)
    with pytest.raises(OSError):
        autosave.write_atomically(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_two_instances_write_two_files_and_own_them(qtbot):
    one, two = Autosaver(Counter(), delay_ms=0), Autosaver(Counter(), delay_ms=0)
    one.save_now()
    two.save_now()
    assert one.path != two.path and one.path.exists() and two.path.exists()
    # Both owners are alive: neither file is an orphan.
    assert claim_orphans() == []
    one.close()
    two.close()


def test_clean_exit_removes_the_autosave(qtbot):
    saver = Autosaver(Counter(), delay_ms=0)
    saver.save_now()
    assert saver.path.exists()
    saver.close()
    assert list(saver.path.parent.iterdir()) == []
    saver.schedule()
    assert not saver.pending  # nothing is written after the exit


def test_explicit_session_file_is_never_written(qtbot, window, tmp_path, state):
    from xanes_gui.session import session_dict

    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        state.open_files([cu4o_cluster(tmp_path / "a.xyz")])
    explicit = window.save_session(tmp_path / "mine.json")
    before = explicit.read_text()
    saver = Autosaver(lambda: session_dict(state), delay_ms=0)
    state.view.set_view(show_cell=not state.view.settings.show_cell)
    saver.save_now()
    assert explicit.read_text() == before and saver.path != explicit
    saver.close()


def _orphan(folder: Path, data: dict, name: str = "session-1-1-0.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def test_chooser_decides_discard_and_later(qtbot, state, tmp_path):
    folder = autosave.autosave_dir()
    path = _orphan(folder, {"version": 1, "structures": [{"path": cu4o_cluster(tmp_path / "a.xyz")}]})
    asked = []
    assert recover(state, chooser=lambda o, n: asked.append((o.path, n)) or "later") is None
    assert asked == [(path, 0)] and path.exists()
    assert recover(state, chooser=lambda o, n: "discard") is None
    assert not path.exists() and state.structures.documents == []


def test_empty_orphans_are_dropped_silently(qtbot, state):
    path = _orphan(autosave.autosave_dir(), {"version": 1, "structures": [], "measured": []})
    assert recover(state, chooser=lambda o, n: pytest.fail("asked about an empty session")) is None
    assert not path.exists()


def _wait_for_autosave(folder: Path, process: subprocess.Popen, timeout_s: float) -> Path:
    """Poll until an autosave naming a structure appears (bounded; fails if the app exits)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        for path in folder.glob("session-*.json"):
            try:
                if json.loads(path.read_text()).get("structures"):
                    return path
            except ValueError:
                pytest.fail(f"partial autosave observed: {path}")
        try:
            process.wait(0.1)
        except subprocess.TimeoutExpired:
            pass
    pytest.fail(f"no autosave within {timeout_s} s")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_app_is_restored(qtbot, state, tmp_path, state_home):
    structure = cu4o_cluster(tmp_path / "cluster.xyz")
    env = dict(os.environ, XDG_STATE_HOME=str(state_home), QT_QPA_PLATFORM="offscreen",
               **{autosave.DELAY_ENV: "50"})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    process = subprocess.Popen([sys.executable, "-m", "xanes_gui", "--no-3d", structure], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        path = _wait_for_autosave(autosave.autosave_dir(), process, timeout_s=120)
    finally:
        process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert path.exists()  # a kill leaves the autosave behind

    restorer = recover(state, ask=False)  # what `xanes-gui --restore` does
    assert restorer is not None
    with qtbot.waitSignal(restorer.finished, timeout=20000) as blocker:
        pass
    assert blocker.args == [[]]
    assert [d.structure.source for d in state.structures.documents] == [structure]
    qtbot.waitUntil(lambda: not path.exists(), timeout=5000)  # the restored autosave is gone
    assert claim_orphans() == []


def test_restore_flag_is_parsed():
    from xanes_gui.app import _parse

    assert _parse(["--restore"]).restore and not _parse([]).restore


def test_unwritable_folder_is_a_message_not_a_crash(qtbot, tmp_path):
    blocker_file = tmp_path / "not-a-folder"
    blocker_file.write_text("")
    saver = Autosaver(Counter(), folder=blocker_file / "autosave", delay_ms=0)  # cannot exist
    messages = []
    saver.failed.connect(messages.append)
    saver.save_now()
    assert len(messages) == 1 and "not-a-folder" in messages[0]
    saver.close()
