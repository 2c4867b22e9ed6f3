"""tools/spectrum_members.py: the release rule for spectrum members, on dumped predictions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tools import load_tool


@pytest.fixture(scope="module")
def tool():
    return load_tool("spectrum_members")


def _dump(path, names, sel_true, rep_true, sel_noise, rep_noise, mean):
    ids = lambda n, p: np.array([f"{p}{i}" for i in range(n)])  # noqa: E731
    np.savez(path, names=np.array(names), train_mean=mean,
             sel_ids=ids(len(sel_true), "s"), rep_ids=ids(len(rep_true), "r"),
             sel_true=sel_true, rep_true=rep_true,
             sel_pred=sel_true[None] + sel_noise, rep_pred=rep_true[None] + rep_noise)


def test_rule_takes_a_helpful_candidate_and_chooses_a_group_weight(tool, tmp_path, capsys):
    rng = np.random.default_rng(0)
    n, g = 60, 12
    sel_true, rep_true = rng.normal(size=(n, g)), rng.normal(size=(n, g))
    mean = np.zeros(g)
    common_sel, common_rep = 0.3 * rng.normal(size=(n, g)), 0.3 * rng.normal(size=(n, g))
    # Two shipped members sharing an error; a candidate with an independent one helps, a
    # far worse one does not.
    _dump(tmp_path / "shipped.npz", ["a", "b"], sel_true, rep_true,
          np.stack([common_sel + 0.2 * rng.normal(size=(n, g)) for _ in range(2)]),
          np.stack([common_rep + 0.2 * rng.normal(size=(n, g)) for _ in range(2)]), mean)
    _dump(tmp_path / "good.npz", ["good"], sel_true, rep_true, 0.3 * rng.normal(size=(1, n, g)),
          0.3 * rng.normal(size=(1, n, g)), mean)
    _dump(tmp_path / "bad.npz", ["bad"], sel_true, rep_true, 3 * rng.normal(size=(1, n, g)),
          3 * rng.normal(size=(1, n, g)), mean)
    tool.main(["rule", str(tmp_path / "shipped.npz"), str(tmp_path / "good.npz"), str(tmp_path / "bad.npz"),
               "--group", "good", "--group-weights", "1,2"])
    out = capsys.readouterr().out
    assert "offer good" in out and "offer bad" in out
    decided = next(line for line in out.splitlines() if line.startswith("decided:"))
    assert "good" in decided and "bad" not in decided
    assert "chosen: x" in out and "residual correlation" in out


def test_rule_refuses_candidates_missing_ids(tool, tmp_path):
    rng = np.random.default_rng(1)
    t = rng.normal(size=(5, 3))
    _dump(tmp_path / "a.npz", ["a", "b"], t, t, rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 3)), np.zeros(3))
    _dump(tmp_path / "c.npz", ["c"], t[:4], t, rng.normal(size=(1, 4, 3)), rng.normal(size=(1, 5, 3)), np.zeros(3))
    with pytest.raises(SystemExit, match="missing"):
        tool.main(["rule", str(tmp_path / "a.npz"), str(tmp_path / "c.npz")])
