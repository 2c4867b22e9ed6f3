"""Test doubles: a fake predictor (smooth synthetic edge + attention) and a fake backend."""

from __future__ import annotations

import threading
from dataclasses import replace
from math import erf

import numpy as np

from model_core.inference import ModelInfo
from model_core.types import Prediction, SiteAttention, SiteSelection, SiteSymmetry, Structure
from xanes_gui.backend import Backend

GRID = np.linspace(-20.0, 60.0, 161)


def synthetic_edge(energy: np.ndarray, shift: float = 0.0) -> np.ndarray:
    """A smooth normalized edge with a white line (looks like a K-edge, means nothing)."""
    step = np.array([0.5 * (1.0 + erf((e - shift) / 2.5)) for e in energy])
    white_line = 0.6 * np.exp(-0.5 * ((energy - shift - 6.0) / 3.0) ** 2)
    onset = 1.0 / (1.0 + np.exp(-(energy - shift - 10.0) / 2.0))
    wiggle = 0.08 * np.sin((energy - shift) / 6.0) * onset
    return step + white_line + wiggle


class FakePredictor:
    """Implements the Predictor protocol without torch.

    Args:
        element: absorbing element.
        name: model name.
        trained: reported trained flag.
        with_e0: whether E0 is predicted.
        gate: when given, every site waits for this event before it is predicted
            (lets tests cancel deterministically).
        domain_score: when given, maps an atom index to its site's domain score (the
            Prediction then carries ``domain_score``, as a model with a domain index does).
    """

    def __init__(self, element: str = "Cu", name: str = "fake-cu-k", trained: bool = True,
                 with_e0: bool = True, gate: threading.Event | None = None, domain_score=None) -> None:
        self.info = ModelInfo(name=name, path="", element=element, edge="K", trained=trained, energy_ev=GRID,
                              device="cpu", device_name="CPU", has_e0=with_e0,
                              card=f"# {name}\n\nA fake model for tests.")
        self.calls: list[list[int]] = []
        self.gate = gate
        self.domain_score = domain_score
        self.started = threading.Event()

    def predict(self, structure: Structure, sites, progress=None) -> Prediction:
        selection = sites if isinstance(sites, SiteSelection) else SiteSelection(np.asarray(list(sites)))
        indices = [int(i) for i in selection.indices]
        self.calls.append(indices)
        self.started.set()
        mu, attention = [], []
        for k, i in enumerate(indices):
            if self.gate is not None:
                self.gate.wait(10)
            mu.append(synthetic_edge(GRID, shift=0.7 * (i % 5)))
            attention.append(self._attention(structure, i))
            if progress is not None:
                progress(k + 1, len(indices))
        mu = np.array(mu)
        weights = selection.weights
        e0 = np.array([8979.0 + 0.5 * i for i in indices]) if self.info.has_e0 else None
        return Prediction(energy_ev=GRID, site_indices=selection.indices, weights=weights, mu=mu,
                          average=np.average(mu, axis=0, weights=weights), e0_ev=e0, attention=tuple(attention),
                          model_name=self.info.name, trained=self.info.trained, element=self.info.element,
                          edge="K", domain_score=None if self.domain_score is None
                          else np.array([float(self.domain_score(i)) for i in indices]))

    @staticmethod
    def _attention(structure: Structure, site: int) -> SiteAttention:
        d = np.linalg.norm(structure.positions - structure.positions[site], axis=1)
        nodes = np.flatnonzero(d < 6.0)
        weight = np.where(nodes == site, 0.0, np.exp(-d[nodes]))
        if weight.sum() > 0:
            weight = weight / weight.sum()
        return SiteAttention(atom_index=nodes, image=np.zeros((len(nodes), 3), dtype=int),
                             distance=d[nodes], weight=weight)


