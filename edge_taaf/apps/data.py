"""edge-taaf-data: build (or load from cache) a paired data set and print its summary.

    edge-taaf-data                      # the synthetic default (no files needed)
    edge-taaf-data data=fsdd_mnist      # real FSDD + emulated N-MNIST (needs EDGE_TAAF_DATA)
    edge-taaf-data fetch [--root DIR]   # download + verify FSDD, MNIST 5k, MNIST test (sensors/fetch.py), then
                                        # export EDGE_TAAF_DATA=DIR (default: $EDGE_TAAF_DATA, else ~/.cache/edge_taaf/data)
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from edge_taaf import CONFIG_DIR
from sensors.datasets import SPLITS, build_dataset
from sensors.fetch import cli as fetch_cli


def summarise(cfg: DictConfig) -> dict:
    report = {"data": cfg.data.name, "synthetic": cfg.data.name.startswith("synth")}
    for split in SPLITS:
        t0 = time.time()
        report[split] = build_dataset(cfg.data, split).summary()
        report[split]["seconds"] = round(time.time() - t0, 2)
    return report


@hydra.main(config_path=CONFIG_DIR, config_name="data_app", version_base="1.3")
def summary_app(cfg: DictConfig) -> None:
    report = summarise(cfg)
    label = " (SYNTHETIC)" if report["synthetic"] else ""
    print(f"data set {report['data']}{label}")
    for split in SPLITS:
        s = report[split]
        sensors = ", ".join(f"{m} {s[m + '_shape']} ({s[m + '_spikes_per_sample']:.0f} spikes/sample)"
                            for m in s["modalities"])
        print(f"  {split}: {s['samples']} samples, T={s['T']}, {sensors} ({s['seconds']} s)")
    print(json.dumps(report))


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: ``fetch ...`` runs the downloader (argparse); anything else is the Hydra app.

    ``argv`` defaults to sys.argv[1:]; the Hydra app always reads sys.argv itself.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["fetch"]:
        fetch_cli(argv[1:], prog="edge-taaf-data fetch")
    else:
        summary_app()


if __name__ == "__main__":
    main()
