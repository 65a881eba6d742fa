"""The seeds table of docs/robustness.md from bench/robustness.py's saved JSON (one file per seed).

    python docs/robustness_table.py docs/bench/robustness_robust_seed*.json

Prints a markdown table: each issue #14 / #22 key per seed, the mean and the standard deviation over the seeds,
and the target beside it, so the page quotes the JSON and nothing typed by hand. A key a seed's file leaves
null (the speaker split and the LOSO study, when that seed did not run them) is n/a there, and the "met"
column says how many seeds it rests on. The failures never seen in training (ood_* keys) follow in a table of
their own, apart from the in-distribution ones.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

# (key, label, target as text, predicate on the value or None when only reported)
ROWS = (
    ("official_sim_acc", "official split, both sensors", ">= 99.5 %", lambda r, v: v >= 0.995),
    ("speaker_heldout_fused", "speakers lucas + george held out, fused", ">= 97 %", lambda r, v: v >= 0.97),
    ("loso_fused_mean", "leave-one-speaker-out, mean fused over the folds", ">= 97 %", lambda r, v: v >= 0.97),
    ("min_fused_minus_best_unimodal", "min fused - best unimodal (official, speaker split, LOSO folds given)", ">= 0",
     lambda r, v: v >= 0),
    ("audio_silent_acc", "audio dead (all zeros)", ">= vision alone - 1 pp",
     lambda r, v: v >= r["vision_only_acc"] - 0.01),
    ("vision_silent_acc", "vision dead (all zeros)", ">= audio alone - 1 pp",
     lambda r, v: v >= r["audio_only_acc"] - 0.01),
    ("audio_only_acc", "audio alone (its own prediction), official", "", None),
    ("vision_only_acc", "vision alone (its own prediction), official", "", None),
    ("noisy_audio_acc", "audio at 0 dB SNR", "reported", None),
    ("noisy_dvs_acc", "DVS + 10x background", "reported", None),
    ("loso_fused_ci95_low", "leave-one-speaker-out, 95 % interval's low end over the study's seeds", "reported", None),
    ("writer_disjoint_vision_acc", "vision alone, writers absent from training", "reported", None),
    ("ann_speaker_heldout", "ANN competitor, speakers held out", "reported", None),
    ("ann_audio_silent_acc", "ANN competitor, audio dead", "reported", None),
    ("ann_vision_silent_acc", "ANN competitor, vision dead", "reported", None),
)
# failures never seen in training (edge_taaf.apps.robustness.OOD_FAILURES): a table of their own, kept apart
OOD_ROWS = (
    ("ood_hot_pixels", "2 % hot DVS pixels at 500 Hz"),
    ("ood_dead_pixels", "20 % dead DVS pixels"),
    ("ood_dead_channels", "25 % dead cochlea channels"),
    ("ood_mains_hum_50hz", "50 Hz mains hum at 0 dB SNR"),
    ("ood_mains_hum_60hz", "60 Hz mains hum at 0 dB SNR"),
    ("ood_clipping", "waveform clipped at 10 % of its peak"),
    ("ood_babble_0db", "babble at 0 dB SNR"),
    ("ood_babble_m5db", "babble at -5 dB SNR"),
    ("ood_dvs_background_nmnist", "DVS background of the real N-MNIST sample"),
    ("ood_dvs_background_dvxplorer", "DVS background of the real DVXplorer sample"),
)


def fmt(key: str, value) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.2f} pp" if key.startswith("min_") else f"{100 * value:.2f} %"


def table(results: list[dict], seeds: list[str], rows=ROWS) -> str:
    head = "| key | what | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std | target | met (all seeds) |"
    lines = [head, "|" + "---|" * (len(seeds) + 5)]
    for key, label, target, ok in rows:
        values = [r.get(key) for r in results]
        present = [v for v in values if v is not None]
        if present:
            mean = sum(present) / len(present)
            std = math.sqrt(sum((v - mean) ** 2 for v in present) / len(present))
            unit = "pp" if key.startswith("min_") else "%"
            summary = f"{100 * mean:.2f} ± {100 * std:.2f} {unit}"
        else:
            summary = "n/a"
        if ok is None:
            met = ""
        elif not present:
            met = "not run"
        else:
            met = "yes" if all(ok(r, v) for r, v in zip(results, values) if v is not None) else "**no**"
            if len(present) < len(values):    # e.g. the speaker split and LOSO, run for seed 0 only
                met += f" ({len(present)} of {len(values)} seeds run)"
        lines.append(f"| `{key}` | {label} | " + " | ".join(fmt(key, v) for v in values) + f" | {summary} | {target} | {met} |")
    return "\n".join(lines)


def main(paths: list[str]) -> None:
    if not paths:
        raise SystemExit("usage: python docs/robustness_table.py <robustness JSON> [...]")
    results, seeds = [], []
    for path in sorted(paths):
        text = Path(path).read_text().strip().splitlines()[-1]
        results.append(json.loads(text))
        seeds.append(str(results[-1].get("seed_of_model", Path(path).stem.rsplit("seed", 1)[-1])))
    print(table(results, seeds))
    if any(r.get(key) is not None for r in results for key, _ in OOD_ROWS):
        print("\nFailures never seen in training (fused accuracy, simulator):\n")
        print(table(results, seeds, [(key, label, "reported", None) for key, label in OOD_ROWS]))


if __name__ == "__main__":
    main(sys.argv[1:])
