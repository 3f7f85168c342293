"""Training on several machines as the README documents it: torchrun with --nnodes and a c10d rendezvous.
Two launchers on this machine play two nodes of one process each (loopback only); they must train exactly
like one process with twice the batch, as the single-node DDP test in test_core.py checks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from test_core import (DDP_SCRIPT, assert_same_weights, data_dir, subprocess_env,  # noqa: F401 (a fixture)
                       tiny_config, weights)

from gamegpt.core.train import train


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_two_nodes_through_a_rendezvous_train_like_one_process(data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    # float32, as in test_core's DDP test: bfloat16 autocast rounds half batches differently from a whole one
    cfg = tiny_config(data_dir, tmp_path / "ddp", batch_size=4, max_steps=6, threads=1, dtype="float32")
    port = _free_port()
    nodes = []
    for node, is_host in enumerate(("true", "false")):
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                   "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=gamegpt-test",
                   f"--rdzv-conf=is_host={is_host}", "--local-addr=127.0.0.1", "--max-restarts=0",
                   str(script), json.dumps(cfg.to_dict()), str(tmp_path)]
        nodes.append(subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = []
    try:
        for launcher in nodes:
            outputs.append(launcher.communicate(timeout=240)[0])
    finally:
        for launcher in nodes:
            if launcher.poll() is None:
                launcher.kill()
    assert [n.returncode for n in nodes] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["step"] for r in reports] == [6, 6]
    assert reports[1]["checkpoint"] == "None"  # only rank 0 writes checkpoints
    train(tiny_config(data_dir, tmp_path / "single", batch_size=8, max_steps=6, dtype="float32"), progress=False)
    assert_same_weights(weights(tmp_path / "ddp"), weights(tmp_path / "single"), atol=1e-5)
