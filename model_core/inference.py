"""Inference API (no Qt): load a model by name or path and predict spectra.

Contract::

    predictor = load_model("cu-k-feff", device="auto")   # auto: CUDA, then MPS, then CPU
    predictor.info                  # ModelInfo: name, element, edge, trained, grid, device, card
    result = predictor.predict(structure, sites)          # -> model_core.types.Prediction

``sites`` is a :class:`~model_core.types.SiteSelection` or a sequence of 0-based atom
indices. Prediction is batched and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from model_core.types import Band, Prediction, SiteSelection, Structure

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` during prediction; may raise to cancel."""


@dataclass(frozen=True)
class ModelInfo:
    """What the GUI and CLIs show about a model.

    Attributes:
        name: registry name or file stem.
        path: checkpoint path.
        element: absorbing element symbol the model was trained for.
        edge: absorption edge ("K").
        trained: False for a model without trained weights.
        energy_ev: (G,) the output grid in eV relative to the edge.
        device: the torch device string the model runs on ("cpu", "cuda:0").
        device_name: human-readable device ("CPU", "NVIDIA H200").
        has_e0: whether the model predicts the absolute edge energy.
        card: model card text (markdown), "" when none.
        metrics: validation metrics stored in the checkpoint.
        n_members: number of ensemble members whose predictions are averaged (1 = one model).
    """

    name: str
    path: str
    element: str
    edge: str
    trained: bool
    energy_ev: np.ndarray
    device: str
    device_name: str
    has_e0: bool
    card: str = ""
    metrics: dict | None = None
    n_members: int = 1


class Predictor(Protocol):
    """Anything that predicts spectra; the GUI depends only on this protocol."""

    info: ModelInfo

    def predict(self, structure: Structure, sites: SiteSelection | Sequence[int],
                progress: ProgressCallback | None = None) -> Prediction:
        ...


class ModelLoadError(ValueError):
    """A model name or path could not be resolved or loaded."""


class ElementMismatchError(ValueError):
    """A site's element differs from the element the model was trained for."""


def available_devices() -> list[tuple[str, str]]:
    """Devices this machine can run on, best first, as (torch device string, human name)."""
    import torch

    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            devices.append((f"cuda:{i}", torch.cuda.get_device_name(i)))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append(("mps", "Apple GPU (MPS)"))
    devices.append(("cpu", "CPU"))
    return devices


def resolve_device(device: str = "auto") -> tuple[str, str]:
    """Map "auto"/"cpu"/"cuda"/"cuda:1"/"mps" to an available (device, human name).

    Raises:
        ModelLoadError: when an explicitly requested device is not available.
    """
    options = available_devices()
    if device in ("auto", "", None):
        return options[0]
    wanted = "cuda:0" if device == "cuda" else device
    for dev, name in options:
        if dev == wanted:
            return dev, name
    available = ", ".join(d for d, _ in options)
    raise ModelLoadError(f"device {device!r} is not available on this machine (available: {available})")


def resolve_model_path(name_or_path: str | None, element: str | None = None) -> tuple[str, str, str]:
    """Find a checkpoint by registry name, file path, or absorbing element.

    Returns:
        (name, checkpoint path, model card text).
    """
    from model_core import registry

    if name_or_path:
        path = Path(name_or_path)
        if path.is_dir() and (path / registry.MODEL_FILE).is_file():
            path = path / registry.MODEL_FILE
        if path.is_file():
            card_path = path.parent / registry.CARD_FILE
            card = card_path.read_text(encoding="utf-8") if card_path.is_file() else ""
            name = path.parent.name if path.name == registry.MODEL_FILE else path.stem
            return name, str(path), card
        entry = registry.find_model(str(name_or_path))
        if entry is None:
            known = ", ".join(e.name for e in registry.list_models()) or "none"
            raise ModelLoadError(f"no model named {name_or_path!r} and no such file (shipped models: {known})")
        return entry.name, entry.path, entry.card
    if element:
        entry = registry.model_for_element(element)
        if entry is None:
            known = ", ".join(f"{e.name} ({e.element})" for e in registry.list_models()) or "none"
            raise ModelLoadError(f"no model for element {element} (shipped models: {known})")
        return entry.name, entry.path, entry.card
    raise ModelLoadError("give a model name or path, or an element to choose one")


