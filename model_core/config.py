"""Frozen configuration dataclasses, loadable from YAML and overridable by ``key=value``.

Every component of XANE(3) (Grizzi et al., arXiv 2604.12140) has a switch here,
so the paper's ablations are configuration changes rather than code changes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from functools import lru_cache
from typing import Any, Literal, Mapping, TypeVar

import numpy as np
import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is invalid; the message starts with the field's dotted name."""


@lru_cache(maxsize=None)
def _choices(cls: type) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """(field name, allowed values) of every ``Literal``-typed field of a dataclass."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, typing.get_args(hints[f.name])) for f in fields(cls)
                 if typing.get_origin(hints[f.name]) is Literal)


def check_choices(config: Any) -> None:
    """Refuse a value of a ``Literal`` field that is not one of its names.

    Raises:
        ConfigError: e.g. "schedule: 'cosin' is not one of 'plateau', 'cosine'"
            (:func:`from_dict` puts the dotted path of nested sections in front).
    """
    for name, allowed in _choices(type(config)):
        value = getattr(config, name)
        if value not in allowed:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(map(repr, allowed))}")


@dataclass(frozen=True)
class GraphConfig:
    """How an absorber-centred local graph is cut from a structure.

    Attributes:
        r_crop: radius in Å around the absorber within which atoms (periodic images
            included) become graph nodes. Absorber-centred crops follow MEM-XANES.
        r_max: radius in Å within which two nodes are joined by an edge (paper: 5.0). In a
            training configuration this is also the model's radial cutoff (``model.r_max``
            follows it; see :func:`resolve_model_cutoff`).
        max_neighbors: keep at most this many nodes nearest to the absorber
            (0 = no limit); ties are broken by atomic number, then position, for determinism.
    """

    r_crop: float = 6.0
    r_max: float = 5.0
    max_neighbors: int = 0


@dataclass(frozen=True)
class EnergyGrid:
    """A uniform energy grid relative to the edge.

    Attributes:
        e_min_ev: first energy (eV relative to E0).
        e_max_ev: last energy (eV relative to E0).
        n_points: number of grid points.
    """

    e_min_ev: float = -30.0
    e_max_ev: float = 100.0
    n_points: int = 150

    @property
    def energy_ev(self) -> np.ndarray:
        """(n_points,) the grid energies in eV relative to the edge."""
        return np.linspace(self.e_min_ev, self.e_max_ev, self.n_points)

    @property
    def step_ev(self) -> float:
        return (self.e_max_ev - self.e_min_ev) / (self.n_points - 1)


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters and ablation switches of the XANE(3) network.

    Defaults are the paper's (1.19 M parameters at 32x0e + 16x1o + 8x2e, 4 blocks).

    Attributes:
        max_z: size of the atomic-number embedding table (Z in 1..max_z-1).
        scalar_channels / vector_channels / tensor_channels: multiplicities of the
            0e, 1o and 2e hidden irreps (those of degree > ``l_max`` are unused).
        num_blocks: number of interaction blocks.
        l_max: maximum degree of the edge spherical harmonics and hidden irreps (<= 2);
            0 is the paper's scalar-only ablation (distance-only, invariant messages).
            The former ``scalar_only: true`` built exactly this network and is read as
            ``l_max: 0`` (old checkpoints and YAML files keep loading).
        r_max: radial cutoff in Å (cosine cutoff reaches zero here). Training
            configurations take it from ``graph.r_max`` (one source, see
            :func:`resolve_model_cutoff`); checkpoints store both as trained.
        num_radial: number of radial basis functions.
        radial_basis: "bessel" (paper default) or "gaussian".
        radial_normalize: standardize the radial basis to unit RMS (see
            :class:`~model_core.nn.radial.RadialEmbedding`); False = raw basis times cutoff.
        radial_hidden: width of the MLP mapping the radial basis to tensor-product weights.
        tensor_product: "uvu" (depthwise, ~20x cheaper on CPU) or "full" ("uvw").
        use_layer_norm: equivariant layer norm after aggregation.
        use_gate: gated nonlinearity (else SiLU on scalars only, l>0 linear).
        use_gated_residual: adaptive gated residual (else plain residual).
        pooling: "attention" (absorber-query attention) or "mean" over non-absorbers.
        attention_hidden: hidden width of the attention scoring MLP.
        readout_hidden: hidden widths of the readout MLP.
        dropout: dropout in the readout MLP.
        output: "gaussian_basis" (paper) or "direct" (one output per grid point).
        basis_per_scale: Gaussians per width scale.
        basis_widths: widths relative to the spacing of basis centres.
        use_background: add the sigmoid background a_bg * sigmoid((E - mu_bg) / w_bg).
        e0_head: E0 head on the readout features (standardised edge energy).
        e0_backprop: the E0 loss trains the backbone too (a shared trunk, weighted by
            ``loss.lambda_e0``); False keeps the original auxiliary head on detached
            features. Changes training only: the forward pass is the same network.
        aggregation: "mean" over incoming edges (paper) or "sum" divided by the fixed
            ``avg_neighbors`` (keeps coordination counts, which mean aggregation loses).
        avg_neighbors: the constant a summed aggregate is divided by.
        mean_offset: add a fixed (G,) offset spectrum (the training mean, set by the
            trainer and saved in the state_dict) so the network learns the deviation from it.
        grid: the energy grid the spectrum is evaluated on.
        r_crop: the member's own crop radius in Å: nodes farther from the absorber are
            dropped before the first block (:mod:`model_core.nn.crop`), so a member trained
            on smaller crops runs unchanged in an ensemble whose graphs are larger; 0 =
            the whole graph (set by :func:`model_core.checkpoint.make_ensemble`).
    """

    max_z: int = 100
    scalar_channels: int = 32
    vector_channels: int = 16
    tensor_channels: int = 8
    num_blocks: int = 4
    l_max: int = 2
    r_max: float = 5.0
    num_radial: int = 16
    radial_basis: Literal["bessel", "gaussian"] = "bessel"
    radial_normalize: bool = True
    radial_hidden: int = 64
    tensor_product: Literal["uvu", "full"] = "uvu"
    use_layer_norm: bool = True
    use_gate: bool = True
    use_gated_residual: bool = True
    pooling: Literal["attention", "mean"] = "attention"
    attention_hidden: int = 64
    readout_hidden: tuple[int, ...] = (256, 256)
    dropout: float = 0.01
    output: Literal["gaussian_basis", "direct"] = "gaussian_basis"
    basis_per_scale: int = 40
    basis_widths: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 4.0)
    use_background: bool = True
    e0_head: bool = True
    e0_backprop: bool = False
    aggregation: Literal["mean", "sum"] = "mean"
    avg_neighbors: float = 30.0
    mean_offset: bool = False
    grid: EnergyGrid = field(default_factory=EnergyGrid)
    r_crop: float = 0.0

    def __post_init__(self) -> None:
        check_choices(self)
        if not 0 <= self.l_max <= 2:
            raise ConfigError(f"l_max: {self.l_max!r} is not one of 0, 1, 2")

    @staticmethod
    def upgrade_legacy(data: dict[str, Any]) -> dict[str, Any]:
        """Map keys of older files onto today's fields (called by :func:`from_dict`).

        ``scalar_only: true`` built the same network as ``l_max: 0`` (hidden and edge
        irreps cut at degree 0, identical parameters), so it becomes that.
        """
        if "scalar_only" in data:
            data = dict(data)
            if _coerce(bool, data.pop("scalar_only")):
                data["l_max"] = 0
        return data


