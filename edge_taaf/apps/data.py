"""edge-taaf-data: build (or load from cache) a paired data set and print its summary.

    edge-taaf-data                      # the synthetic default (no files needed)
    edge-taaf-data data=fsdd_mnist      # real FSDD + emulated N-MNIST (needs EDGE_TAAF_DATA)
"""
from __future__ import annotations

import json
import time

import hydra
from omegaconf import DictConfig

from edge_taaf import CONFIG_DIR
from sensors.ead import build_dataset


def summarise(cfg: DictConfig) -> dict:
    report = {"data": cfg.data.name, "synthetic": cfg.data.name.startswith("synth")}
    for split in ("train", "test"):
        t0 = time.time()
        report[split] = build_dataset(cfg.data, split).summary()
        report[split]["seconds"] = round(time.time() - t0, 2)
    return report


@hydra.main(config_path=CONFIG_DIR, config_name="data_app", version_base="1.3")
def main(cfg: DictConfig) -> None:
    report = summarise(cfg)
    label = " (SYNTHETIC)" if report["synthetic"] else ""
    print(f"data set {report['data']}{label}")
    for split in ("train", "test"):
        s = report[split]
        print(f"  {split}: {s['samples']} samples, T={s['T']}, vision {s['vision_shape']}, audio {s['audio_shape']}, "
              f"spikes/sample vision {s['vision_spikes_per_sample']:.0f} audio {s['audio_spikes_per_sample']:.0f} "
              f"({s['seconds']} s)")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