class XanesPredictor:
    """A loaded XANE(3) checkpoint ready to predict (implements :class:`Predictor`).

    Args:
        checkpoint: the loaded checkpoint.
        name: model name for display.
        path: checkpoint path.
        card: model card text.
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        batch_size: graphs per forward pass.
    """

    def __init__(self, checkpoint, name: str, path: str = "", card: str = "",
                 device: str = "auto", batch_size: int = 32) -> None:
        import torch

        from model_core.nn.model import XANE3

        self._checkpoint = checkpoint
        self._batch_size = int(batch_size)
        dev, dev_name = resolve_device(device)
        self._device = torch.device(dev)
        from model_core.allocator import keep_freed_memory

        keep_freed_memory()  # per-edge tensors reuse warm heap pages (see model_core.allocator)
        models = []
        for state_dict, config in zip(checkpoint.state_dicts, checkpoint.model_configs):
            model = XANE3(config)
            model.load_state_dict(state_dict)
            models.append(model)
        if not models:
            # Untrained placeholder: fixed seed so that even its output is reproducible.
            torch.manual_seed(0)
            models.append(XANE3(checkpoint.model_config))
        # Members of a deep ensemble are run one after another on the same batch and
        # averaged (a few members cost a few forward passes of milliseconds each).
        self._models = [m.to(self._device).eval() for m in models]
        from model_core.checkpoint import member_roles

        self._spectrum_members, self._e0_members = member_roles([m.config for m in self._models])
        # (K,) summing to 1: a weighted ensemble's members count unequally in the spectrum mean.
        self._spectrum_weights = (checkpoint.spectrum_weights if checkpoint.state_dicts
                                  else np.ones(1, dtype=np.float64))
        has_e0 = bool(checkpoint.model_config.e0_head) and np.isfinite(checkpoint.e0_std_ev)
        self.info = ModelInfo(
            name=name, path=str(path), element=checkpoint.element, edge=checkpoint.edge,
            trained=checkpoint.trained, energy_ev=checkpoint.energy_ev, device=dev,
            device_name=dev_name, has_e0=has_e0, card=card, metrics=dict(checkpoint.metrics),
            n_members=len(self._spectrum_members),
        )
        from model_core.trust.calibration import SpreadCalibration
        from model_core.trust.domain import DomainIndex
        from model_core.trust.e0 import E0Calibration

        self._calibration = (None if checkpoint.spread_calibration is None or len(self._spectrum_members) < 2
                             else SpreadCalibration.from_dict(checkpoint.spread_calibration))
        self._domain_index = None if checkpoint.domain_index is None else DomainIndex.from_dict(checkpoint.domain_index)
        self._e0_calibration = (None if checkpoint.e0_calibration is None or not has_e0
                                else E0Calibration.from_dict(checkpoint.e0_calibration))

    @property
    def checkpoint(self):
        return self._checkpoint

    def to(self, device: str) -> "XanesPredictor":
        """A predictor for the same checkpoint on another device."""
        return XanesPredictor(self._checkpoint, self.info.name, self.info.path, self.info.card,
                              device=device, batch_size=self._batch_size)

    def predict(self, structure: Structure, sites: SiteSelection | Sequence[int],
                progress: ProgressCallback | None = None, *,
                allow_other_elements: bool = False) -> Prediction:
        """Predict the spectra of the given absorber sites.

        Args:
            structure: the structure.
            sites: a site selection or 0-based atom indices.
            progress: called as ``progress(done, total)`` after each batch; raising
                from it cancels the prediction.
            allow_other_elements: predict sites whose element differs from the
                model's (meaningless physically; off by default).

        Returns:
            Prediction with (M, G) spectra on the model grid (eV relative to the edge).

        Raises:
            ElementMismatchError: a site is not of the model's element.
            IndexError: a site index is out of range.
        """
        from model_core.graph import build_graphs

        selection = sites if isinstance(sites, SiteSelection) else SiteSelection(np.asarray(list(sites)))
        if len(selection) == 0:
            raise ValueError("no absorber sites selected")
        for i in selection.indices:
            if not 0 <= i < structure.n_atoms:
                raise IndexError(f"site {int(i)} out of range (structure has {structure.n_atoms} atoms)")
        if not allow_other_elements and self.info.element:
            wrong = [int(i) for i in selection.indices if structure.symbols[i] != self.info.element]
            if wrong:
                raise ElementMismatchError(
                    f"site(s) {', '.join(map(str, wrong[:8]))} are {structure.symbols[wrong[0]]}, but model "
                    f"{self.info.name} predicts {self.info.element} {self.info.edge}-edge spectra")
        # Every member must embed every element present.
        max_z = min(c.max_z for c in self._checkpoint.model_configs or (self._checkpoint.model_config,))
        if int(structure.atomic_numbers.max()) >= max_z:
            heavy = sorted({s for s, z in zip(structure.symbols, structure.atomic_numbers) if z >= max_z})
            raise ValueError(f"{structure.source or structure.name}: model {self.info.name} has no embedding "
                             f"for {', '.join(heavy)} (atomic numbers up to {max_z - 1})")
        graphs = build_graphs(structure, selection.indices, self._checkpoint.graph_config)
        out = self._run(graphs, progress)
        mu, spread = out.mu, out.spread
        weights = selection.weights
        average = np.average(mu, axis=0, weights=weights)
        lo = hi = band = None
        if spread is not None and self.calibration is not None:
            lo, hi = self.calibration.band(mu, spread)
            band = Band(level=self.calibration.level, method=self.calibration.method)
        e0_interval = (None if out.e0 is None or self._e0_calibration is None
                       else self._e0_calibration.interval(out.e0, out.e0_spread))
        e0_band = None if e0_interval is None else Band(self._e0_calibration.level, self._e0_calibration.method)
        return Prediction(
            energy_ev=self.info.energy_ev, site_indices=selection.indices, weights=weights,
            mu=mu, average=average, e0_ev=out.e0, attention=out.attention, model_name=self.info.name,
            trained=self.info.trained, element=self.info.element, edge=self.info.edge,
            mu_spread=spread, mu_lo=lo, mu_hi=hi, band=band, domain_score=out.domain_score,
            e0_spread_ev=out.e0_spread, e0_lo_ev=None if e0_interval is None else e0_interval[0],
            e0_hi_ev=None if e0_interval is None else e0_interval[1], e0_band=e0_band,
            grid_origin_ev=self._checkpoint.grid_origin_ev,
        )

    @property
    def calibration(self):
        """The checkpoint's :class:`~model_core.trust.calibration.SpreadCalibration`, or None."""
        return self._calibration

    @property
    def e0_calibration(self):
        """The checkpoint's :class:`~model_core.trust.e0.E0Calibration`, or None."""
        return self._e0_calibration

    @property
    def domain_index(self):
        """The checkpoint's :class:`~model_core.trust.domain.DomainIndex`, or None."""
        return self._domain_index

    @property
    def models(self) -> tuple:
        """The networks whose spectra are averaged (every member but dedicated E0 members;
        see :func:`model_core.checkpoint.member_roles`), in evaluation mode on this
        predictor's device."""
        return tuple(self._models[k] for k in self._spectrum_members)

    @property
    def spectrum_weights(self) -> np.ndarray:
        """(K,) weights of :attr:`models` in the spectrum mean (summing to 1; equal unless
        the checkpoint weights its members)."""
        return self._spectrum_weights

    @property
    def device(self):
        """The torch device the members run on."""
        return self._device

    def predict_graphs(self, graphs: Sequence, progress: ProgressCallback | None = None):
        """Raw batched prediction for prepared graphs: ((M, G) mu, (M,) E0 or None, attention)."""
        out = self._run(list(graphs), progress)
        return out.mu, out.e0, out.attention

    def graph_outputs(self, graphs: Sequence, progress: ProgressCallback | None = None) -> "GraphOutputs":
        """Everything one pass over prepared graphs gives (see :class:`GraphOutputs`)."""
        return self._run(list(graphs), progress)

    def _run(self, graphs: list, progress: ProgressCallback | None) -> "GraphOutputs":
        """Predict each distinct graph once and share the result with its duplicates.

        Sites related by a lattice translation (every supercell, every slab) have the same
        environment in the absorber frame; the model is deterministic, so one forward pass
        serves them all. Attention weights carry over through the node correspondence and
        are mapped back through each site's own atom indices.
        """
        import torch

        from model_core.batching import collate
        from model_core.types import SiteAttention

        unique, slot, correspondence = _distinct_graphs(graphs)

        total = len(unique)
        weights = torch.as_tensor(self._spectrum_weights, dtype=torch.float64, device=self._device)
        spectra, spreads, e0s, e0_spreads, node_weights, embeddings = [], [], [], [], [], []
        with torch.inference_mode():
            for start in range(0, total, self._batch_size):
                chunk = unique[start:start + self._batch_size]
                batch = collate(chunk).to(self._device)
                shared: dict = {}  # the members' crops and edge lengths, once per radius
                every = [model(batch, shared=shared) for model in self._models]
                outs = [every[k] for k in self._spectrum_members]
                member_mu = torch.stack([out["mu"] for out in outs]).double()  # (K, B, G)
                mean_mu = weighted_mean(member_mu, weights)
                spectra.append(mean_mu.cpu().numpy())
                spreads.append(weighted_mean((member_mu - mean_mu) ** 2, weights).sqrt().cpu().numpy())
                embeddings.append(outs[0]["readout"].double().cpu().numpy())
                if outs[0].get("e0") is not None and self.info.has_e0:
                    # (K_E0, B) standardized, over the dedicated E0 members when there are any
                    member_e0 = torch.stack([every[k]["e0"] for k in self._e0_members]).double()
                    e0s.append(member_e0.mean(0).cpu().numpy())
                    e0_spreads.append(member_e0.std(0, correction=0).cpu().numpy())
                node_weight = weighted_mean(torch.stack([out["attention"] for out in outs]).double(),
                                            weights).cpu().numpy()
                node_graph = batch.batch.cpu().numpy()
                node_weights.extend(node_weight[node_graph == k] for k in range(len(chunk)))
                if progress is not None:
                    progress(min(start + len(chunk), total), total)
        mu = np.concatenate(spectra, axis=0)[slot]
        spread = np.concatenate(spreads, axis=0)[slot] if len(self._spectrum_members) > 1 else None
        e0 = e0_spread = None
        if e0s:
            e0 = np.concatenate(e0s)[slot] * self._checkpoint.e0_std_ev + self._checkpoint.e0_mean_ev
            if len(self._e0_members) > 1:
                e0_spread = np.concatenate(e0_spreads)[slot] * abs(self._checkpoint.e0_std_ev)
        attention = tuple(
            SiteAttention(atom_index=graph.atom_index, image=graph.image,
                          distance=np.linalg.norm(graph.positions, axis=1),
                          weight=node_weights[slot[i]][correspondence[i]])
            for i, graph in enumerate(graphs))
        embedding = np.concatenate(embeddings, axis=0)
        # Scored once per distinct graph: the nearest-neighbour search is most of the cost.
        score = None if self._domain_index is None else self._domain_index.score(embedding)[slot]
        return GraphOutputs(mu=mu, e0=e0, attention=attention, spread=spread,
                            embedding=embedding[slot], domain_score=score, e0_spread=e0_spread)