def own_crop(model: ModelConfig, graph: GraphConfig) -> float:
    """The crop radius (Å) a network actually sees: its own ``model.r_crop`` when that cuts
    inside the graph's crop (a member of a mixed-crop ensemble), else the graph's."""
    return model.r_crop if 0 < model.r_crop < graph.r_crop else graph.r_crop


def resolve_model_cutoff(model: ModelConfig, graph: GraphConfig, model_r_max_given: bool) -> ModelConfig:
    """The model configuration with its radial cutoff taken from the graph's edge radius.

    Edges end at ``graph.r_max`` and the cosine cutoff must reach zero there: a larger
    cutoff makes messages jump at the last edge, a smaller one wastes edges. So a training
    configuration has one source, ``graph.r_max``; a ``model.r_max`` written as well must
    agree with it. (Checkpoints store both as trained and load unchecked: tiny test
    checkpoints written by earlier code differ.)

    Args:
        model, graph: the loaded sections.
        model_r_max_given: whether the file or an override set ``model.r_max`` itself.

    Raises:
        ConfigError: ``model.r_max`` was given and differs from ``graph.r_max``.
    """
    if model_r_max_given and model.r_max != graph.r_max:
        raise ConfigError(f"model.r_max: {model.r_max:g} Å (the radial cutoff) disagrees with graph.r_max: "
                          f"{graph.r_max:g} Å (the edge radius); set graph.r_max only, the model takes its "
                          "cutoff from it")
    return dataclasses.replace(model, r_max=graph.r_max)


