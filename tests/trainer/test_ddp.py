"""Multi-process training through torchrun with the gloo backend on CPU."""

import json
import os
import shutil
import socket
import subprocess
import sys

import yaml

from model_core.checkpoint import load_checkpoint

from tests.trainer.test_train import config_path  # noqa: F401 - fixture reuse


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes(config_path, tmp_path):  # noqa: F811
    config = yaml.safe_load(config_path.read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}

    def launch() -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
               "-m", "trainer.cli.train", str(config_path)]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)

    try:
        done = launch()  # ~12 s on 2 cores
    except subprocess.TimeoutExpired:
        # Once in many CI runs the two-process job finished its work (rank 0 had printed
        # best.pt) and then did not exit; a second launch on a fresh port tells such a rare
        # shutdown stall from a deterministic hang, which fails here again.
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)  # start over, not resume
        done = launch()
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "runs" / config["name"]
    checkpoint = load_checkpoint(run_dir / "best.pt")
    assert checkpoint.provenance["world_size"] == 2
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1]  # only rank 0 logs
