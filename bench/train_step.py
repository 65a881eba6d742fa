"""Training-step benchmark: our TwoModalitySNN against the same network written with snnTorch's Leaky.

Both networks have the default architecture (configs/model/snn.yaml, synth data: T=16) and the same
weights (ours is scaled to a 10 % firing rate by edge_taaf.firing_rate_init, then copied into the snnTorch ones).
The snnTorch versions are the idiomatic per-time-step loop, ``cur = layer(x); spk, mem = lif(cur, mem)``
for every layer; the time-warp, TAAF fusion, unimodal heads, loss (TAAF balanced) and Adam are shared
code, so only the spiking encoders differ. Two snnTorch neurons are timed:

- headline peer, ``MatchedLeaky``: the neuron we train, forward AND backward. It is
  ``snntorch.Leaky(beta=1 - 2^-leak_shift, threshold=1, reset_mechanism="subtract", reset_delay=False,
  spike_grad=surrogate.atan(slope))`` with two changes, both documented in the class:
  (1) no carry-over second subtraction (stock Leaky subtracts theta again before the next firing test
  when the post-reset membrane still exceeds theta, u > 2 theta; ours does not), and (2) the reset is
  detached from the graph, ``mem - spk.detach() * theta``, as edge_taaf/neurons.py's hand-written BPTT
  does (dv_t/du_t = 1 for subtract reset; no gradient through s_t into v_t). snnTorch 1.0.0 has no
  option for (2): its only detached reset (``mem_reset``) is the ``reset_delay=True`` path, which
  subtracts theta one step late and undecayed, a different forward. The forward check asserts every
  layer's spikes equal ours EXACTLY and the logits to 1e-5; the backward check asserts every
  parameter's gradient equals ours to float32 round-off (relative 1e-4 of the largest entry).
- unfavourable-to-us column, stock ``Leaky`` (same options, carry-over and all, gradient through the
  reset): ~1 % of the first layer's spikes differ from ours and its backward does more work.

Peers at their best: each snnTorch network also runs under ``torch.compile`` (--peer-compile auto, the
default): the compiled copy's forward is checked against ours (spikes, logits), then eager and compiled
steps are timed interleaved for --mode-rounds rounds and the faster is the peer timed below; the JSON says
which (``snntorch_matched_mode``, ``snntorch_mode``) with both times and the compile seconds. --peer-compile
on / off forces one mode.

Timing (bench/support/timing.py): forward + backward + Adam step on a batch of 64 random spike inputs (vision
(T, B, 2, 34, 34) at ~2 % density, audio (T, B, 64) counts 0..8). The three models run interleaved,
one step each per round, in an order rotated every round, for ``--rounds`` rounds after ``--warmup``;
each ratio is ours / peer per round, reported as the median of the per-round ratios with its
quartiles, min and max. Same thread count for all (torch intra-op and BLAS/OpenMP pools, --threads;
our LIF kernels are serial Numba, so at --threads > 1 only the torch ops of both sides use the extra
threads). Peak RSS is one real training epoch of ours (edge_taaf.train.train, synth data, default
config) in a fresh subprocess (ru_maxrss).

Run from the repo root:  EDGE_TAAF_DATA=../shared/data python -m bench.train_step
The last line printed is one JSON object.
"""
import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import snntorch
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from snntorch import surrogate
from torch import nn

from edge_taaf import CONFIG_DIR
from edge_taaf.model_config import conv_out
from edge_taaf.firing_rate_init import scale_to_firing_rate
from edge_taaf.losses import build_loss
from edge_taaf.model import ModelOut, TwoModalitySNN
from bench.support.timing import interleaved_times, median_ms, pin_threads, ratio_stats

ROOT = Path(__file__).resolve().parents[1]   # the repository: the one-epoch subprocess runs there


def default_config(overrides=()):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


