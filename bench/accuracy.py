"""Accuracy of TAAF against its predecessors on fsdd_mnist, and under imbalance on synth.

Runs, each over several seeds (final-epoch test accuracy, no selection on the test set):
  * fsdd_mnist, official split: taaf+taaf_balanced, concat+ce, concat+ogm_ge, taaf+ce
    (mean, std, and epochs each needs to reach 95 % of its best fused accuracy);
  * fsdd_mnist, speaker-held-out split (test speakers lucas, george): taaf+taaf_balanced;
  * synth_imbalanced (SYNTHETIC; vision clean and dominant, audio noisy but needed): every method.
Runs go in parallel through joblib (one process per run).

    EDGE_TAAF_DATA=../shared/data python -m bench.accuracy --epochs 30 --seeds 0 1 2 --jobs 2

Writes --out (JSON with every run's history) and prints one JSON object as its last line:
fused_acc, audio_acc, vision_acc (fractions, main method, mean over seeds), T, epochs, method, seconds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from joblib import Parallel, delayed

ROOT = Path(__file__).resolve().parents[1]   # the repository: default output paths
MAIN = "taaf+taaf_balanced"
METHODS = {
    "taaf+taaf_balanced": ["model.fusion=taaf", "loss=taaf_balanced"],
    "concat+ce": ["model.fusion=concat", "loss=ce"],
    "concat+ogm_ge": ["model.fusion=concat", "loss=ogm_ge"],
    "taaf+ce": ["model.fusion=taaf", "loss=ce"],
}


def run_one(study: str, method: str, overrides: list[str], seed: int, epochs: int, workdir: str, threads: int) -> dict:
    """Train one configuration; return its per-epoch history."""
    import torch
    from hydra import compose, initialize_config_dir

    from edge_taaf import CONFIG_DIR
    from edge_taaf.apps.train import run_training

    torch.set_num_threads(threads)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", [*overrides, f"seed={seed}", f"trainer.epochs={epochs}",
                                "trainer.progress=false", "trainer.log_epochs=false"])
    run_dir = Path(workdir) / f"{study}-{method}-s{seed}"
    t0 = time.time()
    run_training(cfg, run_dir)
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {"study": study, "method": method, "seed": seed, "seconds": time.time() - t0, "T": int(cfg.model.T),
            "history": history, "checkpoint": str(run_dir / "checkpoint.pt")}


def epochs_to_95(history: list[dict]) -> int:
    best = max(h["fused_acc"] for h in history)
    return next(h["epoch"] for h in history if h["fused_acc"] >= 0.95 * best)


def summarise(runs: list[dict]) -> dict:
    """Mean and std over seeds per (study, method)."""
    table = {}
    for r in runs:
        table.setdefault(r["study"], {}).setdefault(r["method"], []).append(r)
    out = {}
    for study, methods in table.items():
        for method, rs in methods.items():
            row = {}
            for key in ("fused_acc", "audio_acc", "vision_acc"):
                vals = [r["history"][-1][key] for r in rs]
                row[key] = statistics.mean(vals)
                row[key + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
            row["epochs_to_95pct_of_best"] = statistics.mean(epochs_to_95(r["history"]) for r in rs)
            row["seeds"] = [r["seed"] for r in rs]
            out.setdefault(study, {})[method] = row
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--studies", nargs="+", default=["official", "speaker", "synth_imbalanced"])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--extra", nargs="*", default=[], help="Hydra overrides added to every run")
    ap.add_argument("--out", default=str(ROOT / "docs" / "accuracy_runs.json"))
    ap.add_argument("--workdir", default=None, help="keep run folders (checkpoints) here; default: a temporary folder")
    args = ap.parse_args(argv)

    studies = {"official": ["data=fsdd_mnist"], "speaker": ["data=fsdd_mnist", "data.split=speaker"],
               "synth_imbalanced": ["data=synth_imbalanced"]}
    jobs = []
    for study in args.studies:
        methods = [MAIN] if study == "speaker" else args.methods
        for method in methods:
            ov = METHODS[method]
            for seed in args.seeds:
                jobs.append((study, method, [*studies[study], *ov, *args.extra], seed))
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or tmp
        runs = Parallel(n_jobs=args.jobs)(
            delayed(run_one)(s, m, ov, seed, args.epochs, work, args.threads) for s, m, ov, seed in jobs)
    summary = summarise(runs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "runs": [{k: v for k, v in r.items() if k != "checkpoint"}
                                                                        for r in runs]}, indent=1))
    for study, methods in summary.items():
        for method, row in methods.items():
            print(f"{study:17s} {method:20s} fused {100 * row['fused_acc']:.2f} +- {100 * row['fused_acc_std']:.2f}  "
                  f"audio {100 * row['audio_acc']:.2f}  vision {100 * row['vision_acc']:.2f}  "
                  f"epochs to 95% of best {row['epochs_to_95pct_of_best']:.1f}")
    head_study = "official" if "official" in summary else next(iter(summary))
    method = MAIN if MAIN in summary[head_study] else next(iter(summary[head_study]))
    main_row = summary[head_study][method]
    result = {"fused_acc": main_row["fused_acc"], "audio_acc": main_row["audio_acc"], "vision_acc": main_row["vision_acc"],
              "T": runs[0]["T"], "epochs": args.epochs, "method": method, "study": head_study,
              "seconds": time.time() - t0, "summary": summary}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
