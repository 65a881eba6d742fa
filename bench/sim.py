"""Simulator benchmark: exactness, counters, speed against torch integer mode and xylosim, energy.

1. exactness: the fsdd_mnist model (--checkpoint, or EDGE_TAAF_CHECKPOINT; without one an
   untrained int8 model of configs/model/snn.yaml, labelled so) is exported to ONNX; the simulator
   (from that file), quant/ integer mode and onnxruntime run the whole test split; sim_exact = 1
   when all three agree on every output of every sample. counts_event_driven_equal_dense = 1 when the
   event-driven kernels (which skip untouched neurons) and the reference kernels (which step every
   neuron) agree on every output and every counter over the split.
2. speed vs torch: batch 1, one thread each, interleaved sample by sample, the same --samples test
   samples, one warm-up call each first. The headline peer is torch integer mode at its best case
   (``model.frozen()``: integer weights computed once, no per-call checks); the per-call mode
   (re-quantising every layer on each call) is reported beside it. Median of per-sample ratios. The
   headline (sim_speedup_vs_torch_int) is throughput with each side at its best batch size: both are
   tried at TORCH_BATCHES, and the best of each run interleaved (bench/support/timing.py);
   sim_speedup_vs_torch_int_best_batch names the sizes, sim_speedup_vs_torch_int_batch1 keeps batch 1.
3. speed vs xylosim: NOT the ONNX-program simulator. A feed-forward 64-256-10 network (random int8
   weights, T=100, the same Bernoulli raster for both) is run by xylosim (fed numpy arrays, reset_all
   before each sample) and by bench/support/xylo_kernel.py's Xylo-neuron kernel (run_ff_xylo, Xylo's
   neuron model), checked spike for spike first; then timed like every other pair: warm-up calls,
   interleaved rounds in rotated order, one thread each, median of per-round ratios per synaptic event.
4. energy: the simulator over the whole test split, priced by every --hardware config (default:
   horowitz45nm, a component model with memory; sne22nm, an operation-count model from a published
   chip): energy per inference and the ratios to the three ANN baselines, priced alike
   (firmware_sim/energy.py: the same rules on both sides, the sensor and event front-ends paid by both);
   each config's kind and what every figure covers are printed and saved.

    EDGE_TAAF_DATA=../shared/data python -m bench.sim [--checkpoint outputs/train/<run>/checkpoint.pt]

The last line printed is one JSON object: sim_exact, counts_event_driven_equal_dense,
energy_ratio_ann_int8_vs_snn (the first --hardware config's, named by energy_ratio_hardware, with
energy_hardware_kind and energy_covers), per hardware config energy_ratio_ann_int8_vs_snn_<hw>, energy_ratio_single_pass_ann_vs_snn_<hw>,
energy_ratio_single_pass_zero_skip_vs_snn_<hw>, sim_acc, max_layer_spike_rate, speeds and details.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.support.models import load_model
from bench.support.timing import interleaved_times, ratio_stats, repeats_for
from bench.support.xylo_kernel import run_ff, run_ff_xylo
from edge_taaf import CONFIG_DIR
from firmware_sim.dataflow import COMPUTE_OPERATIONS as COMPUTE
from firmware_sim.dataflow import MEMORY_OPERATIONS as MEMORY
from firmware_sim.hardware import load_hardware
from firmware_sim.evaluate import evaluate
from firmware_sim.loader import load_program
from firmware_sim.program_io import batch_axis
from firmware_sim.run import Runner, get_threads, set_threads
from quant.export import export_onnx
from quant.ort_runner import OrtModel, compare
from quant.qmodel import run_integer
from sensors.datasets import build_dataset

CONFIGS = Path(CONFIG_DIR)
XYLO_UNIT_S = 0.2  # each timed unit of the xylosim pair lasts about this long (bench/support/timing.py)


def bench_exact(model, onnx_path: Path, test) -> tuple[int, list[str]]:
    quant_out = run_integer(model, test.vision, test.audio)
    ort_out = OrtModel(onnx_path).run(test.vision, test.audio)
    runner = Runner(load_program(onnx_path))
    parts = [runner({"vision": np.swapaxes(test.vision[i:i + 64], 0, 1), "audio": np.swapaxes(test.audio[i:i + 64], 0, 1)}).outputs()
             for i in range(0, len(test.labels), 64)]
    sim_out = {k: np.concatenate([p[k] for p in parts], axis=batch_axis(k)) for k in ort_out}
    diff = sorted(set(compare(quant_out, ort_out)) | set(compare(sim_out, ort_out)))
    return int(not diff), diff


def bench_vs_torch(model, onnx_path: Path, test, n: int) -> dict:
    """Batch 1, one thread each, interleaved sample by sample: the simulator (a prepared Runner) against
    torch integer mode at its best case (``model.frozen()``: integer weights computed once, no per-call
    checks) and, beside it, the per-call integer mode (weights re-quantised and checked on every call,
    as export verification uses it). Ratios are the median of per-sample ratios, with the quartiles."""
    runner = Runner(load_program(onnx_path))
    v = torch.as_tensor(test.vision[:n], dtype=torch.float32).transpose(0, 1)
    a = torch.as_tensor(test.audio[:n], dtype=torch.float32).transpose(0, 1)
    vn, an = np.swapaxes(test.vision[:n], 0, 1), np.swapaxes(test.audio[:n], 0, 1)
    threads, sim_threads = torch.get_num_threads(), set_threads(1)   # one thread each
    torch.set_num_threads(1)
    times = {"sim": [], "torch_frozen": [], "torch_per_call": []}
    try:
        with model.frozen():
            calls = {"sim": lambda i: runner({"vision": vn[:, i:i + 1], "audio": an[:, i:i + 1]}),
                     "torch_frozen": lambda i: model.integer_forward(v[:, i:i + 1], a[:, i:i + 1], checks=False)}
            calls["torch_per_call"] = lambda i: model.integer_forward(v[:, i:i + 1], a[:, i:i + 1])
            for fn in calls.values():
                fn(0)                                              # warm-up: compile, allocate
            for i in range(n):
                for name, fn in calls.items():
                    start = time.perf_counter()
                    fn(i)
                    times[name].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
        set_threads(sim_threads)
    sim = np.array(times["sim"])
    out = {"samples": n, "threads": 1, "sim_ms_per_sample": 1e3 * float(np.median(sim))}
    for name in ("torch_frozen", "torch_per_call"):
        ratio = np.array(times[name]) / sim
        out[f"{name}_ms_per_sample"] = 1e3 * float(np.median(times[name]))
        out[f"speedup_vs_{name}"] = float(np.median(ratio))
        out[f"speedup_vs_{name}_quartiles"] = [float(q) for q in np.percentile(ratio, [25, 75])]
    return out


TORCH_BATCHES = (1, 8, 32, 64)  # batch sizes tried for torch integer mode and the simulator (bench_best_batch)


def per_sample_seconds(fn, batch: int, probes: int = 3) -> float:
    """Fastest of ``probes`` calls of ``fn`` (one batch of ``batch`` samples), in seconds per sample."""
    best = float("inf")
    for _ in range(probes):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / batch


def bench_best_batch(model, onnx_path: Path, test, rounds: int = 10) -> dict:
    """Throughput, each side at its best batch size: torch integer mode at its best case (``model.frozen()``, no
    per-call checks) and the simulator, each tried at every TORCH_BATCHES size (after a warm-up call, fastest of 3
    calls, ms per sample); then the two best run interleaved (bench/support/timing.py: units of ~XYLO_UNIT_S, rounds
    in rotated order, one thread each) and the speedup is the median of per-round ratios of time per sample."""
    runner = Runner(load_program(onnx_path))
    n = min(max(TORCH_BATCHES), len(test.labels))
    v = torch.as_tensor(test.vision[:n], dtype=torch.float32).transpose(0, 1)
    a = torch.as_tensor(test.audio[:n], dtype=torch.float32).transpose(0, 1)
    vn, an = np.swapaxes(test.vision[:n], 0, 1), np.swapaxes(test.audio[:n], 0, 1)
    batches = [b for b in TORCH_BATCHES if b <= n]
    threads, sim_threads = torch.get_num_threads(), set_threads(1)   # one thread each
    torch.set_num_threads(1)
    try:
        with model.frozen():
            def calls(b):
                return {"sim": lambda: runner({"vision": vn[:, :b], "audio": an[:, :b]}),
                        "torch_frozen": lambda: model.integer_forward(v[:, :b], a[:, :b], checks=False)}
            ms = {name: {} for name in ("sim", "torch_frozen")}
            for b in batches:
                for name, fn in calls(b).items():
                    fn()                                                  # warm-up: compile, allocate
                    ms[name][b] = 1e3 * per_sample_seconds(fn, b)
            best = {name: min(by_batch, key=by_batch.get) for name, by_batch in ms.items()}
            fns = {name: calls(best[name])[name] for name in best}
            times = interleaved_times(fns, rounds, warmup=1, repeats=repeats_for(fns, XYLO_UNIT_S))
    finally:
        torch.set_num_threads(threads)
        set_threads(sim_threads)
    per_sample = {name: [t / best[name] for t in times[name]] for name in times}
    speedup = ratio_stats(per_sample["torch_frozen"], per_sample["sim"])
    return {"batches_tried": batches, "ms_per_sample_by_batch": ms, "best_batch": best,
            "sim_ms_per_sample": 1e3 * float(np.median(per_sample["sim"])),
            "torch_frozen_ms_per_sample": 1e3 * float(np.median(per_sample["torch_frozen"])),
            "speedup_vs_torch_frozen": speedup["median"], "speedup_vs_torch_frozen_spread": speedup, "rounds": rounds,
            "threads": 1}


def xylosim_layer(v2, w_in, w_out, th_h, th_o, dash_mem, dash_syn):
    n_h, n_o = w_in.shape[0], w_out.shape[0]
    syn_in = [[v2.XyloSynapse(int(j), 0, int(w_in[j, i])) for j in np.flatnonzero(w_in[:, i])] for i in range(w_in.shape[1])]
    syn_out = [[v2.XyloSynapse(int(o), 0, int(w_out[o, j])) for o in np.flatnonzero(w_out[:, j])] for j in range(n_h)]
    layer = v2.XyloLayer(syn_in, [[] for _ in range(n_h)], syn_out, [[] for _ in range(n_h)], [th_h] * n_h, [th_o] * n_o, False,
                         [0] * n_h, [0] * n_o, 0, 0, 0, [dash_mem] * n_h, [dash_mem] * n_o, [[dash_syn]] * n_h, [[dash_syn]] * n_o, "ff")
    return layer, (syn_in, syn_out)   # the synapse lists must outlive the layer (xylosim keeps raw pointers)


def xylosim_run(layer, x: np.ndarray) -> list[np.ndarray]:
    """Every sample of x (T, B, N_in) uint8 from rest: ``reset_all`` then ``evolve`` on the sample's (T, N_in) numpy
    array (numpy input runs about 2x faster than the same counts as Python lists). Returns each sample's readout."""
    outs = []
    for b in range(x.shape[1]):
        layer.reset_all()
        outs.append(layer.evolve(x[:, b]))
    return outs


