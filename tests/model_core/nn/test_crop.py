"""Model-side crop: a member of a smaller crop gives, on a larger graph, exactly what it
gives on its own graph (float64), so ensembles can mix crop radii."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from model_core.batching import collate
from model_core.config import GraphConfig
from model_core.graph import build_graphs
from model_core.nn import XANE3
from tests.model_core.helpers import cuprite

from .graphs import TINY


def _outputs(model, structure, sites, r_crop):
    graphs = build_graphs(structure, sites, GraphConfig(r_crop=r_crop, r_max=TINY.r_max))
    with torch.no_grad():
        return model(collate(graphs, dtype=torch.float64)), graphs


def test_a_smaller_model_crop_equals_the_smaller_graph():
    structure, sites = cuprite(), [0, 2]
    torch.manual_seed(0)
    wide = XANE3(TINY).double().eval()
    own = XANE3(dataclasses.replace(TINY, r_crop=5.5)).double().eval()
    own.load_state_dict(wide.state_dict())
    small, small_graphs = _outputs(wide, structure, sites, 5.5)
    cropped, big_graphs = _outputs(own, structure, sites, 7.5)
    unchanged, _ = _outputs(wide, structure, sites, 7.5)
    for key in ("mu", "e0", "readout"):
        torch.testing.assert_close(cropped[key], small[key], rtol=1e-10, atol=1e-10)
    assert not torch.allclose(unchanged["mu"], small["mu"])  # the switch changes the output
    # Attention comes back on every node of the large graph, zero beyond the crop.
    assert cropped["attention"].shape[0] == sum(len(g.atomic_numbers) for g in big_graphs)
    distance = np.concatenate([np.linalg.norm(g.positions, axis=1) for g in big_graphs])
    kept = cropped["attention"].numpy()[distance < 5.5 + 1e-4]
    np.testing.assert_allclose(np.sort(kept), np.sort(small["attention"].numpy()), atol=1e-10)
    assert np.all(cropped["attention"].numpy()[distance >= 5.5 + 1e-4] == 0)


def test_a_crop_larger_than_the_graph_changes_nothing_and_needs_positions():
    structure = cuprite()
    torch.manual_seed(0)
    model = XANE3(dataclasses.replace(TINY, r_crop=9.0)).double().eval()
    reference = XANE3(TINY).double().eval()
    reference.load_state_dict(model.state_dict())
    out, _ = _outputs(model, structure, [0], 6.0)
    ref, _ = _outputs(reference, structure, [0], 6.0)
    torch.testing.assert_close(out["mu"], ref["mu"])
    batch = collate(build_graphs(structure, [0], GraphConfig(r_crop=6.0, r_max=TINY.r_max)), dtype=torch.float64)
    del batch.pos
    model.config = dataclasses.replace(model.config, r_crop=5.0)
    with pytest.raises(ValueError, match="positions"):
        model(batch)