# ---------------------------------------------------------------------------
# Generic (de)serialisation of nested frozen dataclasses
# ---------------------------------------------------------------------------

def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict (tuples become lists) suitable for YAML or a checkpoint."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def _coerce(tp: Any, value: Any) -> Any:
    """Convert a YAML/CLI value to the annotated field type (``Literal`` values are
    checked by the dataclass itself, see :func:`check_choices`)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value)
    if origin is Literal:
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value)
    if origin is tuple:
        args = typing.get_args(tp)
        items = value if isinstance(value, (list, tuple)) else [value]
        inner = args[0] if args else Any
        return tuple(_coerce(inner, v) for v in items)
    if tp is bool and isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    if tp is str and value is None:
        return ""  # "--set key=" clears a string field
    if tp in (int, float, str) and value is not None:
        return tp(value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None) -> T:
    """Build a (nested) frozen dataclass from a mapping; unknown keys are errors.

    A class may map keys of older files onto its fields with a static
    ``upgrade_legacy(dict) -> dict``. Errors in a nested section name its dotted path
    (``optim.schedule: ...``).

    Raises:
        ConfigError: unknown keys, a value that cannot be converted or is not allowed.
    """
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping of {cls.__name__} fields, got {data!r}")
    data = dict(data or {})
    upgrade = getattr(cls, "upgrade_legacy", None)
    if upgrade is not None:
        data = upgrade(data)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{', '.join(sorted(unknown))}: unknown {cls.__name__} "
                          f"key{'s' if len(unknown) > 1 else ''}")
    values = {}
    for key, value in data.items():
        try:
            values[key] = _coerce(hints[key], value)
        except ConfigError as exc:
            if not dataclasses.is_dataclass(hints[key]):
                raise
            raise ConfigError(f"{key}.{exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key}: {exc}") from None
    return cls(**values)


def apply_overrides(config: T, overrides: Mapping[str, Any] | list[str]) -> T:
    """Return a copy of ``config`` with dotted ``key=value`` overrides applied.

    Example: ``apply_overrides(cfg, ["model.num_blocks=3", "optim.lr=5e-4"])``.
    Values are parsed as YAML scalars/lists, then coerced to the field type.

    Raises:
        ConfigError: an unknown key or a bad value (named by its dotted path).
    """
    if not isinstance(overrides, Mapping):
        pairs = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override must look like key=value, got {item!r}")
            key, raw = item.split("=", 1)
            pairs[key.strip()] = yaml.safe_load(raw)
        overrides = pairs
    data = to_dict(config)
    for dotted, value in overrides.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            if part not in node or not isinstance(node[part], dict):
                raise ConfigError(f"{dotted}: unknown config key")
            node = node[part]
        # A last part that is no field is left to from_dict: a legacy key it maps
        # (model.scalar_only) is accepted there, anything else refused with its path.
        node[parts[-1]] = value
    return from_dict(type(config), data)


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load a frozen config dataclass from a YAML file."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    return from_dict(cls, data)