def bench_vs_xylosim(n_samples: int = 40, steps: int = 100, rate: float = 0.1, seed: int = 0, rounds: int = 10) -> dict:
    """xylosim against bench/support/xylo_kernel.py, checked spike for spike, then timed like every other pair
    (bench/support/timing.py): one thread, warm-up calls, units of ~XYLO_UNIT_S, rounds interleaved in rotated
    order; the speedup is the median of the per-round ratios."""
    import xylosim.v2 as v2
    rng = np.random.default_rng(seed)
    w_in = rng.integers(-127, 128, (256, 64)).astype(np.int8)
    w_out = rng.integers(-127, 128, (10, 256)).astype(np.int8)
    th_h, th_o, dash_mem, dash_syn = 2000, 2000, 3, 2
    x = np.ascontiguousarray((rng.random((steps, n_samples, 64)) < rate).astype(np.uint8))
    layer, synapses = xylosim_layer(v2, w_in, w_out, th_h, th_o, dash_mem, dash_syn)
    ref_out, ref_hidden = [], []
    for b in range(n_samples):
        ref_out.append(np.array(xylosim_run(layer, x[:, b:b + 1])[0]))
        ref_hidden.append(np.array(layer.rec_recurrent_spikes))
    # the Xylo kernels are single-threaded Numba (no threading layer): nothing to pin
    hidden, out, events = run_ff_xylo(w_in, w_out, th_h, th_o, dash_mem, dash_syn, x)
    _, syn_edge = run_ff([w_in, w_out], [th_h, th_o], dash_mem, x)
    fns = {"xylosim": lambda: xylosim_run(layer, x),
           "ours_xylo_model": lambda: run_ff_xylo(w_in, w_out, th_h, th_o, dash_mem, dash_syn, x),
           "ours_accelerator_neuron": lambda: run_ff([w_in, w_out], [th_h, th_o], dash_mem, x)}
    reps = repeats_for(fns, XYLO_UNIT_S)                       # also the warm-up calls
    times = interleaved_times(fns, rounds, warmup=1, repeats=reps)
    same = bool(np.array_equal(np.stack(ref_hidden, 1), hidden) and np.array_equal(np.stack(ref_out, 1), out))
    speedup = ratio_stats(times["xylosim"], times["ours_xylo_model"])
    sec = {k: float(np.median(v)) for k, v in times.items()}
    del layer, synapses
    return {"network": "64-256-10", "T": steps, "samples": n_samples, "input_rate": rate, "same_spikes": same,
            "synaptic_events": events, "xylosim_Mev_per_s": events / sec["xylosim"] / 1e6,
            "ours_xylo_model_Mev_per_s": events / sec["ours_xylo_model"] / 1e6,
            "speedup_per_event": speedup["median"], "speedup_per_event_spread": speedup,
            "ours_accelerator_neuron_Mev_per_s": sum(syn_edge) / sec["ours_accelerator_neuron"] / 1e6,
            "xylosim_input": "numpy uint8 (T, N_in) per sample, reset_all before each", "calls_per_unit": reps,
            "rounds": rounds, "threads": 1}


