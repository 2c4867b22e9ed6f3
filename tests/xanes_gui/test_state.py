"""AppState: opening files, selection, model choice, prediction, cache, cancel."""

from __future__ import annotations

import threading
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from model_core.spectra.measured import MeasuredData
from model_core.spectra.normalize import NormParams
from tests.xanes_gui.fakes import FakePredictor, cu4o_cluster, fake_backend, write_xyz
from xanes_gui.state import AppState


def open_and_wait(qtbot, state, *paths):
    with qtbot.waitSignals([state.structures.fileOpened] * len(paths), timeout=10000):
        state.structures.open_files(paths)


def test_engine_ready_lists_models_and_devices(state):
    assert state.predictions.engine_ready
    assert [m.name for m in state.predictions.models] == ["fake-cu-k"]
    assert state.predictions.device == "cpu" and state.predictions.device_name == "CPU"


def test_open_file_adds_structure_and_selects_modelled_element(qtbot, state, tmp_path):
    path = cu4o_cluster(tmp_path / "cu4o.xyz")
    structures = state.structures
    with qtbot.waitSignals([structures.structureAdded, structures.currentStructureChanged, structures.fileOpened],
                           timeout=10000):
        state.structures.open_files([path])
    doc = state.structures.current
    assert doc.structure.formula == "OCu4"
    # Default selection: all atoms of the first element a model exists for.
    assert list(doc.selection.indices) == [1, 2, 3, 4]
    assert state.predictions.model_name == "fake-cu-k"


def test_bad_file_reports_error_without_losing_data(qtbot, state, tmp_path):
    good = cu4o_cluster(tmp_path / "good.xyz")
    open_and_wait(qtbot, state, good)
    bad = tmp_path / "broken.xyz"
    bad.write_text("this is not\na structure\n")
    with qtbot.waitSignal(state.structures.fileFailed, timeout=10000) as blocker:
        state.structures.open_files([str(bad)])
    path, message = blocker.args
    assert path == str(bad) and "broken.xyz" in message
    assert len(state.structures.documents) == 1 and state.structures.current.structure.name == "good"


def test_missing_file_message_names_file(qtbot, state, tmp_path):
    with qtbot.waitSignal(state.messages.errorMessage, timeout=10000) as blocker:
        state.structures.open_files([str(tmp_path / "nowhere.cif")])
    assert "nowhere.cif" in blocker.args[0]


def test_several_files_open_at_once(qtbot, state, tmp_path):
    paths = [cu4o_cluster(tmp_path / f"c{i}.xyz") for i in range(3)]
    open_and_wait(qtbot, state, *paths)
    assert sorted(d.structure.name for d in state.structures.documents) == ["c0", "c1", "c2"]


def test_selection_signals_and_helpers(qtbot, state, tmp_path):
    open_and_wait(qtbot, state, cu4o_cluster(tmp_path / "a.xyz"))
    doc_id = state.structures.current_id
    with qtbot.waitSignal(state.structures.selectionChanged) as blocker:
        state.structures.set_selection(doc_id, [2, 2, 0])
    assert blocker.args[0] == doc_id and list(blocker.args[1]) == [2, 0]
    state.structures.set_selection(doc_id, [1])
    state.structures.select_equivalent()
    assert list(state.structures.selection()) == [1, 2, 3, 4]  # fake symmetry: all Cu equivalent
    state.structures.select_element(None, "O")
    assert list(state.structures.selection()) == [0]
    # O has no model: the auto choice goes away and prediction is refused with a message.
    assert state.predictions.model_name == ""
    with qtbot.waitSignal(state.messages.errorMessage) as blocker:
        assert state.predictions.predict() is None
    assert "No model for O" in blocker.args[0]


def test_predict_then_cache(qtbot, state, predictor, tmp_path):
    open_and_wait(qtbot, state, cu4o_cluster(tmp_path / "a.xyz"))
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=10000) as blocker:
        assert state.predictions.predict() is not None
    doc_id, prediction = blocker.args
    # Four equivalent Cu reduced to one representative with weight 4.
    assert list(prediction.site_indices) == [1] and list(prediction.weights) == [4.0]
    assert predictor.calls == [[1]]
    assert state.predictions.cached(doc_id, 1, "fake-cu-k") is not None
    # Re-selecting is instant: the cached result is published synchronously.
    state.structures.set_selection(doc_id, [0])
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=1000):
        state.structures.set_selection(doc_id, [1, 2])
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=1000):
        assert state.predictions.predict() is None
    assert predictor.calls == [[1]]


