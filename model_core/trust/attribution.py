"""Which neighbouring atoms shape a predicted spectrum: occlusion, and attention read fairly.

Attribution by **occlusion**: for one absorber site the graph the model sees (the
absorber-centred crop, see :func:`model_core.graph.build_graphs`) is rebuilt once without
each neighbour node (the node and its edges removed; every other edge is unchanged, as edges
depend only on pairwise distances), all of them batched with the intact graph, and the
ensemble-mean spectrum of each is compared with the intact one over an energy window. The
attribution of a node is the root-mean-square change of μ in the window (units of
normalized μ), ``mean_change`` its signed mean (occluded − intact). Periodic images of one
atom are separate nodes; :meth:`SiteAttribution.per_atom` sums them. An atom beyond the crop
radius is not in the graph, so its attribution is zero by construction.

Removing an atom also removes what it contributes to the sum aggregation (coordination
counts), so occlusion measures "this spectrum without this neighbour", which is what a user
asks of a feature; it is not a gradient and needs one forward pass per neighbour.

Attention **relative to uniform**: the readout's attention weight of each neighbour times
the number of neighbours (1 = its uniform share), and the first-shell total relative to
the first shell's uniform share (first shell: neighbours within ``FIRST_SHELL_FACTOR`` ×
the nearest-neighbour distance). The shipped models' attention is near uniform, and this
says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from model_core.types import SiteAttention, Structure, element_symbol

#: First shell: neighbours within this factor of the nearest-neighbour distance.
FIRST_SHELL_FACTOR = 1.15
METHOD = "occlusion: RMS change of the ensemble-mean mu over the window when the node is removed from the graph"


@dataclass(frozen=True, eq=False)
class SiteAttribution:
    """Occlusion attribution of the neighbour nodes of one absorber's graph.

    Attributes:
        site_index: the absorber's atom index.
        atom_index: (K,) input-atom index of each neighbour node.
        image: (K, 3) periodic image of each node.
        atomic_numbers: (K,) element of each node.
        distance: (K,) distance from the absorber in Å.
        attribution: (K,) RMS change of μ over the window when the node is removed.
        mean_change: (K,) mean of (occluded − intact) μ over the window.
        attention_relative: (K,) attention weight × K (1 = uniform share).
        window_ev: (lo, hi) energy window, eV relative to the edge.
    """

    site_index: int
    atom_index: np.ndarray
    image: np.ndarray
    atomic_numbers: np.ndarray
    distance: np.ndarray
    attribution: np.ndarray
    mean_change: np.ndarray
    attention_relative: np.ndarray
    window_ev: tuple[float, float]

    def per_atom(self, n_atoms: int) -> np.ndarray:
        """(n_atoms,) attribution summed over the periodic images of each input atom
        (zero for atoms outside the crop and for the absorber)."""
        return np.bincount(self.atom_index, weights=self.attribution, minlength=n_atoms)


@dataclass(frozen=True)
class FirstShell:
    """Attention on the first coordination shell.

    Attributes:
        n_atoms: neighbour nodes within ``radius_ang``.
        radius_ang: FIRST_SHELL_FACTOR × nearest-neighbour distance.
        attention_share: sum of their attention weights.
        uniform_share: the same under uniform attention (n_atoms / all neighbours).
        relative: attention_share / uniform_share (1: as much as uniform attention gives).
    """

    n_atoms: int
    radius_ang: float
    attention_share: float
    uniform_share: float
    relative: float


def relative_attention(attention: SiteAttention) -> np.ndarray:
    """(K,) each node's attention weight divided by its uniform share (absorber: 0)."""
    neighbours = attention.distance > 1e-8
    out = np.zeros(len(attention.weight))
    out[neighbours] = attention.weight[neighbours] * int(neighbours.sum())
    return out


def first_shell(attention: SiteAttention, factor: float = FIRST_SHELL_FACTOR) -> FirstShell:
    """The first shell's attention total against its uniform share (see :class:`FirstShell`)."""
    neighbours = attention.distance > 1e-8
    if not neighbours.any():
        return FirstShell(0, 0.0, 0.0, 0.0, float("nan"))
    radius = factor * float(attention.distance[neighbours].min())
    shell = neighbours & (attention.distance <= radius)
    share = float(attention.weight[shell].sum())
    uniform = float(shell.sum()) / float(neighbours.sum())
    return FirstShell(int(shell.sum()), radius, share, uniform, share / uniform)


def _without(graph, node: int):
    """``graph`` with one node and its edges removed (nodes renumbered)."""
    from model_core.graph import AbsorberGraph

    keep = np.ones(graph.n_nodes, dtype=bool)
    keep[node] = False
    new_index = np.cumsum(keep) - 1
    edges = keep[graph.edge_index[0]] & keep[graph.edge_index[1]]
    return AbsorberGraph(
        atomic_numbers=graph.atomic_numbers[keep], positions=graph.positions[keep],
        edge_index=new_index[graph.edge_index[:, edges]], edge_vectors=graph.edge_vectors[edges],
        absorber_mask=graph.absorber_mask[keep], atom_index=graph.atom_index[keep],
        image=graph.image[keep], site_index=graph.site_index)