def energy_by_layer(energy: dict) -> dict:
    """uJ per inference of each ANN layer and of the SNN units doing its work (the readout row sums
    the warps, readout, score MLP and attention; the front-end row, the sensor filterbank and the event
    front-ends, is paid alike by the SNN and every ANN baseline)."""
    shared = energy["shared"]["energy_uj"]
    out = {"frontend": {"snn": shared, "ann_int8": shared, "ann_single_pass": shared, "ann_single_pass_zero_skip": shared}}
    for name, ann in energy["ann_int8_T"]["by_layer"].items():
        parts = [u for n, u in energy["by_unit"].items()
                 if n == name or (name == "readout" and u["kind"] in ("warp", "readout", "score", "attention"))]
        out[name] = {"snn": sum(u["energy_uj"] for u in parts), "ann_int8": ann["energy_uj"],
                     "ann_single_pass": energy["ann_single_pass"]["by_layer"][name]["energy_uj"],
                     "ann_single_pass_zero_skip": energy["ann_single_pass_zero_skip"]["by_layer"][name]["energy_uj"]}
    return out


def single_pass_gap(energy: dict) -> dict:
    """Where the SNN spends more than the single-pass int8 ANN (b): uJ per inference by term (compute, memory,
    static) of SNN minus ANN, the term that dominates the gap, and the SNN's largest operation inside it."""
    ann = energy["ann_single_pass"]
    ops = energy["energy_uj_by_operation"]
    snn = {"compute": sum(ops[k] for k in COMPUTE), "memory": sum(ops[k] for k in MEMORY), "static": ops["static"]}
    gap = {k: snn[k] - ann[f"{k}_uj"] for k in snn}
    dominant = max(gap, key=gap.get)
    inside = COMPUTE if dominant == "compute" else MEMORY if dominant == "memory" else ("static",)
    return {"snn_uj": snn, "ann_uj": {k: ann[f"{k}_uj"] for k in snn}, "snn_minus_ann_uj": gap, "dominant": dominant,
            "largest_snn_operation": max(inside, key=lambda k: ops[k])}


