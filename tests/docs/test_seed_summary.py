"""docs/seed_summary.py: seeds of one recipe -> mean and 95 % t-interval of val and test, and what it refuses."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "seed_summary.py"


def run_folder(tmp: Path, seed: int, sim_acc: float, val_acc: float = 0.9, split: str = "official",
               selected_on: str = "val") -> Path:
    folder = tmp / f"run{seed}-{split}"
    (folder / ".hydra").mkdir(parents=True)
    report = {"data": "fsdd_mnist", "T": 16, "weight_bits": 8, "fusion": "taaf_modal", "loss": "taaf_balanced",
              "selected_on": selected_on, "vision_test_source": "mnist5k", "val_acc": val_acc, "sim_acc": sim_acc,
              "onnx_ort_exact": 1, "sim_equals_int_mode": 1}
    (folder / "report.json").write_text(json.dumps(report))
    (folder / ".hydra" / "config.yaml").write_text(f"seed: {seed}\ndata:\n  split: {split}\n")
    return folder


def summary(*folders, label="x"):
    done = subprocess.run([sys.executable, str(SCRIPT), "--label", label, *map(str, folders)], capture_output=True,
                          text=True)
    return done.returncode, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "", done.stderr


def test_three_seeds_give_the_t_interval(tmp_path):
    rc, line, _ = summary(*(run_folder(tmp_path, s, a) for s, a in ((0, 0.97), (1, 0.98), (2, 0.99))))
    out = json.loads(line)
    assert rc == 0 and out["seeds"] == [0, 1, 2] and out["all_exact"] == 1
    half = 4.302652729911275 * 0.01 / math.sqrt(3)
    assert out["test_acc"]["mean"] == pytest.approx(0.98) and out["test_acc"]["std"] == pytest.approx(0.01)
    assert out["test_acc"]["low"] == pytest.approx(0.98 - half) and out["val_acc"]["n"] == 3


@pytest.mark.parametrize("bad", ["split", "seed"])
def test_mixed_runs_are_refused(tmp_path, bad):
    a = run_folder(tmp_path / "a", 0, 0.9)
    b = run_folder(tmp_path / "b", 1, 0.9, split="speaker") if bad == "split" else run_folder(tmp_path / "b", 0, 0.9)
    rc, _, err = summary(a, b)
    assert rc != 0 and ("differ in 'split'" in err if bad == "split" else "a seed twice" in err)


def test_runs_chosen_on_test_are_refused(tmp_path):
    rc, _, err = summary(*(run_folder(tmp_path, s, 0.9, selected_on="test") for s in (0, 1)))
    assert rc != 0 and "not selected on validation" in err


def test_a_folder_without_a_report_is_named(tmp_path):
    rc, _, err = summary(tmp_path)
    assert rc != 0 and f"{tmp_path}: no report.json" in err
