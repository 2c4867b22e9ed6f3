"""Checkpoints: one plain dict, loadable with ``torch.load(weights_only=True)``.

Layout (``FORMAT_VERSION`` 4; versions 1 to 3 still load)::

    {
      "format_version": 4,
      "model_config": {...},            # to_dict(ModelConfig), nested plain types
      "graph_config": {...},            # to_dict(GraphConfig)
      "state_dict": {name: tensor},     # None for an untrained model card
      "ensemble_state_dicts": [{name: tensor}, ...],  # further members of a deep ensemble
                                        # (predictions are averaged)
      "ensemble_model_configs": [{...}, ...],  # their architectures, only when one differs
                                        # from model_config
      "member_weights": [float, ...],   # only when unequal: one per member (state_dict's
                                        # first), the spectrum mean's relative weights
      "trained": bool,
      "element": "Cu", "edge": "K",
      "energy_grid_ev": tensor (G,),    # relative to the edge
      "normalization": {"mode": ..., ...},
      "e0_mean_ev": float, "e0_std_ev": float,   # E0 standardization (nan when absent)
      "train_mean_spectrum": tensor (G,),
      "provenance": {...}, "metrics": {...},
      "library_versions": {...},
      "spread_calibration": {...},      # optional: model_core.trust.calibration
      "domain_index": {...},            # optional: model_core.trust.domain
      "e0_calibration": {...},          # optional: model_core.trust.e0
      "grid_origin_ev": float,          # optional: the grid is E - this fixed energy (FDMNES's
                                        # tabulated edge) instead of E - each site's E0
    }

The optional trust entries are added by ``xanes-calibrate`` to any checkpoint without
touching the rest (:func:`add_entries`); programs that predate them ignore them.

Whole models are never pickled: only tensors and plain Python values go in.

A file is written with the lowest version that describes it, so older programs keep
reading what they can: 1 for one model, 2 for an ensemble of one architecture, 3 for an
ensemble whose members differ in architecture (older programs refuse it cleanly instead
of loading weights into the wrong network), 4 for an ensemble whose spectrum mean weights
its members unequally (older programs would silently average them equally).
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from model_core.config import GraphConfig, ModelConfig, from_dict, own_crop, to_dict

FORMAT_VERSION = 4
#: Files without ensemble members are written as version 1, which older programs read.
_SINGLE_MODEL_VERSION = 1
#: Ensembles whose members all share ``model_config``.
_SAME_ARCHITECTURE_VERSION = 2
#: Ensembles of members that differ in architecture, averaged equally.
_MIXED_ARCHITECTURE_VERSION = 3


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or of an unknown format."""