def test_predict_individual_sites_weighted_average(qtbot, tmp_path):
    predictor = FakePredictor()
    # Trivial symmetry: every atom its own group, so two sites are predicted.
    from model_core.symmetry import trivial_symmetry

    state = AppState(fake_backend(predictor, analyze_symmetry=lambda s: trivial_symmetry(s.n_atoms)))
    with qtbot.waitSignal(state.predictions.engineReady):
        state.start_engine()
    open_and_wait(qtbot, state, cu4o_cluster(tmp_path / "a.xyz"))
    state.structures.set_selection(state.structures.current_id, [1, 3])
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=10000) as blocker:
        state.predictions.predict()
    prediction = blocker.args[1]
    assert list(prediction.site_indices) == [1, 3]
    np.testing.assert_allclose(prediction.average, prediction.mu.mean(axis=0))
    # Adding a site predicts only the new one.
    state.structures.set_selection(state.structures.current_id, [1, 3, 4])
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=10000) as blocker:
        state.predictions.predict()
    assert predictor.calls == [[1, 3], [4]]
    assert list(blocker.args[1].site_indices) == [1, 3, 4]
    state.shutdown()


def test_cancel_prediction(qtbot, tmp_path):
    gate = threading.Event()
    predictor = FakePredictor(gate=gate)
    state = AppState(fake_backend(predictor))
    with qtbot.waitSignal(state.predictions.engineReady):
        state.start_engine()
    open_and_wait(qtbot, state, cu4o_cluster(tmp_path / "a.xyz"))
    ready = []
    state.predictions.predictionReady.connect(lambda *args: ready.append(args))
    with qtbot.waitSignal(state.predictions.predictionStarted):
        task = state.predictions.predict()
    assert task is not None and state.predictions.predicting
    assert predictor.started.wait(5)
    with qtbot.waitSignals([state.predictions.predictionCancelled, state.predictions.predictionFinished],
                           timeout=10000):
        state.predictions.cancel_prediction()
        gate.set()
    assert not ready and not state.predictions.predicting
    assert state.predictions.cached(state.structures.current_id, 1, "fake-cu-k") is None
    state.shutdown()


def test_prediction_failure_is_a_message(qtbot, tmp_path):
    def broken_load(name, device="auto"):
        raise ValueError("checkpoint is corrupt")

    state = AppState(fake_backend(load_model=broken_load))
    with qtbot.waitSignal(state.predictions.engineReady):
        state.start_engine()
    open_and_wait(qtbot, state, cu4o_cluster(tmp_path / "a.xyz"))
    with qtbot.waitSignal(state.messages.errorMessage, timeout=10000) as blocker:
        state.predictions.predict()
    assert "checkpoint is corrupt" in blocker.args[0]
    qtbot.waitUntil(lambda: not state.predictions.predicting)
    state.shutdown()


def test_model_override_and_device(qtbot, state, tmp_path):
    open_and_wait(qtbot, state, cu4o_cluster(tmp_path / "a.xyz"))
    other = FakePredictor(element="Cu", name="other-cu", trained=False)
    state.predictions.set_predictor(other)
    assert state.predictions.model_name == "other-cu" and not state.predictions.model().trained
    state.predictions.set_model_override("fake-cu-k")
    assert state.predictions.model_name == "fake-cu-k"
    with qtbot.waitSignal(state.predictions.deviceChanged) as blocker:
        state.predictions.set_device("cuda:0")
    assert blocker.args == ["cuda:0"]


def test_close_structure_drops_cache(qtbot, state, tmp_path):
    open_and_wait(qtbot, state, cu4o_cluster(tmp_path / "a.xyz"))
    doc_id = state.structures.current_id
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=10000):
        state.predictions.predict()
    with qtbot.waitSignal(state.structures.structureRemoved):
        state.structures.close_structure(doc_id)
    assert state.structures.current is None and state.predictions.cached(doc_id, 1, "fake-cu-k") is None


