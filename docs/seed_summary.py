"""Seeds of one recipe -> one JSON: each run's validation and test accuracy, and their mean with the 95 % t-interval.

    python docs/seed_summary.py --label "robust, official split" outputs/pipeline/<seed 0 run> <seed 1 run> <seed 2 run> \
        > docs/bench/<name>.json

Each argument is an edge-taaf-pipeline run folder (its report.json). The runs must be one recipe on one split that
differ only in ``seed``: the script refuses runs of different data, split, T or fusion, and runs that were not
selected on validation. The last line printed is one JSON object (edge_taaf.intervals for the statistics).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from edge_taaf.intervals import interval

SAME = ("data", "T", "weight_bits", "fusion", "loss", "selected_on", "vision_test_source")
PER_RUN = ("seed", "val_acc", "sim_acc", "energy_uj_per_inference", "network_energy_uj_per_inference",
           "latency_us_per_inference", "onnx_ort_exact", "sim_equals_int_mode")


def run_record(folder: Path) -> dict:
    """One run's report.json plus its seed and split (from the run's .hydra/config.yaml)."""
    report_path = folder / "report.json"
    if not report_path.is_file():
        raise SystemExit(f"docs/seed_summary.py: {folder}: no report.json (expected an edge-taaf-pipeline run folder)")
    report = json.loads(report_path.read_text())
    cfg = OmegaConf.load(folder / ".hydra" / "config.yaml")
    return report | {"seed": int(cfg.seed), "split": str(cfg.data.get("split", "")), "folder": str(folder)}


def summarise(runs: list[dict], label: str) -> dict:
    for key in (*SAME, "split"):
        values = {json.dumps(r.get(key)) for r in runs}
        if len(values) > 1:
            raise SystemExit(f"docs/seed_summary.py: the runs differ in {key!r} ({sorted(values)}): one recipe per call")
    if runs[0]["selected_on"] != "val":
        raise SystemExit("docs/seed_summary.py: the runs were not selected on validation (selected_on != 'val')")
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"docs/seed_summary.py: a seed twice in {seeds}")
    return {"label": label, **{k: runs[0].get(k) for k in SAME}, "split": runs[0]["split"], "seeds": seeds,
            "runs": [{k: r.get(k) for k in (*PER_RUN, "folder")} for r in runs],
            "val_acc": interval([r["val_acc"] for r in runs]).as_dict(),
            "test_acc": interval([r["sim_acc"] for r in runs]).as_dict(),
            "all_exact": int(all(r["onnx_ort_exact"] and r["sim_equals_int_mode"] for r in runs))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="edge-taaf-pipeline run folders, one per seed")
    parser.add_argument("--label", required=True, help="what the runs are (printed in the JSON)")
    args = parser.parse_args(argv)
    out = summarise([run_record(f) for f in args.runs], args.label)
    t = out["test_acc"]
    print(f"{args.label}: test {100 * t['mean']:.2f} % (95 % CI {100 * t['low']:.2f}-{100 * t['high']:.2f}, "
          f"n = {t['n']}), val {100 * out['val_acc']['mean']:.2f} %", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
