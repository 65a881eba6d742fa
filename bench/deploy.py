"""Deployment benchmark (issue #26): the chip image booted against the ONNX file, and the resource report of the
model on every profile.

    EDGE_TAAF_DATA=../shared/data python -m bench.deploy --run <pipeline run folder> \
        [--json docs/bench/deploy.json] [--markdown docs/deploy.md]

1. image: the run's exported program (its model.onnx, read by firmware_sim.loader) written as a chip image
   (firmware_sim/image.py) and booted from those bytes alone; both run the whole test split in the simulator;
   ``image_boot_exact`` 1 when every output of every sample is equal.
2. resources: firmware_sim.resources' report on every shipped hardware config (configs/hardware/*.yaml) and on
   the Speck-like and Xylo-like profiles: fits, or the first limit broken (layer, resource, need, limit).
3. NIR and NeuroBench: not built yet (issue #26 items 3 and 4); their keys are null with a note saying so.

The last line printed is one JSON object: image_boot_exact, image_bytes, resources_fit (profile -> 1 / 0),
resources_first_violation (profile -> the first broken limit or null), nir_roundtrip_argmax_agreement,
nir_importers, neurobench_synops_vs_counters, notes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.robustness import config_of_run, short
from edge_taaf import CONFIG_DIR
from firmware_sim.hardware import load_hardware
from firmware_sim.image import read_image, write_image
from firmware_sim.loader import load_program
from firmware_sim.resources import PROFILES, hardware_profile, resource_report
from firmware_sim.run import simulate
from sensors.atomic import atomic_write_text
from sensors.datasets import build_dataset


def image_section(program, inputs: dict) -> dict:
    """The image's size and whether the simulator booted from it equals the ONNX program's run on ``inputs``."""
    data = write_image(program)
    booted = read_image(data, "chip image")
    want, got = simulate(program, inputs).outputs(), simulate(booted, inputs).outputs()
    differing = sorted(k for k in set(want) | set(got) if k not in want or k not in got or not np.array_equal(want[k], got[k]))
    return {"image_boot_exact": int(not differing), "image_bytes": len(data), "image_differing_outputs": differing}


def resources_section(program, synops_per_s: float | None = None) -> dict:
    """Every profile's report: our hardware configs, then the Speck-like and Xylo-like ones."""
    profiles = [hardware_profile(load_hardware(p)) for p in sorted((Path(CONFIG_DIR) / "hardware").glob("*.yaml"))]
    return {p.name: resource_report(program, p, synops_per_s) for p in [*profiles, *PROFILES.values()]}


def synops_per_s(program, inputs: dict, rate_hz: float) -> float:
    """The synaptic operations per second the model needs at ``rate_hz`` inferences per second: the simulator's
    syn_ops counter per inference over ``inputs`` (T, B, ...) times the rate."""
    batch = next(iter(inputs.values())).shape[1]
    return simulate(program, inputs).counts.total("syn_ops") / batch * rate_hz


def markdown(result: dict) -> str:
    lines = ["# Deployment: the chip image and the resource report", "",
             f"Model: {result['model']} ({result['test_samples']} test samples). Command: `{result['command']}`.", "",
             f"Chip image: {result['image_bytes']} bytes; the simulator booted from it alone equals the ONNX file's "
             f"run on every output: {'yes' if result['image_boot_exact'] else 'NO'}.", "",
             "| profile | source | fits | first limit broken (layer: need vs limit) |", "|---|---|---|---|"]
    for name, report in result["resources"].items():
        v = report["first_violation"]
        broken = "" if v is None else f"{v['layer']}, {v['resource']}: {v['need']} vs {v['limit']}"
        lines.append(f"| {name} | {report['source']} | {'yes' if report['fits'] else 'no'} | {broken} |")
    for name, report in result["resources"].items():
        if "event_buffer" in report:
            e = report["event_buffer"]
            lines += ["", f"{name}: the event FIFO ({e['fifo_bytes']} bytes) holds one step's events unless more than "
                          f"{100 * e['spike_share_that_fills_it']:.0f} % of the largest layer fires in that step "
                          f"(worst case {e['worst_case_bytes']} bytes)."]
    lines += ["", f"Throughput: {result['synops_per_s']:,.0f} synaptic operations per second at {result['rate_hz']:g} "
                  "inferences per second (the simulator's counters); against each hardware config's clock x syn_units:",
              *(f"- {n}: limit {r['throughput']['limit']:,.0f} per second" for n, r in result["resources"].items()
                if r.get("throughput", {}).get("limit")),
              "", "NIR export and NeuroBench metrics: not built yet (issue #26).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="an edge-taaf-pipeline run folder (its report.json and config)")
    parser.add_argument("--label", help="what the run is, for the report (default: the run folder's last two parts)")
    parser.add_argument("--rate-hz", type=float, default=2.0, help="inferences per second the device must sustain "
                        "(default 2: one 0.5 s window each, the cochlea front-end's window)")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--markdown", help="also write the report here (e.g. docs/deploy.md)")
    args = parser.parse_args()
    onnx_path, cfg = config_of_run(Path(args.run))
    program = load_program(onnx_path)
    test = build_dataset(cfg.data, "test").only(program.inputs)
    inputs = {m: np.swapaxes(x, 0, 1) for m, x in test.inputs().items()}
    rate = synops_per_s(program, inputs, args.rate_hz)
    resources = resources_section(program, rate)
    label = args.label or f"pipeline run {short(args.run)}"
    result = {"model": label, "test_samples": int(test.labels.size),
              "command": f"python -m bench.deploy --run <{label}> --rate-hz {args.rate_hz:g}", "rate_hz": args.rate_hz,
              "synops_per_s": rate, **image_section(program, inputs),
              "resources": resources, "resources_fit": {k: r["fits"] for k, r in resources.items()},
              "resources_first_violation": {k: r["first_violation"] for k, r in resources.items()},
              "nir_roundtrip_argmax_agreement": None, "nir_importers": [], "neurobench_synops_vs_counters": None,
              "notes": {"nir": "null: NIR export and round trip are not built yet (issue #26 item 3)",
                        "neurobench": "null: NeuroBench metrics are not built yet (issue #26 item 4)"}}
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(result, indent=1) + "\n")
    if args.markdown:
        atomic_write_text(Path(args.markdown), markdown(result))
    print(markdown(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