def library_versions() -> dict[str, str]:
    """Versions of the libraries that define the numerics of a checkpoint."""
    # str(): torch.__version__ is a TorchVersion object, which weights_only loading refuses.
    versions = {"python": platform.python_version(), "torch": str(torch.__version__),
                "numpy": str(np.__version__)}
    for module in ("e3nn", "torch_geometric"):
        try:
            versions[module] = str(__import__(module).__version__)
        except Exception:  # noqa: BLE001 - a missing optional library is just not recorded
            versions[module] = "unknown"
    return versions


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """In-memory view of a checkpoint dict (see module docstring).

    ``member_state_dicts`` holds the weights of further ensemble members (independently
    trained on the same data and split); empty for one model. ``member_model_configs``
    holds their architectures when they differ from ``model_config`` (one per further
    member), and is empty when every member shares it. ``member_weights`` (one per member
    of ``state_dicts``, empty when equal) weights the members in the spectrum mean and
    spread; dedicated E0 members average equally whatever their weight.
    """

    model_config: ModelConfig
    graph_config: GraphConfig
    state_dict: Mapping[str, torch.Tensor] | None
    element: str
    edge: str = "K"
    trained: bool = False
    normalization: Mapping[str, Any] = field(default_factory=dict)
    e0_mean_ev: float = math.nan
    e0_std_ev: float = math.nan
    train_mean_spectrum: np.ndarray | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    library_versions: Mapping[str, str] = field(default_factory=dict)
    member_state_dicts: tuple[Mapping[str, torch.Tensor], ...] = ()
    member_model_configs: tuple[ModelConfig, ...] = ()
    member_weights: tuple[float, ...] = ()
    spread_calibration: Mapping[str, Any] | None = None
    domain_index: Mapping[str, Any] | None = None
    e0_calibration: Mapping[str, Any] | None = None
    #: Absolute energy of the grid's zero when the training data gave every spectrum against
    #: one fixed energy (FDMNES: the tabulated edge); None: each site's own E0 (FEFF).
    grid_origin_ev: float | None = None

    def __post_init__(self) -> None:
        if self.member_model_configs and len(self.member_model_configs) != len(self.member_state_dicts):
            raise CheckpointError(f"{len(self.member_state_dicts)} further ensemble members but "
                                  f"{len(self.member_model_configs)} member configurations")
        if self.member_weights:
            if len(self.member_weights) != len(self.state_dicts):
                raise CheckpointError(f"{len(self.state_dicts)} ensemble members but "
                                      f"{len(self.member_weights)} member weights")
            if not all(math.isfinite(w) and w > 0 for w in self.member_weights):
                raise CheckpointError(f"member weights must be positive, got {list(self.member_weights)}")

    @property
    def energy_ev(self) -> np.ndarray:
        return self.model_config.grid.energy_ev

    @property
    def state_dicts(self) -> tuple[Mapping[str, torch.Tensor], ...]:
        """All members' weights, the first being ``state_dict`` (empty when untrained)."""
        if self.state_dict is None:
            return ()
        return (self.state_dict, *self.member_state_dicts)

    @property
    def model_configs(self) -> tuple[ModelConfig, ...]:
        """The architecture of each member of ``state_dicts`` (one per member)."""
        if self.state_dict is None:
            return ()
        return (self.model_config,
                *(self.member_model_configs or (self.model_config,) * len(self.member_state_dicts)))

    @property
    def spectrum_members(self) -> tuple[tuple[Mapping[str, torch.Tensor], ModelConfig], ...]:
        """(weights, architecture) of the members whose spectra are averaged (every member
        but dedicated E0 members; see :func:`member_roles`)."""
        spectrum, _ = member_roles(self.model_configs)
        return tuple((self.state_dicts[k], self.model_configs[k]) for k in spectrum)

    @property
    def spectrum_weights(self) -> np.ndarray:
        """(K,) weights of :attr:`spectrum_members` in the spectrum mean, summing to 1."""
        spectrum, _ = member_roles(self.model_configs)
        raw = np.asarray([self.member_weights[k] if self.member_weights else 1.0 for k in spectrum], dtype=np.float64)
        return raw / raw.sum() if len(raw) else raw

    def member(self, k: int) -> "Checkpoint":
        """Member ``k`` of an ensemble (in ``state_dicts`` order) as a one-model checkpoint,
        e.g. to fine-tune it; calibrations and the domain index belong to the ensemble and
        are left behind.

        Raises:
            CheckpointError: no such member.
        """
        if not 0 <= k < len(self.state_dicts):
            raise CheckpointError(f"member {k} requested but the checkpoint holds {len(self.state_dicts)}")
        sources = self.provenance.get("ensemble_members") or []
        provenance = dict(sources[k]) if len(sources) == len(self.state_dicts) else dict(self.provenance)
        provenance.pop("ensemble_members", None)
        return replace(self, model_config=self.model_configs[k], state_dict=self.state_dicts[k],
                       member_state_dicts=(), member_model_configs=(), member_weights=(), provenance=provenance,
                       metrics={}, spread_calibration=None, domain_index=None, e0_calibration=None)

    @property
    def format_version(self) -> int:
        """The lowest file format that describes this checkpoint."""
        if not self.member_state_dicts:
            return _SINGLE_MODEL_VERSION
        if self.member_weights and len(set(self.member_weights)) > 1:
            return FORMAT_VERSION
        if all(c == self.model_config for c in self.model_configs):
            return _SAME_ARCHITECTURE_VERSION
        return _MIXED_ARCHITECTURE_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The plain dict written to disk."""
        mean = self.train_mean_spectrum
        version = self.format_version
        return {
            "format_version": version,
            "model_config": to_dict(self.model_config),
            "graph_config": to_dict(self.graph_config),
            "state_dict": None if self.state_dict is None else dict(self.state_dict),
            **({"ensemble_state_dicts": [dict(m) for m in self.member_state_dicts]}
               if self.member_state_dicts else {}),
            **({"ensemble_model_configs": [to_dict(c) for c in self.model_configs[1:]]}
               if version >= _MIXED_ARCHITECTURE_VERSION else {}),
            **({"member_weights": [float(w) for w in self.member_weights]}
               if version >= FORMAT_VERSION else {}),
            "trained": bool(self.trained and self.state_dict is not None),
            "element": self.element,
            "edge": self.edge,
            "energy_grid_ev": torch.as_tensor(self.energy_ev, dtype=torch.float64),
            "normalization": dict(self.normalization),
            "e0_mean_ev": float(self.e0_mean_ev),
            "e0_std_ev": float(self.e0_std_ev),
            "train_mean_spectrum": None if mean is None else torch.as_tensor(np.asarray(mean), dtype=torch.float64),
            "provenance": dict(self.provenance),
            "metrics": dict(self.metrics),
            "library_versions": {str(k): str(v) for k, v in (self.library_versions or library_versions()).items()},
            **{name: dict(value) for name, value in (("spread_calibration", self.spread_calibration),
                                                      ("domain_index", self.domain_index),
                                                      ("e0_calibration", self.e0_calibration))
               if value is not None},
            **({"grid_origin_ev": float(self.grid_origin_ev)} if self.grid_origin_ev is not None else {}),
        }


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write ``checkpoint`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(checkpoint.to_dict(), tmp)
    tmp.replace(path)
    return path


def checkpoint_from_dict(data: Mapping[str, Any], source: str = "") -> Checkpoint:
    """Validate a raw checkpoint dict and build a :class:`Checkpoint`."""
    if not isinstance(data, Mapping) or "format_version" not in data:
        raise CheckpointError(f"{source}: not a xanes-gui checkpoint (no format_version)")
    if int(data["format_version"]) > FORMAT_VERSION:
        raise CheckpointError(f"{source}: checkpoint format {data['format_version']} is newer than "
                              f"this program understands ({FORMAT_VERSION}); update xanes-gui")
    mean = data.get("train_mean_spectrum")
    return Checkpoint(
        model_config=from_dict(ModelConfig, data["model_config"]),
        graph_config=from_dict(GraphConfig, data.get("graph_config") or {}),
        state_dict=data.get("state_dict"),
        element=str(data.get("element", "")),
        edge=str(data.get("edge", "K")),
        trained=bool(data.get("trained", False)) and data.get("state_dict") is not None,
        normalization=dict(data.get("normalization") or {}),
        e0_mean_ev=float(data.get("e0_mean_ev", math.nan)),
        e0_std_ev=float(data.get("e0_std_ev", math.nan)),
        train_mean_spectrum=None if mean is None else np.asarray(mean, dtype=np.float64),
        provenance=dict(data.get("provenance") or {}),
        metrics=dict(data.get("metrics") or {}),
        library_versions=dict(data.get("library_versions") or {}),
        member_state_dicts=tuple(data.get("ensemble_state_dicts") or ()),
        member_model_configs=tuple(from_dict(ModelConfig, c) for c in data.get("ensemble_model_configs") or ()),
        member_weights=tuple(float(w) for w in data.get("member_weights") or ()),
        spread_calibration=data.get("spread_calibration"),
        domain_index=data.get("domain_index"),
        e0_calibration=data.get("e0_calibration"),
        grid_origin_ev=None if data.get("grid_origin_ev") is None else float(data["grid_origin_ev"]),
    )


def member_roles(configs: Sequence[ModelConfig]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(spectrum members, E0 members) of an ensemble, as indices into ``configs``.

    A member trained with ``e0_backprop`` (its trunk learned the edge energy, which costs
    it spectral accuracy) is a dedicated E0 member when the ensemble also holds members
    without it: the E0 is then averaged over the E0 members alone and the spectrum, its
    spread, attention and embedding over the others. Otherwise every member does both.
    """
    e0_members = tuple(k for k, c in enumerate(configs) if c.e0_head and c.e0_backprop)
    spectrum_members = tuple(k for k in range(len(configs)) if k not in e0_members)
    if not e0_members or not spectrum_members:
        return tuple(range(len(configs))), tuple(range(len(configs)))
    return spectrum_members, e0_members