def site_attribution(predictor, structure: Structure, site: int,
                     window_ev: tuple[float, float] | None = None, batch_size: int = 64) -> SiteAttribution:
    """Occlusion attribution of every neighbour of ``site`` (see module docstring).

    Args:
        predictor: a :class:`model_core.inference.XanesPredictor`.
        structure: the structure.
        site: the absorber's atom index.
        window_ev: (lo, hi) eV relative to the edge (default: the whole grid).
        batch_size: graphs per forward pass (the intact graph and all occluded ones).

    Raises:
        ValueError: the window holds no grid point.
    """
    import torch

    from model_core.batching import collate
    from model_core.graph import build_graphs
    from model_core.inference import weighted_mean

    energy = predictor.info.energy_ev
    lo, hi = (float(energy[0]), float(energy[-1])) if window_ev is None else map(float, window_ev)
    in_window = (energy >= lo) & (energy <= hi)
    if not in_window.any():
        raise ValueError(f"the window {lo:g}..{hi:g} eV holds no point of the model grid "
                         f"({energy[0]:g}..{energy[-1]:g} eV)")
    graph = build_graphs(structure, [int(site)], predictor.checkpoint.graph_config)[0]
    neighbours = np.flatnonzero(~graph.absorber_mask)
    graphs = [graph, *(_without(graph, int(j)) for j in neighbours)]
    spectra, attention = [], None
    members = torch.as_tensor(predictor.spectrum_weights, dtype=torch.float64, device=predictor.device)
    with torch.inference_mode():
        for start in range(0, len(graphs), batch_size):
            batch = collate(graphs[start:start + batch_size]).to(predictor.device)
            shared: dict = {}  # the members' crops and edge lengths, once per radius
            outs = [model(batch, shared=shared) for model in predictor.models]
            spectra.append(weighted_mean(torch.stack([o["mu"] for o in outs]).double(), members).cpu().numpy())
            if attention is None:
                weights = weighted_mean(torch.stack([o["attention"] for o in outs]).double(), members).cpu().numpy()
                attention = weights[batch.batch.cpu().numpy() == 0]
    mu = np.concatenate(spectra)[:, in_window]  # (1 + K, W)
    change = mu[1:] - mu[0]
    distance = np.linalg.norm(graph.positions, axis=1)
    site_attention = SiteAttention(graph.atom_index, graph.image, distance, attention)
    return SiteAttribution(
        site_index=int(site), atom_index=graph.atom_index[neighbours], image=graph.image[neighbours],
        atomic_numbers=graph.atomic_numbers[neighbours], distance=distance[neighbours],
        attribution=np.sqrt(np.mean(change ** 2, axis=1)), mean_change=change.mean(axis=1),
        attention_relative=relative_attention(site_attention)[neighbours], window_ev=(lo, hi))


def attribution_record(structure: Structure, result: SiteAttribution, attention: SiteAttention | None) -> dict:
    """One site's JSON object: its atoms, nearest first, and the first-shell attention."""
    order = np.argsort(result.distance, kind="stable")
    record = {"site": result.site_index, "element": structure.symbols[result.site_index],
              "window_ev": list(result.window_ev), "atoms": [
                  {"atom_index": int(result.atom_index[k]), "element": element_symbol(result.atomic_numbers[k]),
                   "image": [int(v) for v in result.image[k]], "distance_ang": round(float(result.distance[k]), 4),
                   "attribution": float(f"{result.attribution[k]:.4g}"),
                   "mean_change": float(f"{result.mean_change[k]:.4g}"),
                   "attention_relative": round(float(result.attention_relative[k]), 4)} for k in order]}
    if attention is not None:
        shell = first_shell(attention)
        record["first_shell"] = {"n_atoms": shell.n_atoms, "radius_ang": round(shell.radius_ang, 4),
                                 "attention_share": round(shell.attention_share, 4),
                                 "uniform_share": round(shell.uniform_share, 4),
                                 "attention_relative": round(shell.relative, 4)}
    return record


def write_attribution_json(path: str | Path, items: Iterable[tuple[str, Structure, object, object]],
                           window_ev: Sequence[float] | None = None) -> Path:
    """Write ``{"method", "inputs": [{"source", "model", "sites": [record, ...]}]}``.

    Args:
        path: the JSON file.
        items: (source, structure, Prediction, predictor) per input; every predicted
            (representative) site is attributed.
        window_ev: (lo, hi) eV relative to the edge (default: each model's whole grid).
    """
    inputs = []
    for source, structure, prediction, predictor in items:
        sites = []
        for k, site in enumerate(prediction.site_indices):
            result = site_attribution(predictor, structure, int(site), window_ev)
            attention = prediction.attention[k] if len(prediction.attention) > k else None
            sites.append(attribution_record(structure, result, attention))
        inputs.append({"source": source, "model": predictor.info.name, "sites": sites})
    path = Path(path)
    path.write_text(json.dumps({"method": METHOD, "attribution_units": "normalized mu",
                                "first_shell": f"neighbours within {FIRST_SHELL_FACTOR} x the nearest distance",
                                "inputs": inputs}, indent=1), encoding="utf-8")
    return path
