"""Tiny fixtures shared by model_core tests: a small model checkpoint and structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_core.checkpoint import Checkpoint, save_checkpoint
from model_core.config import EnergyGrid, GraphConfig, ModelConfig
from model_core.types import Structure

TINY_MODEL = ModelConfig(scalar_channels=8, vector_channels=4, tensor_channels=2, num_blocks=2,
                         num_radial=4, radial_hidden=8, attention_hidden=8, readout_hidden=(16,),
                         basis_per_scale=8, grid=EnergyGrid(-10.0, 40.0, 51))
TINY_GRAPH = GraphConfig(r_crop=5.0, r_max=4.0)


def tiny_checkpoint(path: Path, element: str = "Cu", trained: bool = True, seed: int = 0,
                    model_config=None) -> Path:
    """Write a small randomly initialised checkpoint ("trained" only in name, for plumbing tests)."""
    import torch

    from model_core.nn.model import XANE3

    config = model_config or TINY_MODEL
    torch.manual_seed(seed)
    model = XANE3(config)
    state = model.state_dict() if trained else None
    checkpoint = Checkpoint(config, TINY_GRAPH, state, element=element, trained=trained,
                            e0_mean_ev=8980.0, e0_std_ev=2.0,
                            train_mean_spectrum=np.linspace(0, 1, TINY_MODEL.grid.n_points))
    return save_checkpoint(checkpoint, path)


def cuprite(source: str = "") -> Structure:
    """Cu2O: 4 equivalent Cu (2a/4b depending on setting) and 2 O."""
    a = 4.2685
    frac = np.array([[0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75],
                     [0, 0, 0], [0.5, 0.5, 0.5]])
    return Structure(atomic_numbers=[29, 29, 29, 29, 8, 8], positions=frac * a, cell=np.eye(3) * a,
                     pbc=(True, True, True), source=source, name="Cu2O")


CUPRITE_CIF = """data_Cu2O
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   4.2685
_cell_length_b   4.2685
_cell_length_c   4.2685
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   90
_symmetry_Int_Tables_number   1
loop_
 _symmetry_equiv_pos_as_xyz
  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Cu  Cu1  0.25 0.25 0.25 1
  Cu  Cu2  0.75 0.75 0.25 1
  Cu  Cu3  0.75 0.25 0.75 1
  Cu  Cu4  0.25 0.75 0.75 1
  O  O1  0.0 0.0 0.0 1
  O  O2  0.5 0.5 0.5 1
"""