COMPETITOR_MEASURED = {"int_exact": "ann_competitor_int_exact", "selected_on": "ann_competitor_selected_on",
                       "accuracy": "ann_competitor_acc", "val_acc": "ann_competitor_val_acc", "chosen": "ann_competitor_size"}


def competitor_measured(path, result: dict) -> dict:
    """How the competitor was measured, from its ann_result.json: ann_competitor_int_exact (1: its ONNX file in
    onnxruntime equals the integer reference on every test sample), ann_competitor_selected_on ("val": its size
    chosen on validation), ann_competitor_acc (the test accuracy of that integer run), ann_competitor_val_acc,
    ann_competitor_size. SystemExit naming the file and the key when an older result lacks one."""
    missing = [key for key in COMPETITOR_MEASURED if key not in result]
    if missing:
        raise SystemExit(f"bench/sim.py: --competitor {path}: no {missing[0]!r} (an edge-taaf-ann result from before "
                         "sizes were chosen on val and measured by an integer run; rerun edge-taaf-ann)")
    out = {name: result[key] for key, name in COMPETITOR_MEASURED.items()}
    print(f"competitor {path}: size {out['ann_competitor_size']} chosen on {out['ann_competitor_selected_on']} "
          f"(val {out['ann_competitor_val_acc']:.4f}), test accuracy of its integer run {out['ann_competitor_acc']:.4f}, "
          f"onnxruntime == integer reference: {out['ann_competitor_int_exact']}", flush=True)
    return out


