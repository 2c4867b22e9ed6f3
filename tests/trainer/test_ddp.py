"""Multi-process training through torchrun with the gloo backend on CPU."""

import json
import os
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
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "trainer.cli.train", str(config_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "runs" / config["name"]
    checkpoint = load_checkpoint(run_dir / "best.pt")
    assert checkpoint.provenance["world_size"] == 2
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1]  # only rank 0 logs
