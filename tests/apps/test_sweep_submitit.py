"""Cluster sweeps: `edge-taaf-pipeline -m` on hydra-submitit-launcher's submitit_local launcher.

submitit_local runs every sweep point as its own submitit job (a subprocess, the job pickled as it is
for SLURM); the README's SLURM command differs only in the launcher name (submitit_slurm). When the
sweep ends, the sweep_summary callback (edge_taaf/apps/sweep.py) must have collected every point.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.configs import TINY

SWEEP = "data.T=4,6"


def console_script(name: str) -> str:
    """The console script installed next to this interpreter (the project's venv)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed next to {sys.executable}: pip install -e . (or pip install .)")
    return found


@pytest.mark.slow
def test_submitit_local_sweep_collects_every_point(tmp_path):
    tiny = [o for o in TINY if not o.startswith(("data.T=", "trainer.epochs="))]
    fixed = [*tiny, "float_epochs=1", "qat_epochs=1", "trainer.log_epochs=false"]
    # Name each point by the swept value only (the tiny overrides would make an over-long folder name).
    exclude = ",".join(o.split("=", 1)[0] for o in fixed)
    sweep_dir = tmp_path / "sweep"
    cmd = [console_script("edge-taaf-pipeline"), "-m", SWEEP, *fixed,
           "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "hydra.launcher.cpus_per_task=1",
           f"hydra.sweep.dir={sweep_dir}", f"hydra.job.config.override_dirname.exclude_keys=[{exclude}]"]
    env = dict(os.environ, EDGE_TAAF_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="1")
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(sweep_dir.glob(".submitit/*/*.err")))
    assert proc.returncode == 0, f"sweep failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{logs}"

    assert list(sweep_dir.glob(".submitit/*/*_result.pkl")), "the points did not run as submitit jobs"
    assert "sweep: 2 points" in proc.stdout, proc.stdout[-3000:]
    rows = json.loads((sweep_dir / "comparison.json").read_text())
    assert sorted((r["point"], r["T"]) for r in rows) == [("data.T=4", 4), ("data.T=6", 6)]
    for r in rows:
        report = json.loads((sweep_dir / r["point"] / "report.json").read_text())
        assert r["sim_acc"] == report["sim_acc"] and r["energy_uj"] == report["energy_uj_per_inference"] > 0
    assert "| data.T=4 | 4 | 8 |" in (sweep_dir / "comparison.md").read_text()
    assert (sweep_dir / "pareto.png").stat().st_size > 0