def competitor_ratios(path: str | None, reports: dict) -> dict:
    """Energy of the trained single-pass int8 ANN (edge-taaf-ann's ann_result.json) over the SNN's, per hardware
    config and pricing (dense, zero-skip), with both accuracies: the competitor a user would pick instead. The
    headline keys compare the networks alone (the SNN's core energy, without the rows both sides pay); the
    ``*_with_frontend`` keys add the SNN report's sensor front-end rows to the competitor, which the same sensors
    feed, and compare with the SNN's total."""
    if not path:
        return {}
    result = json.loads(Path(path).read_text())
    out = {"competitor_acc": result["accuracy"], "competitor": str(path), **competitor_measured(path, result)}
    for hw, report in reports.items():
        e = result["energy_uj"].get(hw)
        if e is not None:
            sensors = sum(v for k, v in report["energy"]["shared"]["by_row"].items() if k.startswith("sensor."))
            core, total = report["energy"]["core_energy_uj"], report["energy"]["energy_uj"]
            for key, pricing in (("trained_ann", "dense"), ("trained_ann_zero_skip", "zero_skip")):
                out[f"energy_ratio_{key}_vs_snn_{hw}"] = e[pricing] / core
                out[f"energy_ratio_{key}_vs_snn_{hw}_with_frontend"] = (e[pricing] + sensors) / total
    return out