def fake_site_attribution(calls: list | None = None):
    """A ``Backend.site_attribution`` double: every other atom (image 0) gets 1 / distance;
    each call's (predictor, site, window_ev) is appended to ``calls``."""
    from model_core.trust.attribution import SiteAttribution

    def attribution(predictor, structure: Structure, site: int, window_ev=None) -> SiteAttribution:
        if calls is not None:
            calls.append((predictor, site, window_ev))
        d = np.linalg.norm(structure.positions - structure.positions[site], axis=1)
        others = np.flatnonzero(np.arange(structure.n_atoms) != site)
        window = (float(GRID[0]), float(GRID[-1])) if window_ev is None else tuple(map(float, window_ev))
        return SiteAttribution(site, others, np.zeros((len(others), 3), dtype=int), structure.atomic_numbers[others],
                               d[others], 1.0 / d[others], np.zeros(len(others)), np.ones(len(others)), window)

    return attribution


def simple_read(path) -> Structure:
    """Tiny XYZ reader (symbols only) raising ValueError naming the file, like model_core.io."""
    from pathlib import Path

    path = Path(path)
    try:
        lines = path.read_text().splitlines()
        n = int(lines[0])
        rows = [line.split() for line in lines[2:2 + n]]
        from model_core.types import atomic_number

        z = [atomic_number(r[0]) for r in rows]
        pos = [[float(v) for v in r[1:4]] for r in rows]
        return Structure(z, pos, source=str(path), name=path.stem)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable structure ({exc})") from exc


def symmetry_by_element(structure: Structure) -> SiteSymmetry:
    """Fake symmetry: all atoms of one element are equivalent."""
    groups = {s: g for g, s in enumerate(structure.elements)}
    group = np.array([groups[s] for s in structure.symbols])
    counts = np.bincount(group)
    return SiteSymmetry(group=group, wyckoff=tuple(f"{counts[g]}a" for g in group),
                        multiplicity=counts[group], spacegroup_symbol="P1", spacegroup_number=1)


def fake_backend(predictor: FakePredictor | None = None, **changes) -> Backend:
    """A backend without pymatgen/ASE/torch; ``load_model`` returns ``predictor``."""
    predictor = predictor or FakePredictor()

    class Entry:
        name, element, edge, trained, path, card = (predictor.info.name, predictor.info.element, "K",
                                                    predictor.info.trained, "/fake/model.pt", predictor.info.card)

    backend = Backend(
        read_structure=simple_read,
        format_filter=lambda: "XYZ (*.xyz);;All files (*)",
        analyze_symmetry=symmetry_by_element,
        coordination_info=lambda s: (np.full(s.n_atoms, 4), np.full(s.n_atoms, 1.85)),
        list_models=lambda: [Entry()],
        model_for_element=lambda el: Entry() if el == predictor.info.element else None,
        load_model=lambda name, device="auto": predictor,
        available_devices=lambda: [("cpu", "CPU")],
        warm_up=lambda: None,
    )
    return replace(backend, **changes)


