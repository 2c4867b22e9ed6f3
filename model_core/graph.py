"""Absorber-centred local graphs (one per absorber site).

Contract (implemented in this module):

``build_graph(structure, site, config: GraphConfig) -> AbsorberGraph``
    Nodes: every atom (periodic images included) within ``config.r_crop`` Å of the
    absorber, absorber first. Edges: every ordered pair of distinct nodes closer than
    ``config.r_max``, carrying true displacement vectors. The same physical site gives
    the same graph (up to node order of equidistant atoms) whatever the cell choice,
    atom order, rotation or translation.

``build_graphs(structure, sites, config) -> list[AbsorberGraph]``
    The same for many sites, sharing one periodic neighbour search.

Node order: the absorber, then the other nodes sorted by (distance rounded to
1e-6 Å, atomic number, relative x, y, z rounded to 1e-6 Å), so atom order and cell
choice do not change the graph; ``max_neighbors`` keeps the first nodes of that
order. Both cutoffs are applied as ``d < r + 1e-8 Å`` so atoms exactly on a
cutoff sphere are kept consistently across equivalent inputs.

Periodic images are found by enumerating every lattice translation that can reach
within ``r_crop`` of an absorber, bounded with the cell's lattice-plane spacings,
so any cell shape works (skewed cells, cells smaller than ``r_crop``, slabs with
``pbc=(True, True, False)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from scipy.spatial import cKDTree

from model_core.config import GraphConfig
from model_core.types import SiteSelection, Structure


@dataclass(frozen=True, eq=False)
class AbsorberGraph:
    """Local graph around one absorber. Node 0 is the absorber.

    Attributes:
        atomic_numbers: (n,) int64.
        positions: (n, 3) float64 Cartesian Å, absorber at the origin.
        edge_index: (2, e) int64 rows (source, target); messages flow source -> target.
        edge_vectors: (e, 3) float64 ``positions[target] - positions[source]`` in Å.
        absorber_mask: (n,) bool, True for the absorber.
        atom_index: (n,) int64 index of each node's atom in the input structure.
        image: (n, 3) int64 periodic image (lattice translation) of each node.
        site_index: index of the absorber in the input structure.
    """

    atomic_numbers: np.ndarray
    positions: np.ndarray
    edge_index: np.ndarray
    edge_vectors: np.ndarray
    absorber_mask: np.ndarray
    atom_index: np.ndarray
    image: np.ndarray
    site_index: int

    @property
    def n_nodes(self) -> int:
        return int(len(self.atomic_numbers))

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])


# ---------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------

# Distances are compared against r_crop / r_max with this slack (Å). Equivalent
# inputs (another cell choice, a rotation) reproduce a distance only to ~1e-14 Å,
# so an atom sitting exactly on a cutoff sphere must be kept in all of them.
_DIST_TOL = 1e-8
# Node-sorting keys (distance, relative x/y/z) are rounded to this many decimals
# of Å so that float noise between equivalent inputs cannot reorder nodes.
_SORT_DECIMALS = 6


def _validated_config(config: GraphConfig) -> GraphConfig:
    """``config`` unchanged, or ValueError on non-positive radii / negative max_neighbors."""
    if not config.r_crop > 0:
        raise ValueError(f"r_crop must be positive, got {config.r_crop}")
    if not config.r_max > 0:
        raise ValueError(f"r_max must be positive, got {config.r_max}")
    if config.max_neighbors < 0:
        raise ValueError(f"max_neighbors must be >= 0, got {config.max_neighbors}")
    return config


def _validated_sites(structure: Structure, sites: Iterable[int] | np.ndarray | SiteSelection) -> np.ndarray:
    """(M,) int64 site indices; negative indices are rejected rather than counted from the end,
    so an off-by-one in a caller cannot silently pick the last atom."""
    if isinstance(sites, SiteSelection):
        sites = sites.indices
    raw = np.asarray(list(sites) if not isinstance(sites, np.ndarray) else sites)
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    if raw.ndim != 1 or not (np.issubdtype(raw.dtype, np.integer)):
        raise TypeError(f"site indices must be a 1-D sequence of integers, got {raw!r}")
    indices = raw.astype(np.int64)
    bad = (indices < 0) | (indices >= structure.n_atoms)
    if np.any(bad):
        raise IndexError(
            f"absorber site index {int(indices[bad][0])} is out of range for a structure "
            f"with {structure.n_atoms} atoms (valid: 0..{structure.n_atoms - 1})")
    return indices


def _plane_spacings(cell: np.ndarray) -> np.ndarray:
    """(3,) distances in Å between adjacent lattice planes spanned by the other two vectors.

    A vector shorter than ``r`` changes fractional coordinate ``k`` by less than
    ``r / h_k``; this bound holds for any cell shape, however skewed, which is
    what makes the image enumeration below complete.
    """
    volume = abs(float(np.linalg.det(cell)))
    cross = np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]])
    return volume / np.linalg.norm(cross, axis=1)


def _crop_candidates(structure: Structure, sites: np.ndarray, radius: float
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Atoms and lattice images within ``radius`` of each absorber.

    The periodic search runs once for all ``sites``: atoms are wrapped into the cell
    along periodic axes, replicated over every lattice translation that can come
    within ``radius`` of any absorber, and put into one KD-tree.

    Args:
        structure: the input structure.
        sites: (M,) validated absorber indices.
        radius: search radius in Å (callers add their own tolerance).

    Returns:
        For each site, ``(atom_index (k,), image (k, 3))`` of the atoms within
        ``radius``; ``image`` is the integer translation such that the node sits at
        ``positions[atom] + image @ cell`` in the input frame. The absorber itself
        (its own atom at image 0) is included; callers drop it.
    """
    positions = structure.positions
    n_atoms = structure.n_atoms
    pbc = np.array(structure.pbc, dtype=bool)
    if structure.cell is None or not pbc.any():
        tree = cKDTree(positions)
        hits = tree.query_ball_point(positions[sites], radius)
        return [(np.asarray(h, dtype=np.int64), np.zeros((len(h), 3), dtype=np.int64)) for h in hits]

    cell = structure.cell
    frac = np.linalg.solve(cell.T, positions.T).T
    # Wrap only along periodic axes: a slab's atoms keep their z (fractional or not).
    offset = np.where(pbc, np.floor(frac), 0.0).astype(np.int64)
    wrapped = positions - offset @ cell
    wrapped_frac = frac - offset

    # Every point within `radius` of an absorber lies in the absorbers' fractional
    # bounding box widened by radius / h_k along each periodic axis.
    reach = radius / _plane_spacings(cell)
    lo = wrapped_frac[sites].min(axis=0) - reach
    hi = wrapped_frac[sites].max(axis=0) + reach
    ranges = []
    for k in range(3):
        if pbc[k]:
            # wrapped coordinates lie in [0, 1), so n_k = floor(lo)-1 .. ceil(hi) covers the box.
            ranges.append(np.arange(int(np.floor(lo[k])) - 1, int(np.ceil(hi[k])) + 1))
        else:
            ranges.append(np.zeros(1, dtype=np.int64))
    shifts = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3).astype(np.int64)

    # (S, N, 3) candidate fractional positions, pruned to the box before any
    # Cartesian work so memory stays ~ the box volume, not the number of shifts.
    shifted_frac = wrapped_frac[None, :, :] + shifts[:, None, :]
    inside = np.ones(shifted_frac.shape[:2], dtype=bool)
    for k in np.flatnonzero(pbc):
        inside &= (shifted_frac[..., k] >= lo[k]) & (shifted_frac[..., k] <= hi[k])
    shift_id, atom_id = np.nonzero(inside)
    points = wrapped[atom_id] + shifts[shift_id] @ cell
    tree = cKDTree(points)
    hits = tree.query_ball_point(wrapped[sites], radius)

    result = []
    for site, hit in zip(sites, hits):
        hit = np.asarray(hit, dtype=np.int64)
        atoms = atom_id[hit]
        # Translation in the input frame relative to the absorber's own input position:
        # node = wrapped[j] + n@cell - wrapped[a] = x_j + (n - o_j + o_a)@cell - x_a.
        image = shifts[shift_id[hit]] - offset[atoms] + offset[site]
        result.append((atoms, image))
    return result


