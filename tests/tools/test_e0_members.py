"""tools/e0_members.py: the release rule that decides which E0 members ship."""

from __future__ import annotations


import numpy as np
import pytest

from tests.tools import load_tool


@pytest.fixture(scope="module")
def tool():
    return load_tool("e0_members")


def test_candidates_join_best_first_and_the_weakest_leaves(tool):
    rng = np.random.default_rng(0)
    common = rng.normal(size=400)
    # Two shipped members (one poor), a helpful candidate and one far worse than all.
    err = np.stack([common + 0.5 * rng.normal(size=400), 3 * common + rng.normal(size=400),
                    common + 0.5 * rng.normal(size=400), 10 * common + rng.normal(size=400)])
    log: list[str] = []
    kept = tool.release_rule(err, 2, [log.append])
    assert kept == [0, 2]  # the helpful candidate joined, the far worse one stayed out,
    # then the poor shipped member left
    assert any("joins" in line for line in log) and any("leaves" in line for line in log)


def test_cli_prints_the_decision(tool, tmp_path, capsys):
    paths = []
    for k, shift in enumerate((0.3, -0.3, 0.1)):
        path = tmp_path / f"m{k}.csv"
        rows = "".join(f"s{i},{8990 + i * 0.01},{8990 + i * 0.01 + shift + 0.05 * ((i * (k + 3)) % 5 - 2)}\n"
                       for i in range(20))
        path.write_text("# comment\nid,e0_true_ev,e0_pred_ev\n" + rows)
        paths.append(str(path))
    tool.main(["--members", "2", *paths])
    out = capsys.readouterr().out
    assert "offer 2" in out and out.strip().splitlines()[-1].startswith("members: ")
    with pytest.raises(SystemExit):
        tool.main(["--members", "5", *paths])