def weighted_mean(members, weights):
    """Mean over the leading (member) axis of a (K, ...) tensor with (K,) weights summing to 1."""
    import torch

    return torch.tensordot(weights.to(members.dtype), members, dims=1)


@dataclass(frozen=True, eq=False)
class GraphOutputs:
    """One pass of the model over M prepared graphs (numpy; stays inside model_core/trainer).

    Attributes:
        mu: (M, G) ensemble-mean spectra.
        e0: (M,) absolute E0 in eV, or None.
        attention: one SiteAttention per graph.
        spread: (M, G) standard deviation over members, or None for one model.
        embedding: (M, F) the first member's readout vector (the domain-score embedding).
        domain_score: (M,) domain score, or None without a domain index.
        e0_spread: (M,) standard deviation of the absolute E0 over members in eV, or None
            for one model or without E0.
    """

    mu: np.ndarray
    e0: np.ndarray | None
    attention: tuple
    spread: np.ndarray | None
    embedding: np.ndarray
    domain_score: np.ndarray | None
    e0_spread: np.ndarray | None = None


# Two environments are the same when every node has a partner of the same element within
# this distance (Å): far below any effect on a spectrum, far above floating-point noise.
_SAME_POSITION_ANG = 1e-5


def _distinct_graphs(graphs: Sequence) -> tuple[list, np.ndarray, list[np.ndarray]]:
    """Group graphs whose absorber-frame environments coincide.

    Returns:
        ``(unique, slot, correspondence)``: the distinct graphs; (M,) index into
        ``unique`` of every graph; for every graph an (n,) array mapping its nodes to the
        matching nodes of its representative.
    """
    from scipy.spatial import cKDTree

    unique: list = []
    signatures: list[np.ndarray] = []
    trees: list = []
    classes: dict[tuple, list[int]] = {}
    slot = np.empty(len(graphs), dtype=np.int64)
    correspondence: list[np.ndarray] = []
    for i, graph in enumerate(graphs):
        z = np.asarray(graph.atomic_numbers)
        positions = np.asarray(graph.positions, dtype=np.float64)
        signature = np.sort(np.linalg.norm(positions, axis=1))  # (n,) sorted distances
        coarse = (len(z), int(graph.n_edges), np.sort(z).tobytes())
        match = None
        for r in classes.get(coarse, ()):
            if np.abs(signatures[r] - signature).max() > _SAME_POSITION_ANG:
                continue
            if trees[r] is None:
                trees[r] = cKDTree(unique[r].positions)
            distance, partner = trees[r].query(positions)
            if (distance.max() <= _SAME_POSITION_ANG
                    and np.array_equal(np.asarray(unique[r].atomic_numbers)[partner], z)
                    and len(np.unique(partner)) == len(z)):
                match = (r, partner)
                break
        if match is None:
            classes.setdefault(coarse, []).append(len(unique))
            match = (len(unique), np.arange(len(z)))
            unique.append(graph)
            signatures.append(signature)
            trees.append(None)
        slot[i] = match[0]
        correspondence.append(match[1])
    return unique, slot, correspondence


def load_model(name_or_path: str | None = None, device: str = "auto", *,
               element: str | None = None, batch_size: int = 32) -> XanesPredictor:
    """Load a shipped model by name, a checkpoint by path, or the model for an element.

    Args:
        name_or_path: registry name ("cu-k-feff"), a checkpoint file, or a model folder.
        device: "auto" (CUDA, then Apple MPS, then CPU), "cpu", "cuda", "cuda:N", "mps".
        element: choose the shipped model for this absorbing element when no name is given.
        batch_size: graphs per forward pass.

    Raises:
        ModelLoadError: unknown name, unreadable checkpoint or unavailable device.
    """
    from model_core.checkpoint import CheckpointError, load_checkpoint

    name, path, card = resolve_model_path(name_or_path, element)
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as exc:
        raise ModelLoadError(str(exc)) from exc
    return XanesPredictor(checkpoint, name=name, path=path, card=card, device=device,
                          batch_size=batch_size)
