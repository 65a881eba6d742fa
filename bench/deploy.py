"""Deployment benchmark (issue #26): the chip image booted against the ONNX file, and the resource report of the
model on every profile.

    EDGE_TAAF_DATA=../shared/data python -m bench.deploy --run <pipeline run folder> \
        [--nir-run <an edge-taaf-pipeline +experiment=nir run folder>] [--json docs/bench/deploy.json] [--markdown docs/deploy.md]

1. image: the run's exported program (its model.onnx, read by firmware_sim.loader) written as a chip image
   (firmware_sim/image.py) and booted from those bytes alone; both run the whole test split in the simulator;
   ``image_boot_exact`` 1 when every output of every sample is equal.
2. resources: firmware_sim.resources' report on every shipped hardware config (configs/hardware/*.yaml) and on
   the Speck-like and Xylo-like profiles: fits, or the first limit broken (layer, resource, need, limit).
3. NIR (quant/nir_export.py, docs/nir.md): the --run model's export (refused, naming the node, when its readout is
   TAAF's attention), then the --nir-run model (default: the --run model) written as a NIR file, read back by
   quant.nir_import (``nir_readback_exact``: its step logits and every layer's spikes equal the simulator's) and by
   the importers of snnTorch and Norse (bench/support/nir_importers.py) on the whole test split: the argmax agreement with
   our integer run and the share of identical spikes per layer, with NIR's reset as imported and with the reset
   set to subtraction.
4. NeuroBench (bench/support/neurobench_metrics.py): footprint, connection and activation sparsity and synaptic
   operations of the --nir-run model on the test split, beside the simulator's counters.

The last line printed is one JSON object: image_boot_exact, image_bytes, resources_fit (profile -> 1 / 0),
resources_first_violation (profile -> the first broken limit or null), nir_export_refusal,
nir_roundtrip_argmax_agreement (importer -> agreement, reset by subtraction), nir_roundtrip_argmax_agreement_nir_reset,
nir_identical_spikes (importer -> reset -> layer -> share), nir_importers, neurobench (NeuroBench's results),
neurobench_synops_vs_counters (their ratio) with its definition.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench.robustness import config_of_run, short
from edge_taaf import CONFIG_DIR
from firmware_sim.hardware import load_hardware
from firmware_sim.image import read_image, write_image
from firmware_sim.loader import load_program
from firmware_sim.resources import PROFILES, hardware_profile, resource_report
from firmware_sim.run import simulate
from quant.nir_export import NIRError, program_to_nir, write_nir
from quant.nir_import import NIRIntegerNet, graph_feed, run_nir_integer
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


NIR_DT_S = 1e-4   # the graph's time base: snnTorch's importer fixes dt at 1e-4 s (bench/support/nir_importers.py)


def test_run(program, cfg) -> tuple[dict, np.ndarray]:
    """The test split as (T, B, ...) inputs of the program, and its labels."""
    test = build_dataset(cfg.data, "test").only(program.inputs)
    return {m: np.swapaxes(x, 0, 1) for m, x in test.inputs().items()}, test.labels


def nir_section(program, inputs: dict, labels: np.ndarray, folder: Path) -> dict:
    """The program as a NIR file read back by us and by each importer, against the simulator on ``inputs``."""
    import nir
    from bench.support.neurobench_metrics import counters_like_neurobench, neurobench_metrics
    from bench.support.nir_importers import READABLE, RESETS, import_graph, run_imported
    sim = simulate(program, inputs)
    written = write_nir(program, folder / "model.nir", NIR_DT_S)
    graph = nir.read(folder / "model.nir")
    feed = graph_feed(graph, inputs, sim.frontend)     # the sensors, or their front-ends' output (docs/nir.md)
    steps, spikes = run_nir_integer(NIRIntegerNet(graph), feed)
    exact = np.array_equal(steps, sim.step_logits) and all(np.array_equal(spikes[k], sim.spikes[k]) for k in sim.spikes)
    agreement, identical = {}, {}
    x = feed[f"input.{next(iter(program.inputs))}"]
    for importer in READABLE:
        for reset in RESETS:
            out, got = run_imported(import_graph(graph, importer, NIR_DT_S, reset), x)
            agreement.setdefault(reset, {})[importer] = float((out.sum(0).argmax(1) == sim.predictions).mean())
            identical.setdefault(importer, {})[reset] = {k: float((got[k] == sim.spikes[k]).mean()) for k in got}
    bench = neurobench_metrics(graph, x, labels)
    ours = sim.counts.total("syn_ops") / labels.size + sim.counts.units["readout"].counts["macs"] / labels.size
    like = counters_like_neurobench(program, sim.spikes, sim.frontend)
    nb_ops = bench["SynapticOperations"]["Effective_ACs"] + bench["SynapticOperations"]["Effective_MACs"]
    return {"nir_nodes": written["nir_node_types"], "nir_readback_exact": int(exact),
            "nir_importers": sorted(READABLE), "nir_roundtrip_argmax_agreement": agreement["subtract"],
            "nir_roundtrip_argmax_agreement_nir_reset": agreement["nir"], "nir_identical_spikes": identical,
            "nir_sim_saturations": int(sim.counts.total("saturations")),
            "nir_model_sim_acc": float((sim.predictions == labels).mean()),
            "neurobench": bench, "neurobench_synops_vs_counters": nb_ops / ours,
            "neurobench_synops_vs_counters_definition": (
                "NeuroBench's Effective_ACs + Effective_MACs per sample over the simulator's syn_ops + readout macs per "
                "sample; NeuroBench skips zero weights and counts a multi-spike input once, the simulator pays both"),
            "counters_synops_like_neurobench": like, "neurobench_synops_vs_counters_like_neurobench": nb_ops / like}


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
              "", *nir_markdown(result), ""]
    return "\n".join(lines)


def nir_markdown(result: dict) -> list[str]:
    """The NIR and NeuroBench part of docs/deploy.md."""
    lines = ["## NIR (docs/nir.md)", "", f"The deployed model: {result['nir_export_refusal'] or 'exported'}.", "",
             f"The NIR model: {result['nir_model']} (simulator test accuracy {100 * result['nir_model_sim_acc']:.2f} %), "
             f"nodes {result['nir_nodes']}. Read back by quant.nir_import, its step logits and every layer's spikes "
             f"equal the simulator's: {'yes' if result['nir_readback_exact'] else 'NO'}.", "",
             "| importer | argmax agreement, reset set to subtraction | as imported (NIR's reset to 0) | identical spikes per layer (subtraction) |",
             "|---|---|---|---|"]
    for imp in result["nir_importers"]:
        spikes = ", ".join(f"{k} {100 * v:.2f} %" for k, v in result["nir_identical_spikes"][imp]["subtract"].items())
        lines.append(f"| {imp} | {100 * result['nir_roundtrip_argmax_agreement'][imp]:.2f} % | "
                     f"{100 * result['nir_roundtrip_argmax_agreement_nir_reset'][imp]:.2f} % | {spikes} |")
    nb = result["neurobench"]
    syn = nb["SynapticOperations"]
    lines += ["", "## NeuroBench (bench/support/neurobench_metrics.py)", "",
              "| metric | NeuroBench | ours |", "|---|---|---|",
              f"| footprint | {nb['Footprint']:,.0f} bytes (float32 tensors) | {result['nir_weight_bytes']:,} bytes of weights at their width |",
              f"| connection sparsity | {nb['ConnectionSparsity']:.4f} | (zero weights are read and paid) |",
              f"| activation sparsity | {nb['ActivationSparsity']:.4f} | spike rate {1 - nb['ActivationSparsity']:.4f} |",
              f"| synaptic operations per sample | effective ACs {syn['Effective_ACs']:,.0f}, MACs {syn['Effective_MACs']:,.0f}, "
              f"dense {syn['Dense']:,.0f} | syn_ops + readout macs {syn['Effective_ACs'] / result['neurobench_synops_vs_counters']:,.0f}; "
              f"NeuroBench's definition from our spikes {result['counters_synops_like_neurobench']:,.0f} |",
              "", f"Ratio {result['neurobench_synops_vs_counters']:.4f}: {result['neurobench_synops_vs_counters_definition']}."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="an edge-taaf-pipeline run folder (its report.json and config)")
    parser.add_argument("--label", help="what the run is, for the report (default: the run folder's last two parts)")
    parser.add_argument("--nir-run", help="the run whose model goes through NIR and NeuroBench (default --run): a model "
                        "NIR can carry, e.g. edge-taaf-pipeline +experiment=nir")
    parser.add_argument("--nir-label", help="what the --nir-run is, for the report")
    parser.add_argument("--rate-hz", type=float, default=2.0, help="inferences per second the device must sustain "
                        "(default 2: one 0.5 s window each, the cochlea front-end's window)")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--markdown", help="also write the report here (e.g. docs/deploy.md)")
    args = parser.parse_args()
    onnx_path, cfg = config_of_run(Path(args.run))
    program = load_program(onnx_path)
    inputs, labels = test_run(program, cfg)
    rate = synops_per_s(program, inputs, args.rate_hz)
    resources = resources_section(program, rate)
    label = args.label or f"pipeline run {short(args.run)}"
    try:
        program_to_nir(program, NIR_DT_S)
        refusal = None
    except NIRError as err:
        refusal = f"refused: {err}"
    nir_onnx, nir_cfg = config_of_run(Path(args.nir_run or args.run))
    nir_program = load_program(nir_onnx)
    with tempfile.TemporaryDirectory() as folder:
        nir = nir_section(nir_program, *test_run(nir_program, nir_cfg), Path(folder))
    nir_label = args.nir_label or f"pipeline run {short(args.nir_run or args.run)}"
    result = {"model": label, "test_samples": int(labels.size),
              "command": f"python -m bench.deploy --run <{label}> --nir-run <{args.nir_label or 'the same run'}> --rate-hz {args.rate_hz:g}", "rate_hz": args.rate_hz,
              "synops_per_s": rate, **image_section(program, inputs),
              "resources": resources, "resources_fit": {k: r["fits"] for k, r in resources.items()},
              "resources_first_violation": {k: r["first_violation"] for k, r in resources.items()},
              "nir_export_refusal": refusal, "nir_model": nir_label, "nir_dt_s": NIR_DT_S,
              "nir_weight_bytes": int(sum(layer.weight.size for layer in nir_program.layers) * nir_program.weight_bits // 8
                                      + nir_program.readout.weight.size * nir_program.weight_bits // 8), **nir}
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(result, indent=1) + "\n")
    if args.markdown:
        atomic_write_text(Path(args.markdown), markdown(result))
    print(markdown(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