class MatchedLeaky(snntorch.Leaky):
    """snnTorch's Leaky doing exactly our neuron, forward and backward (see the module docstring).

    Only for ``reset_mechanism="subtract", reset_delay=False`` with inhibition, state_quant and
    init_hidden off (what SnnTorchTwoModality builds). Two changes to stock Leaky:
    ``mem_reset`` returns zeros (no carry-over second subtraction), and ``forward`` is stock
    ``Leaky.forward``'s code path for these options, line for line, with the spike detached in the
    reset term: ``do_reset = spk.detach() / graded_spikes_factor - reset``. Per step it therefore
    runs the same snnTorch ops as stock Leaky (reset, state function, fire, reset subtraction).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.reset_mechanism != "subtract" or self.reset_delay or self.inhibition or self.state_quant \
                or self.init_hidden:
            raise ValueError("MatchedLeaky supports reset_mechanism='subtract', reset_delay=False only")

    def mem_reset(self, mem):
        return torch.zeros_like(mem)

    def forward(self, input_, mem=None):
        # snntorch 1.0.0 Leaky.forward, verbatim but for the one marked line
        if not mem == None:  # noqa: E711
            self.mem = mem
        if self.init_hidden and not mem == None:  # noqa: E711
            raise TypeError("`mem` should not be passed as an argument while `init_hidden=True`")
        if not self.mem.shape == input_.shape:
            self.mem = torch.zeros_like(input_, device=self.mem.device)
        self.reset = self.mem_reset(self.mem)
        self.mem = self.state_function(input_)
        if self.state_quant:
            self.mem = self.state_quant(self.mem)
        if self.inhibition:
            spk = self.fire_inhibition(self.mem.size(0), self.mem)
        else:
            spk = self.fire(self.mem)
        if not self.reset_delay:
            do_reset = spk.detach() / self.graded_spikes_factor - self.reset  # the change: stock has spk
            if self.reset_mechanism_val == 0:  # reset by subtraction
                self.mem = self.mem - do_reset * self.threshold
            elif self.reset_mechanism_val == 1:  # reset to zero
                self.mem = self.mem - do_reset * self.mem
        if self.output:
            return spk, self.mem
        elif self.init_hidden:
            return spk
        else:
            return spk, self.mem


class SnnTorchTwoModality(nn.Module):
    """Our architecture with snnTorch Leaky neurons and a per-step loop; shares warp/fusion/heads with ``ours``."""

    def __init__(self, ours: TwoModalitySNN, mcfg: dict, leaky=snntorch.Leaky):
        super().__init__()
        n = mcfg["neuron"]
        assert n["reset"] == "subtract" and n["surrogate"] == "atan"
        beta = 1.0 - 2.0 ** (-n["leak_shift"])
        lif = lambda: leaky(beta=beta, threshold=n["theta"], spike_grad=surrogate.atan(alpha=n["slope"]),  # noqa: E731
                                     reset_mechanism="subtract", reset_delay=False)
        vc, ac = mcfg["vision"], mcfg["audio"]
        c, h, w = vc["in_shape"]
        self.convs, self.conv_lifs = nn.ModuleList(), nn.ModuleList()
        for c_out, k, s in zip(vc["channels"], vc["kernels"], vc["strides"]):
            self.convs.append(nn.Conv2d(c, c_out, k, stride=s, padding=k // 2, bias=False))
            self.conv_lifs.append(lif())
            c, h, w = c_out, conv_out(h, k, s), conv_out(w, k, s)
        self.vision_fc, self.vision_lif = nn.Linear(c * h * w, vc["features"], bias=False), lif()
        sizes = [ac["in_channels"], *ac["hidden"], ac["features"]]
        self.audio_fcs = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))
        self.audio_lifs = nn.ModuleList(lif() for _ in self.audio_fcs)
        for name in ("warp_audio", "warp_vision", "fusion", "head_audio", "head_vision"):
            setattr(self, name, copy.deepcopy(getattr(ours, name)))
        with torch.no_grad():
            for mine, theirs in zip(self.convs, ours.vision.convs):
                mine.weight.copy_(theirs.conv.weight)
            self.vision_fc.weight.copy_(ours.vision.dense.fc.weight)
            for mine, theirs in zip(self.audio_fcs, ours.audio.layers):
                mine.weight.copy_(theirs.fc.weight)

    def forward(self, vision: torch.Tensor, audio: torch.Tensor, record: list | None = None) -> ModelOut:
        vis_lifs = [*self.conv_lifs, self.vision_lif]
        vis_mem = [lif.reset_mem() for lif in vis_lifs]
        aud_mem = [lif.reset_mem() for lif in self.audio_lifs]
        vis_rec = [[] for _ in vis_lifs]
        aud_rec = [[] for _ in self.audio_lifs]
        for t in range(vision.shape[0]):
            x = vision[t]
            for i, (conv, lif) in enumerate(zip(self.convs, self.conv_lifs)):
                x, vis_mem[i] = lif(conv(x), vis_mem[i])
                vis_rec[i].append(x)
            x, vis_mem[-1] = self.vision_lif(self.vision_fc(x.flatten(1)), vis_mem[-1])
            vis_rec[-1].append(x)
            x = audio[t]
            for i, (fc, lif) in enumerate(zip(self.audio_fcs, self.audio_lifs)):
                x, aud_mem[i] = lif(fc(x), aud_mem[i])
                aud_rec[i].append(x)
        vis_spk = [torch.stack(r) for r in vis_rec]
        aud_spk = [torch.stack(r) for r in aud_rec]
        if record is not None:
            record.extend(vis_spk + aud_spk)
        v, a = self.warp_vision(vis_spk[-1]), self.warp_audio(aud_spk[-1])
        fused = self.fusion(a, v)
        return ModelOut(fused, self.head_audio(a.mean(0)), self.head_vision(v.mean(0)), a, v)


def random_batch(t: int, b: int, seed: int = 0):
    """vision (T, B, 2, 34, 34) binary at ~2 % density; audio (T, B, 64) spike counts 0..8 (Poisson(0.3), clipped)."""
    g = torch.Generator().manual_seed(seed)
    vision = (torch.rand(t, b, 2, 34, 34, generator=g) < 0.02).float()
    audio = torch.poisson(torch.full((t, b, 64), 0.3), generator=g).clamp_(max=8)
    return vision, audio, torch.randint(0, 10, (b,), generator=g)


def forward_spikes(model, vision, audio):
    with torch.no_grad():
        record = []
        out = model(vision, audio, record)
    return out, record


def check_same_forward(ours, matched, stock, vision, audio) -> dict:
    """Assert matched-snnTorch == ours (spikes exactly, logits to 1e-5); report how far stock Leaky is."""
    out_o, rec_o = forward_spikes(ours, vision, audio)
    out_m, rec_m = forward_spikes(matched, vision, audio)
    _, rec_s = forward_spikes(stock, vision, audio)
    assert len(rec_o) == len(rec_m) == len(rec_s)
    for i, (a, b) in enumerate(zip(rec_o, rec_m)):
        assert torch.equal(a, b), f"layer {i}: {int((a != b).sum())} of {a.numel()} spikes differ"
    torch.testing.assert_close(out_m.logits, out_o.logits, rtol=1e-5, atol=1e-5)
    return {"matched_spikes": "exact", "matched_logits_max_abs_diff": float((out_m.logits - out_o.logits).abs().max()),
            "layers": len(rec_o), "firing_rates": [round(float(r.mean()), 4) for r in rec_o],
            "stock_leaky_spikes_differing": [round(float((a != b).float().mean()), 5) for a, b in zip(rec_o, rec_s)]}


def encoder_weight_pairs(ours: TwoModalitySNN, theirs: SnnTorchTwoModality) -> list[tuple[str, nn.Parameter, nn.Parameter]]:
    """(name, our parameter, their parameter) for every spiking-encoder weight."""
    convs = zip(ours.vision.convs, theirs.convs)
    pairs = [(f"vision.conv{i}", a.conv.weight, b.weight) for i, (a, b) in enumerate(convs)]
    pairs.append(("vision.dense", ours.vision.dense.fc.weight, theirs.vision_fc.weight))
    dense = zip(ours.audio.layers, theirs.audio_fcs)
    pairs += [(f"audio.fc{i}", a.fc.weight, b.weight) for i, (a, b) in enumerate(dense)]
    return pairs


def gradient_differences(ours, theirs, objective, vision, audio, y) -> dict[str, float]:
    """Per encoder weight: max |grad ours - grad theirs| / max |grad ours| for one loss.backward()."""
    for model in (ours, theirs):
        model.detach_heads = False
        model.zero_grad(set_to_none=True)
        objective(model(vision, audio), y)[0].backward()
    diffs = {name: float((a.grad - b.grad).abs().max() / a.grad.abs().max())
             for name, a, b in encoder_weight_pairs(ours, theirs)}
    for model in (ours, theirs):
        model.zero_grad(set_to_none=True)
    return diffs


def check_same_backward(ours, matched, stock, objective, vision, audio, y, rtol: float = 1e-4) -> dict:
    """Assert matched-snnTorch's encoder gradients == ours to float32 round-off; report stock Leaky's."""
    matched_diff = gradient_differences(ours, matched, objective, vision, audio, y)
    bad = {k: v for k, v in matched_diff.items() if not v <= rtol}
    assert not bad, f"matched snnTorch gradients differ from ours (relative to the largest entry): {bad}"
    return {"matched_grad_max_rel_diff": max(matched_diff.values()), "grad_rtol": rtol,
            "stock_leaky_grad_max_rel_diff": gradient_differences(ours, stock, objective, vision, audio, y)}


def make_step(model, objective, vision, audio, y):
    """One training step (forward, loss, backward, Adam) of ``model`` on the fixed batch."""
    model.detach_heads = False
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = objective(model(vision, audio), y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def compile_model(model: nn.Module) -> nn.Module:
    """``torch.compile`` of ``model``; the recompile limit is raised so that each spiking layer (one shape each) keeps
    its own compiled graph instead of falling back to eager after the eighth."""
    import torch._dynamo.config as dynamo_config
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
    return torch.compile(model)


def best_peer_mode(name: str, peer: nn.Module, build, ours, objective, vision, audio, y, mode: str, rounds: int) -> dict:
    """The faster of ``peer`` eager and a compiled twin of it, ``build()`` (``mode`` "auto"), or the one ``mode`` names.

    Returns {"mode": "eager" | "torch.compile", "step": its training step, and, when compiled: "compile_s" (first
    step), "compiled_check" (max |logit difference| from the eager peer and from ours, same weights, before any
    step; stock Leaky differs from ours by design), "eager_ms" / "compiled_ms"
    (medians over ``rounds`` interleaved rounds) and "compiled_over_eager" (median per-round ratio)}.
    """
    eager_step = make_step(peer, objective, vision, audio, y)
    if mode == "off":
        return {"mode": "eager", "step": eager_step}
    compiled = compile_model(build())
    compiled.detach_heads = False
    start = time.perf_counter()
    logits = compiled(vision, audio).logits.detach()       # compiles the graph the training step runs
    check = {"logits_max_abs_diff_vs_eager": float((logits - forward_spikes(peer, vision, audio)[0].logits).abs().max()),
             "logits_max_abs_diff_vs_ours": float((logits - forward_spikes(ours, vision, audio)[0].logits).abs().max())}
    compiled_step = make_step(compiled, objective, vision, audio, y)
    compiled_step()                                          # and its backward
    result = {"compile_s": time.perf_counter() - start, "compiled_check": check}
    print(f"{name} under torch.compile: first step {result['compile_s']:.0f} s, check {json.dumps(check)}", flush=True)
    if mode == "on":
        return {**result, "mode": "torch.compile", "step": compiled_step}
    times = interleaved_times({"eager": eager_step, "compiled": compiled_step}, rounds, warmup=1)
    result.update({"eager_ms": median_ms(times["eager"]), "compiled_ms": median_ms(times["compiled"]),
                   "compiled_over_eager": ratio_stats(times["compiled"], times["eager"])["median"]})
    faster = result["compiled_over_eager"] < 1.0
    print(f"{name}: eager {result['eager_ms']:.1f} ms, compiled {result['compiled_ms']:.1f} ms per step", flush=True)
    return {**result, "mode": "torch.compile" if faster else "eager", "step": compiled_step if faster else eager_step}


def epoch_rss(timeout: int) -> dict:
    """Peak RSS (MiB) and wall time of one training epoch of ours, default config, in a fresh process."""
    code = (
        "import json, resource, sys, time; from pathlib import Path\n"
        "from bench.train_step import default_config\n"
        "from edge_taaf.apps.train import run_training\n"
        "cfg = default_config(['trainer.epochs=1', 'trainer.progress=false', 'trainer.log_epochs=false'])\n"
        "build = time.perf_counter(); run_training(cfg, Path(sys.argv[1]))\n"
        "print(json.dumps({'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'epoch_s': time.perf_counter() - build}))\n")
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([sys.executable, "-c", code, tmp], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
    if res.returncode != 0:
        raise RuntimeError(f"the training epoch failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=30, help="timed rounds (one step of each model per round)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op and BLAS/OpenMP threads, the same for all")
    ap.add_argument("--no-rss", action="store_true", help="skip the one-epoch peak-RSS run")
    ap.add_argument("--peer-compile", choices=("auto", "on", "off"), default="auto",
                    help="snnTorch peers under torch.compile: auto = time eager and compiled, keep the faster")
    ap.add_argument("--mode-rounds", type=int, default=8, help="interleaved rounds of eager vs compiled (auto)")
    args = ap.parse_args()
    pinned = pin_threads(args.threads)
    torch.manual_seed(0)

    cfg = default_config()
    mcfg = OmegaConf.to_container(cfg.model, resolve=True)
    ours = TwoModalitySNN(mcfg)
    vision, audio, y = random_batch(mcfg["T"], args.batch)
    scale_to_firing_rate(ours, vision, audio, target=0.1)
    stock, matched = SnnTorchTwoModality(ours, mcfg), SnnTorchTwoModality(ours, mcfg, MatchedLeaky)
    objective = build_loss(cfg.loss)
    forward = check_same_forward(ours, matched, stock, vision, audio)
    backward = check_same_backward(ours, matched, stock, objective, vision, audio, y)
    print("forward check:", json.dumps(forward), "\nbackward check:", json.dumps(backward), flush=True)

    peers = {"snntorch_matched": (matched, MatchedLeaky), "snntorch": (stock, snntorch.Leaky)}
    modes = {name: best_peer_mode(name, model, lambda leaky=leaky: SnnTorchTwoModality(ours, mcfg, leaky), ours, objective,
                                  vision, audio, y, args.peer_compile, args.mode_rounds)
             for name, (model, leaky) in peers.items()}
    steps = {"ours": make_step(ours, objective, vision, audio, y), **{k: m.pop("step") for k, m in modes.items()}}
    times = interleaved_times(steps, args.rounds, args.warmup)
    ms = {k: median_ms(v) for k, v in times.items()}
    vs_matched = ratio_stats(times["ours"], times["snntorch_matched"])
    vs_stock = ratio_stats(times["ours"], times["snntorch"])
    print(", ".join(f"{k} {v:.1f} ms/step" for k, v in ms.items()), flush=True)

    result = {
        "train_step_ratio_vs_snntorch_matched": vs_matched["median"],
        "train_step_ratio_vs_snntorch": vs_stock["median"],
        "train_step_ratio_vs_snntorch_matched_spread": vs_matched,
        "train_step_ratio_vs_snntorch_spread": vs_stock,
        "ratio_definition": "ours / peer time per training step (lower is better for ours); median of per-round "
                            "ratios, rounds interleaved with rotated order (bench/support/timing.py)",
        "peer_matched": "snntorch.Leaky subclass MatchedLeaky: our forward (spikes exact) and our backward "
                        "(reset detached; gradients equal to float32 round-off)",
        "peer_stock": "stock snntorch.Leaky(reset_delay=False): carry-over second subtraction, gradient through "
                      "the reset",
        "ours_ms_per_step": ms["ours"], "snntorch_matched_ms_per_step": ms["snntorch_matched"],
        "snntorch_ms_per_step": ms["snntorch"],
        "snntorch_matched_mode": modes["snntorch_matched"]["mode"], "snntorch_mode": modes["snntorch"]["mode"],
        "peer_modes": modes, "peer_compile_option": args.peer_compile,
        "batch": args.batch, "T": mcfg["T"], "rounds": args.rounds, "warmup_rounds": args.warmup,
        "threads": args.threads, "thread_pools": pinned, "lif_engine": "numba (serial) for ours",
        "weights": ours.weight_count(), "forward_check": forward, "backward_check": backward,
        "snntorch_version": snntorch.__version__, "torch_version": torch.__version__, "cpu": platform.processor() or platform.machine(),
    }
    if not args.no_rss:
        rss = epoch_rss(timeout=1800)
        result.update({"peak_rss_mb": rss["peak_rss_mb"], "epoch_s": rss["epoch_s"],
                       "epoch_note": "one epoch of edge_taaf.train on SYNTHETIC data (2000 train, 500 test), incl. data load"})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