def write_xyz(path, symbols, positions) -> str:
    lines = [str(len(symbols)), "test"] + [f"{s} {x:.4f} {y:.4f} {z:.4f}" for s, (x, y, z) in zip(symbols, positions)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def cu4o_cluster(path) -> str:
    """A small Cu4O cluster: 4 Cu around one O (tetrahedron)."""
    symbols = ["O", "Cu", "Cu", "Cu", "Cu"]
    positions = [(0, 0, 0), (1.1, 1.1, 1.1), (-1.1, -1.1, 1.1), (-1.1, 1.1, -1.1), (1.1, -1.1, -1.1)]
    return write_xyz(path, symbols, positions)


# ------------------------------------------------------------ measured spectra

EDGE_EV = 8980.0


def arctan_edge(energy: np.ndarray, e0: float = EDGE_EV) -> np.ndarray:
    """Raw-looking absorption: sloped background, arctan edge of step 1.5, a white line."""
    return (0.3 + 2e-4 * (energy - 8900.0) + 1.5 * (0.5 + np.arctan((energy - e0) / 2.0) / np.pi)
            + 0.4 * np.exp(-0.5 * ((energy - e0 - 8.0) / 4.0) ** 2))


def write_two_columns(path, energy: np.ndarray | None = None, mu: np.ndarray | None = None,
                      header: str = "# energy mu") -> str:
    """A plain 'energy mu' column file (arctan edge near 8980 eV by default)."""
    energy = np.arange(8880.0, 9180.0, 0.5) if energy is None else energy
    mu = arctan_edge(energy) if mu is None else mu
    lines = [header] + [f"{e:.3f} {m:.6f}" for e, m in zip(energy, mu)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def write_xdi(path, energy: np.ndarray | None = None) -> str:
    """A minimal XDI file (Cu K edge, energy and mutrans columns)."""
    energy = np.arange(8880.0, 9180.0, 0.5) if energy is None else energy
    mu = arctan_edge(energy)
    head = ["# XDI/1.0", "# Column.1: energy eV", "# Column.2: mutrans", "# Element.symbol: Cu",
            "# Element.edge: K", "# Sample.name: synthetic Cu", "# Mono.d_spacing: 3.13555", "# ///",
            "#----", "# energy mutrans"]
    path.write_text("\n".join(head + [f"{e:.3f} {m:.6f}" for e, m in zip(energy, mu)]) + "\n")
    return str(path)


def write_i0_it(path) -> str:
    """Energy, I0 and It columns under names the reader does not know ('mon', 'det')."""
    energy = np.arange(8880.0, 9180.0, 0.5)
    i0 = 1e5 * (1.0 + 0.01 * np.sin(energy / 7.0))
    it = i0 * np.exp(-arctan_edge(energy))
    lines = ["# energy mon det"] + [f"{e:.3f} {a:.3f} {b:.3f}" for e, a, b in zip(energy, i0, it)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def write_shifted_prediction(path, predictor: FakePredictor, site: int, offset_ev: float) -> str:
    """A 'measured' file that is the fake prediction of ``site`` moved by ``offset_ev``.

    The fake model places site i at E0 = 8979 + 0.5 i with a curve shifted by 0.7 (i % 5);
    the file extends that curve far below and above the edge (synthetic_edge is defined
    everywhere), scaled and put on a background as a real measurement would be.
    """
    e0 = 8979.0 + 0.5 * site + offset_ev
    energy = np.arange(e0 - 80.0, e0 + 200.0, 0.25)
    mu = 0.2 + 1e-4 * (energy - energy[0]) + 1.7 * synthetic_edge(energy - e0, shift=0.7 * (site % 5))
    return write_two_columns(path, energy, mu)


# ---------------------------------------------------------------------- FEFF10

def fake_xmu_text(e0: float, shift: float = 0.0) -> str:
    """An xmu.dat as FEFF writes it: omega, e, k, mu, mu0, chi on a -20..60 eV grid."""
    rel = np.linspace(-20.0, 60.0, 121)
    k = np.sign(rel) * np.sqrt(np.abs(rel) / 3.81)
    mu = synthetic_edge(rel, shift=shift)
    mu0 = 0.5 * (1.0 + np.tanh(rel / 3.0))
    rows = [f"{e0 + e:11.3f} {e:11.3f} {kk:8.3f} {m:13.5e} {m0:13.5e} {m - m0:13.5e}"
            for e, kk, m, m0 in zip(rel, k, mu, mu0)]
    head = ["# fake FEFF10 xmu.dat", "# xsedge+ 50, used to normalize mu       1.0000E-03",
            "#  omega    e    k    mu    mu0     chi     @#"]
    return "\n".join(head + rows) + "\n"


class FakeFeff:
    """Stands in for model_core.feff.simulation.simulate: writes xmu.dat files in the runner's layout.

    Args:
        gate: when given, each site waits for it (lets a test cancel mid-run).

    Attributes:
        calls: (preset, edge, workers, out_dir) of each call.
        cancel_seen: whether a call saw its cancel_event set.
    """

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.calls: list[tuple] = []
        self.started = threading.Event()
        self.cancel_seen = False

    @staticmethod
    def e0(site: int) -> float:
        return 8980.0 + 0.4 * site

    def simulate(self, structure, selection, out_dir, preset, edge="K", *, workers=1, progress=None,
                 cancel_event=None, symmetry=None):
        from pathlib import Path

        from model_core.feff.inputs import site_dir_name
        from model_core.feff.simulation import SimulationSummary, SiteRun, structure_folder_name

        self.calls.append((preset, edge, workers, str(out_dir)))
        name = structure_folder_name(structure)
        structure_dir = (Path(out_dir) / name).resolve()
        summary = SimulationSummary(name, structure_dir, preset, edge)
        representatives, _ = symmetry.representatives(selection.indices)
        total = len(representatives)
        for k, rep in enumerate(int(r) for r in representatives):
            stands_for = tuple(int(i) for i in np.flatnonzero(symmetry.group == symmetry.group[rep]))
            run_dir = structure_dir / "FEFF-XANES" / site_dir_name(rep, structure.symbols[rep])
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "feff.inp").write_text(f"* fake input, preset {preset}\n")
            summary.runs.append(SiteRun(rep, run_dir, stands_for))
            self.started.set()
            if self.gate is not None:
                self.gate.wait(10)
            if cancel_event is not None and cancel_event.is_set():
                self.cancel_seen = True
                summary.cancelled.append(run_dir)
                if progress:
                    progress(k + 1, total, f"{run_dir.name} cancelled")
                continue
            (run_dir / "xmu.dat").write_text(fake_xmu_text(self.e0(rep), shift=0.3 * k))
            summary.done.append(run_dir)
            if progress:
                progress(k + 1, total, f"{run_dir.name} done in 1 s")
        return summary


# ------------------------------------------------------------------ interpret

def fake_predict_candidates(predictor: FakePredictor, paths, element, progress, library=None):
    """Stands in for backend.predict_candidates: reads XYZ files with :func:`simple_read` and
    predicts every site of ``element`` with the fake predictor (no members)."""
    from model_core.interpret.library import Candidate

    candidates, skipped = [], []
    for k, path in enumerate(paths):
        progress(k, len(paths))
        structure = simple_read(path)
        sites = structure.indices_of(element)
        if len(sites) == 0:
            skipped.append(f"{path}: no {element} site")
            continue
        prediction = predictor.predict(structure, SiteSelection(np.asarray(sites)))
        candidates.append(Candidate(path=str(path), name=structure.name, spectrum=prediction.average_spectrum(),
                                    members=np.empty((0, len(GRID))), site_indices=prediction.site_indices,
                                    weights=prediction.weights))
    progress(len(paths), len(paths))
    return candidates, skipped


class FakeRefiner:
    """Stands in for backend.predict_distorted and backend.refine_structure (no torch).

    Attributes:
        previews: (shell_scales, strain) of each live prediction asked for.
    """

    def __init__(self) -> None:
        self.previews: list[tuple[tuple[float, ...], float]] = []

    def predict_distorted(self, predictor, structure, sites, weights, shell_scales=(), strain=0.0):
        from model_core.types import Spectrum

        self.previews.append((tuple(shell_scales), float(strain)))
        stretch = float(shell_scales[0]) if len(shell_scales) else 1.0
        shells = ({"shell": 1, "n_atoms": 4, "start_a": 1.9, "distance_a": 1.9 * stretch},)
        return Spectrum(GRID, synthetic_edge(GRID * stretch), energy_reference="edge", metadata={"shells": shells})

    def refine_structure(self, predictor, structure, sites, weights, energy_ev, mu, calibration, *, element,
                         params, window=None):
        from types import SimpleNamespace

        energy = np.linspace(8970.0, 9030.0, 61)
        fit = SimpleNamespace(energy_ev=energy, fitted=synthetic_edge(energy - 8980.0))
        parameters = {"shell_1_scale": 1.03, "shift_ev": 0.4, "gaussian_fwhm_ev": 2.0, "lorentzian_fwhm_ev": 0.5,
                      "scale": 1.1}
        return SimpleNamespace(parameters=parameters, stderr={k: 0.01 for k in parameters},
                               first_shell={"distance_a": 1.957, "start_a": 1.9, "stderr_a": 0.004, "n_atoms": 4.0},
                               shells=({"shell": 1, "n_atoms": 4, "start_a": 1.9, "distance_a": 1.957},),
                               metrics_start={"mse": 0.01, "pearson_r": 0.9, "pearson_r_deriv": 0.8},
                               metrics_end={"mse": 0.002, "pearson_r": 0.99, "pearson_r_deriv": 0.95},
                               fit_end=fit, seconds=0.1)


def interpret_backend(predictor: FakePredictor, refiner: FakeRefiner | None = None, **changes) -> Backend:
    """:func:`fake_backend` with fake candidate prediction, live prediction and refinement."""
    from model_core.interpret.calibration import Calibration

    refiner = refiner or FakeRefiner()
    return fake_backend(
        predictor, predict_candidates=lambda p, paths, element, progress, library=None:
        fake_predict_candidates(p, paths, element, progress),
        predict_distorted=refiner.predict_distorted, refine_structure=refiner.refine_structure,
        placement_base=lambda spectrum, element: float(spectrum.e0_ev or 8979.0),
        calibrate_tabulated=lambda p, element, e0=None: Calibration(element, 0.25, "tabulated",
                                                                     details={"tabulated_edge_ev": 8979.0}),
        **changes)


# -------------------------------------------------------------------- inverse

class FakeInverter:
    """Stands in for backend.infer_structure: two candidates (tetrahedral CuO4, then linear CuO2) with
    smooth round-trip spectra on :data:`GRID`; ``calls`` records (path, element, n_samples, group, model)
    and ``spectra`` the in-memory spectrum of each call (None for a file).

    Like the real one it reports 0..2 of 3 before sampling, then ``2 + k`` of ``2 + steps`` for
    each of ``steps`` sampling steps; with a ``gate`` it waits for it at step ``hold_at`` (to test
    Cancel). ``reached``: the last sampling step started."""

    def __init__(self, gate: threading.Event | None = None, steps: int = 4, hold_at: int = 1) -> None:
        self.calls: list[tuple] = []
        self.spectra: list = []
        self.gate = gate
        self.steps, self.hold_at = steps, hold_at
        self.reached = 0

    def infer_structure(self, path, element, n_samples, progress, *, group=None, model=None, device="cpu",
                        spectrum=None):
        from model_core.inverse.api import Candidate
        from model_core.inverse.spectrum import GridSpectrum
        from model_core.types import atomic_number

        self.calls.append((str(path), element, n_samples, group, model))
        self.spectra.append(spectrum)
        progress(0, 3)
        progress(2, 3)
        for k in range(1, self.steps + 1):
            self.reached = k
            if k == self.hold_at and self.gate is not None:
                self.gate.wait(30)
            progress(2 + k, 2 + self.steps)
        z_abs, z_o = atomic_number(element), atomic_number("O")
        d = 1.95 / np.sqrt(3.0)
        tetra = np.array([[0, 0, 0], [d, d, d], [-d, -d, d], [-d, d, -d], [d, -d, -d]], dtype=float)
        linear = np.array([[0, 0, 0], [1.85, 0, 0], [-1.85, 0, 0]], dtype=float)
        candidates = tuple(
            Candidate(method=method, atomic_numbers=np.array([z_abs] + [z_o] * (len(pos) - 1)), positions_a=pos,
                      coordination_number=len(pos) - 1, first_shell_distance_a=r, neighbours={"O": len(pos) - 1},
                      roundtrip_mse=mse, energy_ev=GRID, roundtrip_mu=synthetic_edge(GRID, shift))
            for method, pos, r, mse, shift in (("diffusion", tetra, 1.95, 0.001, 0.0),
                                               ("retrieval", linear, 1.85, 0.004, 1.0)))
        e0 = EDGE_EV if spectrum is None else (spectrum.e0_ev if spectrum.e0_ev is not None else float("nan"))
        on_grid = GridSpectrum(energy_ev=GRID, mu=synthetic_edge(GRID), source=str(path), e0_ev=e0)
        return {"model": "fake-inverse", "spectrum": on_grid, "candidates": candidates}


def open_and_predict(qtbot, window, path, sites):
    """Open ``path`` in the window, select ``sites`` and wait for the prediction (returned)."""
    with qtbot.waitSignal(window.state.structures.fileOpened, timeout=10000):
        window.state.structures.open_files([path])
    window.state.structures.set_selection(window.state.structures.current_id, sites)
    with qtbot.waitSignal(window.state.predictions.predictionReady, timeout=10000) as blocker:
        window.state.predictions.predict()
    return blocker.args[1]
