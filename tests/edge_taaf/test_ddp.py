"""DistributedDataParallel under torchrun (gloo on CPU): two ranks end with identical weights."""
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edge_taaf.checkpoint import load_checkpoint
from tests.support.configs import TINY
from tests.support.data_gating import FIXTURE_ROOT

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_end_with_identical_weights(tmp_path):
    run_dir = tmp_path / "run"
    # 33 samples: the ranks' shards would hold 17 and 16 samples, i.e. 2 and 1 batches of 16, and
    # DDP would wait forever for the missing all-reduce unless the shards are made equal.
    overrides = [*TINY, "data.n_train=33", "trainer.epochs=2", "trainer.save_rank_weights=true",
                 "trainer.log_epochs=false", f"data.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run_dir}"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "-m", "edge_taaf.apps.train", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDGE_TAAF_DATA": os.environ.get("EDGE_TAAF_DATA", str(FIXTURE_ROOT)),
           "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish in 120 s (ranks out of step?):\n{log[-3000:]}")
    assert proc.returncode == 0, log[-3000:]

    w0 = torch.load(run_dir / "weights_rank0.pt", weights_only=True)
    w1 = torch.load(run_dir / "weights_rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys() and len(w0) > 10
    differ = [k for k in w0 if not torch.equal(w0[k], w1[k])]
    assert not differ, f"ranks diverged in {differ}"
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")  # rank 0's checkpoint holds the same final weights
    assert ckpt["epoch"] == 1 and all(torch.equal(ckpt["model"][k], w0[k]) for k in w0)
    assert len(ckpt["history"]) == 2