def _assemble(structure: Structure, site: int, atoms: np.ndarray, image: np.ndarray,
              config: GraphConfig) -> AbsorberGraph:
    """Crop, order and connect the nodes of one absorber's graph."""
    if structure.cell is not None:
        rel = structure.positions[atoms] - structure.positions[site] + image @ structure.cell
    else:
        rel = structure.positions[atoms] - structure.positions[site]
    dist = np.linalg.norm(rel, axis=1)
    is_self = (atoms == site) & ~image.any(axis=1)
    keep = (dist < config.r_crop + _DIST_TOL) & ~is_self
    atoms, image, rel, dist = atoms[keep], image[keep], rel[keep], dist[keep]
    numbers = structure.atomic_numbers[atoms]

    # Deterministic order: physical keys first (so atom order and cell choice do not
    # matter), input indices last only to settle exactly coincident atoms.
    key_d = np.round(dist, _SORT_DECIMALS)
    key_xyz = np.round(rel, _SORT_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    order = np.lexsort((image[:, 2], image[:, 1], image[:, 0], atoms,
                        key_xyz[:, 2], key_xyz[:, 1], key_xyz[:, 0], numbers, key_d))
    if config.max_neighbors > 0:
        order = order[: config.max_neighbors]

    atom_index = np.concatenate([[site], atoms[order]]).astype(np.int64)
    images = np.concatenate([np.zeros((1, 3), dtype=np.int64), image[order]]).astype(np.int64)
    positions = np.concatenate([np.zeros((1, 3)), rel[order]]).astype(np.float64)
    z = structure.atomic_numbers[atom_index].astype(np.int64)
    mask = np.zeros(len(atom_index), dtype=bool)
    mask[0] = True

    edge_index = radius_edges(positions, config.r_max)
    edge_vectors = positions[edge_index[1]] - positions[edge_index[0]]
    return AbsorberGraph(atomic_numbers=z, positions=positions, edge_index=edge_index,
                         edge_vectors=edge_vectors, absorber_mask=mask, atom_index=atom_index,
                         image=images, site_index=int(site))


def radius_edges(positions: np.ndarray, r_max: float) -> np.ndarray:
    """(2, e) int64 ordered pairs (i != j) closer than ``r_max`` (+ tolerance), sorted by (source, target)."""
    n = len(positions)
    if n < 2:
        return np.zeros((2, 0), dtype=np.int64)
    pairs = cKDTree(positions).query_pairs(r_max + _DIST_TOL, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros((2, 0), dtype=np.int64)
    src = np.concatenate([pairs[:, 0], pairs[:, 1]])
    dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
    order = np.lexsort((dst, src))
    return np.stack([src[order], dst[order]]).astype(np.int64)


def build_graphs(structure: Structure, sites: Iterable[int] | np.ndarray | SiteSelection,
                 config: GraphConfig = GraphConfig()) -> list[AbsorberGraph]:
    """Absorber-centred graphs for many sites of one structure.

    The periodic neighbour search is done once for all sites, so this is much
    faster than calling :func:`build_graph` in a loop.

    Args:
        structure: crystal (cell + pbc, per-axis periodicity honoured) or molecule.
        sites: (M,) absorber atom indices (0-based), or a :class:`SiteSelection`.
        config: crop radius ``r_crop`` (Å), edge cutoff ``r_max`` (Å) and ``max_neighbors``.

    Returns:
        M graphs in the order of ``sites``.

    Raises:
        IndexError: if a site index is outside ``0..n_atoms-1``.
        TypeError: if the sites are not integers.
        ValueError: on a non-positive radius or negative ``max_neighbors``.
    """
    config = _validated_config(config)
    indices = _validated_sites(structure, sites)
    if len(indices) == 0:
        return []
    # Search slightly wider than the crop; _assemble applies the exact cut on
    # displacements recomputed from the input coordinates.
    candidates = _crop_candidates(structure, indices, config.r_crop + 1e-6)
    return [_assemble(structure, int(site), atoms, image, config)
            for site, (atoms, image) in zip(indices, candidates)]


def build_graph(structure: Structure, site: int, config: GraphConfig = GraphConfig()) -> AbsorberGraph:
    """The local graph around one absorber.

    Args:
        structure: crystal or molecule.
        site: 0-based index of the absorbing atom.
        config: crop/edge radii in Å and neighbour limit.

    Returns:
        The :class:`AbsorberGraph` with the absorber as node 0 at the origin.

    Raises:
        IndexError: if ``site`` is outside ``0..n_atoms-1``.
    """
    if isinstance(site, (bool, np.bool_)) or not isinstance(site, (int, np.integer)):
        raise TypeError(f"site must be an integer atom index, got {site!r}")
    return build_graphs(structure, [int(site)], config)[0]


def graph_summary(graph: AbsorberGraph) -> dict[str, Any]:
    """Sizes of a graph for logging.

    Returns:
        ``{"site_index", "n_nodes", "n_edges", "mean_degree", "max_distance"}``;
        mean degree is edges per node (in-degree = out-degree, edges are symmetric),
        max distance is the farthest node from the absorber in Å.
    """
    n = graph.n_nodes
    distances = np.linalg.norm(np.asarray(graph.positions), axis=1)
    return {
        "site_index": int(graph.site_index),
        "n_nodes": n,
        "n_edges": graph.n_edges,
        "mean_degree": graph.n_edges / n if n else 0.0,
        "max_distance": float(distances.max()) if n else 0.0,
    }