def test_structure_read_warnings_are_reported(qtbot, tmp_path):
    from tests.xanes_gui.fakes import simple_read

    def read_with_warning(path):
        s = simple_read(path)
        return s.replace(info={"warnings": ("partial occupancies ignored",)})

    state = AppState(fake_backend(read_structure=read_with_warning))
    messages = []
    state.messages.errorMessage.connect(messages.append)
    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        state.structures.open_files([cu4o_cluster(tmp_path / "w.xyz")])
    assert any("partial occupancies" in m and "w.xyz" in m for m in messages)
    state.shutdown()


@pytest.mark.parametrize("content", ["", "\x00\x01binary"])
def test_garbage_files_never_crash(qtbot, state, tmp_path, content):
    path = tmp_path / "junk.xyz"
    path.write_text(content)
    with qtbot.waitSignal(state.structures.fileFailed, timeout=10000):
        state.structures.open_files([str(path)])
    assert state.structures.documents == []


def test_write_xyz_helper(tmp_path):
    path = write_xyz(tmp_path / "h2.xyz", ["H", "H"], [(0, 0, 0), (0, 0, 0.74)])
    assert open(path).read().startswith("2\n")


def quick_normalize(energy, mu, params=None):
    """Stands in for the larch normalization (the state only passes its result on)."""
    return SimpleNamespace(params=params, warnings=(), e0=8980.0, flat=mu, norm=mu, edge_step=1.0)


def tiny_measured(tmp_path) -> MeasuredData:
    energy = np.linspace(8900.0, 9100.0, 50)
    return MeasuredData(source=str(tmp_path / "m.dat"), label="m", energy_ev=energy, mu=energy / 9000.0,
                        channel="mu")


def test_superseded_normalization_is_dropped(qtbot, tmp_path):
    """Parameters changed while a normalization runs: only the latest one is applied."""
    gate = threading.Event()

    def normalize(energy, mu, params=None):
        if params is not None and params.e0 == 1.0:
            assert gate.wait(10)  # the first request is slow
        return quick_normalize(energy, mu, params)

    state = AppState(fake_backend(normalize=normalize))
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=10000):
        measured_id = state.measured.add(tiny_measured(tmp_path))
    normalized = []
    state.measured.measuredNormalized.connect(normalized.append)
    state.measured.set_norm_params(measured_id, NormParams(e0=1.0))
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=10000):
        state.measured.set_norm_params(measured_id, NormParams(e0=2.0))
    gate.set()
    qtbot.waitUntil(lambda: not state.tasks.busy, timeout=10000)
    assert normalized == [measured_id]
    assert state.measured.doc(measured_id).norm.params.e0 == 2.0
    state.shutdown()


def test_session_changed_is_coalesced_and_covers_every_part(qtbot, state, tmp_path):
    emitted = []
    state.sessionChanged.connect(lambda: emitted.append(1))
    with qtbot.waitSignal(state.sessionChanged, timeout=10000):
        open_and_wait(qtbot, state, cu4o_cluster(tmp_path / "a.xyz"))
    # Opening a file changes several things (added, current, selection): one signal.
    assert emitted == [1]
    doc_id = state.structures.current_id
    state.backend = replace(state.backend, normalize=quick_normalize)
    measured = []
    changes = [lambda: state.structures.set_selection(doc_id, [1]),
               lambda: state.predictions.set_model_override("fake-cu-k"),
               lambda: state.predictions.set_device("cuda:0"),
               lambda: state.view.set_view(show_bonds=False),
               lambda: state.measured.set_align(shift_ev=1.5),
               lambda: measured.append(state.measured.add(tiny_measured(tmp_path))),
               lambda: state.measured.set_visible(measured[0], False),
               lambda: state.measured.remove(measured[0]),
               lambda: state.structures.close_structure(doc_id)]
    for change in changes:
        with qtbot.waitSignal(state.sessionChanged, timeout=1000):
            change()