def counts_equal_reference(program, test) -> int:
    """1 when the event-driven kernels and the kernels that step every neuron agree on every output and
    every counter over the whole test split, else 0."""
    inputs = {k: np.swapaxes(x, 0, 1) for k, x in test.inputs().items() if k in program.inputs}
    ours, ref = Runner(program)(inputs), Runner(program, reference=True)(inputs)
    same_out = all(np.array_equal(ours.outputs()[k], v) for k, v in ref.outputs().items())
    same_counts = all(ours.counts.units[k].counts == u.counts for k, u in ref.counts.units.items())
    return int(same_out and same_counts)


def max_layer_spike_rate(energy_counts: dict, program) -> float:
    """The largest per-layer firing rate: spikes per neuron per step, per inference."""
    units = energy_counts["units"]
    return max(units[layer.name]["spikes_out"] / (layer.n_out * program.T) for layer in program.layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=os.environ.get("EDGE_TAAF_CHECKPOINT"))
    parser.add_argument("--samples", type=int, default=50, help="test samples for the batch-1 timing against torch")
    parser.add_argument("--hardware", nargs="+", default=["horowitz45nm", "sne22nm"])
    parser.add_argument("--competitor", default=None, help="ann_result.json of edge-taaf-ann (the trained single-pass ANN: size chosen on "
                        "val, accuracy from its integer run in onnxruntime)")
    args = parser.parse_args()
    model, data_cfg, label = load_model(args.checkpoint)
    test = build_dataset(data_cfg, "test")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(model, onnx_path)
        exact, diff = bench_exact(model, onnx_path, test)
        print(f"exactness over {len(test.labels)} test samples: {'equal' if exact else f'DIFFER on {diff}'}", flush=True)
        torch_cmp = bench_vs_torch(model, onnx_path, test, min(args.samples, len(test.labels)))
        print(f"batch 1: torch integer mode {torch_cmp['torch_frozen_ms_per_sample']:.2f} ms (weights frozen), "
              f"{torch_cmp['torch_per_call_ms_per_sample']:.2f} ms (per call); simulator "
              f"{torch_cmp['sim_ms_per_sample']:.3f} ms per sample ({torch_cmp['speedup_vs_torch_frozen']:.1f}x, "
              f"{torch_cmp['speedup_vs_torch_per_call']:.1f}x)", flush=True)
        best_batch = bench_best_batch(model, onnx_path, test)
        print(f"best batch: torch integer mode {best_batch['torch_frozen_ms_per_sample']:.2f} ms per sample at batch "
              f"{best_batch['best_batch']['torch_frozen']}, simulator {best_batch['sim_ms_per_sample']:.3f} ms at batch "
              f"{best_batch['best_batch']['sim']} ({best_batch['speedup_vs_torch_frozen']:.1f}x)", flush=True)
        program = load_program(onnx_path)
        same_counts = counts_equal_reference(program, test)
        reports = {hw: evaluate(program, test.inputs(), test.labels, load_hardware(hw, CONFIGS / "hardware"), 64)
                   for hw in args.hardware}
    xylo = bench_vs_xylosim()
    print(f"xylosim {xylo['xylosim_Mev_per_s']:.1f} M events/s, bench.support.xylo_kernel Xylo-neuron kernel (1 thread) "
          f"{xylo['ours_xylo_model_Mev_per_s']:.1f} M events/s, same spikes: {xylo['same_spikes']}", flush=True)
    first = reports[args.hardware[0]]
    by_hw = {}
    for hw, report in reports.items():
        e = report["energy"]
        by_hw[hw] = {"energy_uj_per_inference": e["energy_uj"], "latency_us_per_inference": e["latency_us"],
                     "energy_ratio_ann_int8_vs_snn": e["ratios"]["energy_ann_int8_vs_snn"],
                     "energy_ratio_single_pass_ann_vs_snn": e["ratios"]["energy_single_pass_ann_vs_snn"],
                     "energy_ratio_single_pass_zero_skip_vs_snn": e["ratios"]["energy_single_pass_zero_skip_vs_snn"],
                     "compute_ratio_ann_int8_vs_snn": e["ratios"]["compute_ann_int8_vs_snn"],
                     "energy_ratio_bound_if_later_layers_free": e["ratios"]["bound_ann_int8_vs_snn_if_later_layers_free"],
                     "ann_uj": {k: e[k]["energy_uj"] for k in ("ann_int8_T", "ann_single_pass", "ann_single_pass_zero_skip")},
                     "energy_uj_by_operation": e["energy_uj_by_operation"], "dataflows": e["dataflows"],
                     "energy_uj_by_layer": energy_by_layer(e), "single_pass_gap": single_pass_gap(e),
                     "hardware_kind": e["hardware_kind"], "hardware_note": e["hardware_note"],
                     "covers": e["covers"], "not_covered": e["not_covered"], "shared_uj": e["shared"]["energy_uj"],
                     "ann_covers": {k: e[k]["covers"] for k in ("ann_int8_T", "ann_single_pass", "ann_single_pass_zero_skip")},
                     "core_energy_uj_per_inference": e["core_energy_uj"],
                     "ratios_with_shared_frontend": e["ratios_with_frontend"]}
        print(f"{hw} ({e['hardware_kind']}): {e['energy_uj']:.4g} uJ/inference, of which front-ends both sides pay "
              f"{e['shared']['energy_uj']:.4g} uJ; ANN / SNN: int8 over T {by_hw[hw]['energy_ratio_ann_int8_vs_snn']:.2f}x, "
              f"single pass {by_hw[hw]['energy_ratio_single_pass_ann_vs_snn']:.2f}x, single pass skipping zeros "
              f"{by_hw[hw]['energy_ratio_single_pass_zero_skip_vs_snn']:.2f}x", flush=True)
    flat = {f"{k}_{hw}": v[k] for hw, v in by_hw.items() for k in
            ("energy_ratio_ann_int8_vs_snn", "energy_ratio_single_pass_ann_vs_snn", "energy_ratio_single_pass_zero_skip_vs_snn",
             "energy_uj_per_inference")}
    head = by_hw[args.hardware[0]]
    print(json.dumps({
        "sim_exact": exact, "counts_event_driven_equal_dense": same_counts,
        "energy_ratio_ann_int8_vs_snn": head["energy_ratio_ann_int8_vs_snn"], "energy_ratio_hardware": args.hardware[0],
        "energy_hardware_kind": head["hardware_kind"], "energy_covers": head["covers"], **flat,
        "sim_acc": first["accuracy"], "max_layer_spike_rate": max_layer_spike_rate(first["counts_per_inference"], program),
        **{f"single_pass_gap_dominant_{hw}": v["single_pass_gap"]["dominant"] + ": " + v["single_pass_gap"]["largest_snn_operation"]
           for hw, v in by_hw.items()},
        **competitor_ratios(args.competitor, reports),
        "sim_speedup_vs_torch_int": best_batch["speedup_vs_torch_frozen"],
        "sim_speedup_vs_torch_int_best_batch": best_batch["best_batch"],
        "sim_speedup_vs_torch_int_batch1": torch_cmp["speedup_vs_torch_frozen"],
        "sim_speedup_vs_torch_int_per_call": torch_cmp["speedup_vs_torch_per_call"],
        "xylo_neuron_kernel_speedup_vs_xylosim": xylo["speedup_per_event"] if xylo["same_spikes"] else 0.0,
        "sim_samples_per_s": first["sim_samples_per_s"],
        "model": label, "data": str(data_cfg.name), "test_samples": int(len(test.labels)), "differing_outputs": diff,
        "by_hardware": by_hw, "torch": torch_cmp, "torch_best_batch": best_batch, "xylosim": xylo, "sim_threads": get_threads(),
    }))


if __name__ == "__main__":
    main()
