"""Saving and restoring a session as JSON.

A session records structures by path (files are re-read on restore, never
embedded), each structure's selected atoms, the model choice, the device and
the view settings; measured spectra by path (with the Athena group, the column
choice, the normalization parameters and display options), the alignment
settings, FEFF10 results by their run folders, the energy calibration of each
element (sessions without one load as uncalibrated), and the candidate structures and
library folder of "Identify" (by path; rankings are recomputed, not stored). Restoring reports files that
no longer exist instead of failing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from xanes_gui.comparison import (AlignSettings, choice_from_dict, choice_to_dict, params_from_dict,
                                  params_to_dict)
from xanes_gui.state import AppState
from xanes_gui.state.interpret import calibration_to_dict

SESSION_VERSION = 1


def session_dict(state: AppState) -> dict[str, Any]:
    """The current session as plain JSON-able data."""
    structures = []
    feff = []
    current = None
    for doc in state.structures.documents:
        if not doc.structure.source:
            continue  # built in memory: nothing to re-read
        if doc.id == state.structures.current_id:
            current = len(structures)
        for result in state.simulations.results(doc.id).values():
            feff.append({"structure": len(structures), "preset": result.preset, "edge": result.edge,
                         "structure_dir": result.structure_dir,
                         "runs": [{"site": s.site, "stands_for": list(s.stands_for), "run_dir": s.run_dir}
                                  for s in result.sites]})
        structures.append({"path": os.path.abspath(doc.structure.source),
                           "selection": [int(i) for i in doc.selection.indices]})
    measured = []
    for m in state.measured.docs:
        measured.append({"path": os.path.abspath(m.path), "group": m.data.group,
                         "columns": choice_to_dict(m.columns), "params": params_to_dict(m.params),
                         "use_flat": m.use_flat, "visible": m.visible, "color": list(m.color),
                         "label": m.label})
    view = state.view.settings
    return {
        "version": SESSION_VERSION,
        "structures": structures,
        "current": current,
        "model": state.predictions.model_override,
        "device": state.predictions.device,
        "view": {
            "energy_reference": view.energy_reference,
            "hidden_curves": sorted(view.hidden_curves),
            "color_mode": view.color_mode,
            "supercell": list(view.supercell),
            "show_bonds": view.show_bonds,
            "show_cell": view.show_cell,
        },
        "measured": measured,
        "alignment": state.measured.align.to_dict(),
        "feff": feff,
        "calibrations": [calibration_to_dict(c) for c in state.interpret.calibrations.values()],
        "identify": {"candidates": [os.path.abspath(p) for p in state.interpret.candidate_paths],
                     "library": os.path.abspath(state.interpret.library) if state.interpret.library else ""},
    }


def save_session(state: AppState, path: str | Path) -> Path:
    """Write the session to ``path``.

    Raises:
        OSError: the file could not be written.
    """
    path = Path(path)
    path.write_text(json.dumps(session_dict(state), indent=2) + "\n", encoding="utf-8")
    skipped = sum(1 for d in state.structures.documents if not d.structure.source)
    if skipped:
        state.messages.errorMessage.emit(f"{skipped} structure(s) not read from a file were not saved in the session")
    return path


class SessionRestorer(QObject):
    """Restores a session: applies settings now, re-reads files in workers, then selections.

    Signals:
        finished(list): paths that could not be restored (missing or unreadable).
    """

    finished = Signal(list)

    def __init__(self, state: AppState, data: dict[str, Any]) -> None:
        super().__init__(state)
        self._state = state
        self._data = data
        self._pending: dict[str, list[int]] = {}
        self._current_path: str | None = None
        self._failed: list[str] = []
        self._measured_pending: list[dict[str, Any]] = []
        self._feff_pending = 0
        self._structures_done = False
        self._done = False

    def start(self) -> None:
        state, data = self._state, self._data
        if int(data.get("version", 0)) != SESSION_VERSION:
            raise ValueError(f"unsupported session version {data.get('version')!r}")
        view = data.get("view") or {}
        changes: dict[str, Any] = {}
        if view.get("energy_reference") in ("edge", "absolute"):
            changes["energy_reference"] = view["energy_reference"]
        if "hidden_curves" in view:
            changes["hidden_curves"] = frozenset(map(str, view["hidden_curves"]))
        if view.get("color_mode") in ("element", "attention"):
            changes["color_mode"] = view["color_mode"]
        if isinstance(view.get("supercell"), list) and len(view["supercell"]) == 3:
            changes["supercell"] = tuple(max(1, int(n)) for n in view["supercell"])
        for key in ("show_bonds", "show_cell"):
            if key in view:
                changes[key] = bool(view[key])
        state.view.set_view(**changes)
        device = str(data.get("device") or "")
        if device and (not state.predictions.devices or device in {d for d, _ in state.predictions.devices}):
            state.predictions.set_device(device)
        elif device:
            state.messages.errorMessage.emit(
                f"Session device {device} is not available; using {state.predictions.device_name}")
        state.predictions.set_model_override(str(data.get("model") or ""))
        state.measured.set_align(**vars(AlignSettings.from_dict(data.get("alignment"))))
        state.interpret.restore_calibrations(list(data.get("calibrations") or []))
        self._restore_identify(data.get("identify") or {})
        entries = list(data.get("structures") or [])
        current = data.get("current")
        to_open = []
        for k, entry in enumerate(entries):
            path = str(entry.get("path", ""))
            if not os.path.isfile(path):
                state.messages.errorMessage.emit(f"Session: {path}: file not found")
                self._failed.append(path)
                continue
            self._pending[path] = [int(i) for i in entry.get("selection", [])]
            if k == current:
                self._current_path = path
            to_open.append(path)
        self._paths = [str(e.get("path", "")) for e in entries]
        state.structures.fileOpened.connect(self._on_opened)
        state.structures.fileFailed.connect(self._on_failed)
        self._start_measured(list(data.get("measured") or []))
        if not to_open:
            self._structures_loaded()
            return
        state.structures.open_files(to_open)

    def _restore_identify(self, entry: Any) -> None:
        """Candidate files or folders and the library folder, where they still exist."""
        state = self._state
        if not isinstance(entry, dict):
            return
        found = []
        for path in map(str, entry.get("candidates") or []):
            if os.path.exists(path):
                found.append(path)
            else:
                state.messages.errorMessage.emit(f"Session: {path}: candidate not found")
                self._failed.append(path)
        if found:
            state.interpret.add_candidates(found)
        library = str(entry.get("library") or "")
        if library and os.path.isdir(library):
            state.interpret.set_library(library)
        elif library:
            state.messages.errorMessage.emit(f"Session: {library}: library folder not found")
            self._failed.append(library)

    # ---------------------------------------------------------- measured
    def _start_measured(self, entries: list[dict[str, Any]]) -> None:
        state = self._state
        state.measured.measuredAdded.connect(self._on_measured_added)
        state.measured.measuredFailed.connect(self._on_measured_failed)
        state.measured.measuredNeedsColumns.connect(self._on_measured_unresolved)
        state.measured.measuredNeedsGroup.connect(self._on_measured_unresolved)
        for entry in entries:
            path = str(entry.get("path", ""))
            if not os.path.isfile(path):
                state.messages.errorMessage.emit(f"Session: {path}: file not found")
                self._failed.append(path)
                continue
            self._measured_pending.append(entry)
            state.measured.import_files([path], group=entry.get("group") or None,
                                        columns=choice_from_dict(entry.get("columns")))

    def _on_measured_added(self, measured_id: str) -> None:
        doc = self._state.measured.doc(measured_id)
        if doc is None:
            return
        for entry in self._measured_pending:
            if entry.get("path") == doc.path and (entry.get("group") or None) == (doc.data.group or None):
                self._measured_pending.remove(entry)
                state = self._state
                color = entry.get("color")
                if isinstance(color, list) and len(color) == 3:
                    state.measured.set_color(measured_id, tuple(int(c) for c in color))
                state.measured.set_use_flat(measured_id, bool(entry.get("use_flat", True)))
                state.measured.set_visible(measured_id, bool(entry.get("visible", True)))
                params = params_from_dict(entry.get("params"))
                if params != doc.params:
                    state.measured.set_norm_params(measured_id, params)
                break
        self._check_done()

    def _drop_measured(self, path: str) -> None:
        for entry in self._measured_pending:
            if entry.get("path") == path:
                self._measured_pending.remove(entry)
                self._failed.append(path)
                break
        self._check_done()

    def _on_measured_failed(self, path: str, _message: str) -> None:
        self._drop_measured(path)

    def _on_measured_unresolved(self, path: str, *_args) -> None:
        # The file changed since the session was saved: the user is asked as on import.
        self._drop_measured(path)

    # -------------------------------------------------------------- FEFF
    def _start_feff(self) -> None:
        state = self._state
        for entry in self._data.get("feff") or []:
            try:
                path = self._paths[int(entry["structure"])]
                runs = [(int(r["site"]), [int(i) for i in r.get("stands_for", [])], str(r["run_dir"]))
                        for r in entry.get("runs", [])]
                preset, edge = str(entry["preset"]), str(entry.get("edge", "K"))
            except (KeyError, IndexError, TypeError, ValueError):
                state.messages.errorMessage.emit("Session: a FEFF10 entry is unreadable and was skipped")
                continue
            doc = self._doc_for(path)
            if doc is None:
                continue
            self._feff_pending += 1
            state.simulations.load(doc.id, preset, edge, str(entry.get("structure_dir", "")), runs,
                                   on_finished=self._on_feff_loaded)

    def _on_feff_loaded(self) -> None:
        self._feff_pending -= 1
        self._check_done()

    def _doc_for(self, path: str):
        docs = [d for d in self._state.structures.documents if d.structure.source == path]
        return docs[-1] if docs else None

    def _on_opened(self, path: str) -> None:
        if path not in self._pending:
            return
        selection = self._pending.pop(path)
        doc = self._doc_for(path)
        if doc is not None:
            self._state.structures.set_selection(doc.id, selection)
        if not self._pending:
            self._structures_loaded()

    def _on_failed(self, path: str, _message: str) -> None:
        if path in self._pending:
            del self._pending[path]
            self._failed.append(path)
            if not self._pending:
                self._structures_loaded()

    def _structures_loaded(self) -> None:
        state = self._state
        try:
            state.structures.fileOpened.disconnect(self._on_opened)
            state.structures.fileFailed.disconnect(self._on_failed)
        except (RuntimeError, TypeError):
            pass
        self._structures_done = True
        self._start_feff()
        self._check_done()

    def _check_done(self) -> None:
        if self._structures_done and not self._measured_pending and self._feff_pending <= 0 and not self._done:
            self._done = True
            self._finish()

    def _finish(self) -> None:
        state = self._state
        for signal, slot in ((state.measured.measuredAdded, self._on_measured_added),
                             (state.measured.measuredFailed, self._on_measured_failed),
                             (state.measured.measuredNeedsColumns, self._on_measured_unresolved),
                             (state.measured.measuredNeedsGroup, self._on_measured_unresolved)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        if self._current_path:
            doc = self._doc_for(self._current_path)
            if doc is not None:
                state.structures.set_current(doc.id)
        if self._failed:
            state.messages.errorMessage.emit(f"Session restored; {len(self._failed)} file(s) missing or unreadable")
        else:
            state.messages.statusMessage.emit("Session restored")
        # Deferred so a caller that connects after load_session() still hears it.
        QTimer.singleShot(0, lambda: self.finished.emit(list(self._failed)))


def load_session(state: AppState, path: str | Path) -> SessionRestorer:
    """Start restoring the session in ``path``; wait on the restorer's ``finished`` signal.

    Raises:
        ValueError: the file is not a session (bad JSON or version).
        OSError: the file could not be read.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a session file ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a session file")
    restorer = SessionRestorer(state, data)
    restorer.start()
    return restorer