def make_ensemble(checkpoints: "list[Checkpoint] | tuple[Checkpoint, ...]",
                  metrics: Mapping[str, Any] | None = None,
                  weights: Sequence[float] | None = None) -> Checkpoint:
    """One checkpoint whose prediction is the mean of several trained members.

    The members must share the graph's edges, energy grid, E0 head, element, edge and
    normalization, so their averaged output is a prediction on the same footing as each
    one's. Members may have been trained on more data than the first checkpoint (e.g.
    with ``data.extra_train_ids``): a member's training-mean spectrum lives in its own
    weights (``mean_offset``), so its prediction is unchanged, and the ensemble keeps the
    first checkpoint's training mean as the baseline of eta; an E0 head standardized over
    other training sites is rewritten to the first checkpoint's standardization
    (:func:`restandardize_e0`; the same E0 in eV). Their crop radii
    may differ: the ensemble's graphs take the largest and a member of a smaller crop
    keeps its own (``ModelConfig.r_crop``, :mod:`model_core.nn.crop`). Their architectures
    may differ (width, depth, ablation switches), so members of any preset can be pooled.

    Args:
        checkpoints: two or more trained checkpoints (members of other ensembles are
            flattened in).
        metrics: validation metrics of the ensemble (default: none; measure them).
        weights: one positive factor per checkpoint, multiplying the weights its members
            carry (1 each unless it is a weighted ensemble) in the spectrum mean; default 1.

    Raises:
        CheckpointError: fewer than two members, an untrained one, members that differ,
            or weights that are not one positive number per checkpoint.
    """
    checkpoints = list(checkpoints)
    if len(checkpoints) < 2:
        raise CheckpointError("an ensemble needs at least two checkpoints")
    factors = [1.0] * len(checkpoints) if weights is None else [float(w) for w in weights]
    if len(factors) != len(checkpoints) or not all(math.isfinite(w) and w > 0 for w in factors):
        raise CheckpointError(f"{len(checkpoints)} checkpoints need as many positive weights, got {list(factors)}")
    first = checkpoints[0]
    for k, other in enumerate(checkpoints):
        if not other.trained or other.state_dict is None:
            raise CheckpointError(f"member {k} has no trained weights")
        checks = {
            "energy grid": all(c.grid == first.model_config.grid for c in other.model_configs),
            "E0 head": all(c.e0_head == first.model_config.e0_head for c in other.model_configs),
            # Crops may differ (each member keeps its own, model_core.nn.crop); edges may not.
            "graph edges": (other.graph_config.r_max, other.graph_config.max_neighbors)
            == (first.graph_config.r_max, first.graph_config.max_neighbors),
            "element/edge": (other.element, other.edge) == (first.element, first.edge),
            "normalization": other.normalization.get("mode") == first.normalization.get("mode"),
            "grid origin": other.grid_origin_ev == first.grid_origin_ev,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise CheckpointError(f"member {k} differs from member 0 in its {', '.join(bad)}")
    graph = max((c.graph_config for c in checkpoints), key=lambda g: g.r_crop)
    if any(c.graph_config.r_crop != graph.r_crop for c in checkpoints) and graph.max_neighbors:
        raise CheckpointError("members of different crop radii need max_neighbors 0 (a capped crop "
                              "is no sub-graph of a larger one)")
    # One provenance entry per member: an ensemble joining in contributes its members'.
    triples, member_weights = [], []
    for c, factor in zip(checkpoints, factors):
        sources = c.provenance.get("ensemble_members") or [c.provenance]
        if len(sources) != len(c.state_dicts):
            sources = [c.provenance] * len(c.state_dicts)
        configs_c = [mc if own_crop(mc, c.graph_config) == graph.r_crop
                     else replace(mc, r_crop=own_crop(mc, c.graph_config)) for mc in c.model_configs]
        triples += list(zip(c.state_dicts, configs_c, sources))
        member_weights += [factor * w for w in (c.member_weights or (1.0,) * len(c.state_dicts))]
    spectrum, _ = member_roles([mc for _, mc, _ in triples])
    start, target = 0, _e0_standardization(first)
    for c in checkpoints:
        span = range(start, start + len(c.state_dicts))
        start = span.stop
        own = _e0_standardization(c)
        if own != target:  # restandardize_e0 leaves weights alone without a finite standardization
            for j in span:
                triples[j] = (restandardize_e0(triples[j][0], own, target), *triples[j][1:])
    # Spectrum members first: member 0's readout is the embedding of the domain index.
    order = [*spectrum, *(k for k in range(len(triples)) if k not in spectrum)]
    triples = [triples[k] for k in order]
    member_weights = [member_weights[k] for k in order]
    members = tuple(sd for sd, _, _ in triples)
    configs = tuple(mc for _, mc, _ in triples)
    provenance = dict(first.provenance)
    provenance["ensemble_members"] = [dict(m) for _, _, m in triples]
    return Checkpoint(
        model_config=configs[0], graph_config=graph, state_dict=members[0],
        element=first.element, edge=first.edge, trained=True, normalization=dict(first.normalization),
        e0_mean_ev=first.e0_mean_ev, e0_std_ev=first.e0_std_ev,
        train_mean_spectrum=first.train_mean_spectrum, provenance=provenance,
        metrics=dict(metrics or {}), member_state_dicts=members[1:],
        member_model_configs=configs[1:] if any(c != configs[0] for c in configs) else (),
        member_weights=tuple(member_weights) if len(set(member_weights)) > 1 else (),
        grid_origin_ev=first.grid_origin_ev)


def _e0_standardization(checkpoint: Checkpoint) -> tuple[float, float]:
    return float(checkpoint.e0_mean_ev), float(checkpoint.e0_std_ev)


def restandardize_e0(state_dict: Mapping[str, torch.Tensor], old: tuple[float, float],
                     new: tuple[float, float]) -> dict[str, torch.Tensor]:
    """A member's weights with its E0 head giving the same E0 (eV) under another standardization.

    The head ends in a linear layer, which absorbs the affine change: with E0 = z·s + m,
    z' = (z·s + m − m')/s' = z·(s/s') + (m − m')/s'.

    Args:
        state_dict: the member's weights.
        old, new: (mean, standard deviation) of E0 in eV, before and after.
    """
    (m, s), (m2, s2) = old, new
    layers = [k for k in state_dict if k.startswith("e0_head.") and k.endswith(".weight")]
    out = dict(state_dict)
    if not layers or not all(map(math.isfinite, (m, s, m2, s2))) or s2 == 0:
        return out
    last = max(layers, key=lambda k: int(k.split(".")[-2]))  # e0_head.mlp.<i>.weight
    bias = last[: -len("weight")] + "bias"
    out[last] = state_dict[last] * (s / s2)
    out[bias] = state_dict[bias] * (s / s2) + (m - m2) / s2
    return out


def add_entries(path: str | Path, out: str | Path, entries: Mapping[str, Any]) -> Path:
    """Copy the checkpoint file ``path`` to ``out`` with ``entries`` added or replaced.

    Every other key is written back exactly as read (weights, configurations, metrics), so
    a shipped model only gains keys.

    Raises:
        CheckpointError: ``path`` is not a readable checkpoint.
    """
    path, out = Path(path), Path(out)
    data = _load_dict(path)
    checkpoint_from_dict(data, str(path))
    data.update(entries)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    torch.save(data, tmp)
    tmp.replace(out)
    return out


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: when the file is missing, corrupt or not a checkpoint.
    """
    path = Path(path)
    return checkpoint_from_dict(_load_dict(path), str(path))


def _load_dict(path: Path) -> Any:
    """The raw checkpoint dict of ``path`` (``torch.load(weights_only=True)``).

    Raises:
        CheckpointError: when the file is missing or cannot be unpickled.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
