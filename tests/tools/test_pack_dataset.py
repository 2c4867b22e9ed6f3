"""tools/pack_dataset.py: a prepared dataset travels without its edge lists and comes back whole."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.tools import load_tool


@pytest.fixture(scope="module")
def tool():
    return load_tool("pack_dataset")


def _dataset(tool, path, max_neighbors=0):
    rng = np.random.default_rng(0)
    counts = [5, 1, 9]
    pos = rng.uniform(-3, 3, size=(sum(counts), 3))
    nodes = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    meta = {"graph_config": {"r_crop": 7.0, "r_max": 3.0, "max_neighbors": 0}}
    arrays = {"pos": pos, "node_offsets": nodes, "meta_json": np.array(json.dumps(meta)),
              "mu": rng.normal(size=(3, 4)).astype(np.float32)}
    arrays["edge_index"], arrays["edge_offsets"] = tool.rebuild_edges(arrays)
    meta["graph_config"]["max_neighbors"] = max_neighbors
    arrays["meta_json"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return arrays


def test_pack_then_unpack_restores_every_array(tool, tmp_path):
    full = _dataset(tool, tmp_path / "full.npz")
    assert full["edge_index"].shape[1] > 0
    assert tool.main(["pack", str(tmp_path / "full.npz"), str(tmp_path / "small.npz")]) == 0
    assert "edge_index" not in np.load(tmp_path / "small.npz")
    assert tool.main(["unpack", str(tmp_path / "small.npz"), str(tmp_path / "back.npz")]) == 0
    back = np.load(tmp_path / "back.npz")
    assert sorted(back.keys()) == sorted(full) and all(np.array_equal(back[k], full[k]) for k in full)
    assert tool.main(["check", str(tmp_path / "full.npz")]) == 0


def test_bad_input_is_one_line(tool, tmp_path, capsys):
    (tmp_path / "junk.npz").write_text("not a zip")
    assert tool.main(["check", str(tmp_path / "junk.npz")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(str(tmp_path / "junk.npz")) and "\n" not in err
    _dataset(tool, tmp_path / "full.npz")
    assert tool.main(["pack", str(tmp_path / "full.npz"), str(tmp_path / "small.npz")]) == 0
    assert tool.main(["check", str(tmp_path / "small.npz")]) == 1  # nothing to compare with
    err = capsys.readouterr().err.strip()
    assert err.startswith(str(tmp_path / "small.npz")) and "\n" not in err
    _dataset(tool, tmp_path / "capped.npz", max_neighbors=4)
    with pytest.raises(ValueError, match="max_neighbors"):
        tool.rebuild_edges(dict(np.load(tmp_path / "capped.npz")))
