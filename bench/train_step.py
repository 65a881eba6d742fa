"""Training-step benchmark: our TwoModalitySNN against the same network written with snnTorch's Leaky.

Both networks have the default architecture (configs/model/snn.yaml, synth data: T=16) and the same
weights (ours is scaled to a 10 % firing rate by edge_taaf.init, then copied into the snnTorch one).
The snnTorch version is the idiomatic per-time-step loop, ``cur = layer(x); spk, mem = lif(cur, mem)``
for every layer, with ``snntorch.Leaky(beta=1 - 2^-leak_shift, threshold=1, reset_mechanism="subtract",
spike_grad=surrogate.atan(slope), reset_delay=False)``; the time-warp, TAAF fusion, unimodal heads,
loss (TAAF balanced) and Adam are shared code, so only the spiking encoders differ.

Neuron semantics: ``reset_delay=False`` is the Leaky mode closest to ours (u = beta v + I, spike if
u > theta, v = u - theta at once); the default ``reset_delay=True`` subtracts theta one step late and
undecayed. One difference remains: when the post-reset membrane still exceeds theta (u > 2 theta), stock
Leaky subtracts theta again before the next step's firing test (its ``mem_reset`` carry-over); ours does
not. With 10 %-rate weights that flips ~1 % of the first layer's spikes. So the forward check uses
``MatchedLeaky`` (stock Leaky with the carry-over switched off, nothing else changed): every layer's
spikes must be equal EXACTLY and the logits equal to float32 tolerance (1e-5). Both snnTorch variants are
timed; the headline ratio is against stock Leaky, the matched one is reported beside it. Gradients are
not compared: snnTorch back-propagates through the reset, ours detaches it.

Timing: forward + backward + Adam step on a batch of 64 random spike inputs (vision (T, B, 2, 34, 34) at
~2 % density, audio (T, B, 64) counts 0..8), alternating the two models, median of ``--steps`` steps
after ``--warmup``; both at the same torch thread count. Peak RSS is one real training epoch of ours
(edge_taaf.train.train, synth data, default config) in a fresh subprocess (ru_maxrss).

Run from the repo root:  EDGE_TAAF_DATA=/work/shared/data python bench/train_step.py
The last line printed is one JSON object.
"""
import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import snntorch  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from snntorch import surrogate  # noqa: E402
from torch import nn  # noqa: E402

from edge_taaf.encoders import conv_out  # noqa: E402
from edge_taaf.init import scale_to_firing_rate  # noqa: E402
from edge_taaf.losses import build_loss  # noqa: E402
from edge_taaf.model import ModelOut, TwoModalitySNN  # noqa: E402


def default_config(overrides=()):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


class MatchedLeaky(snntorch.Leaky):
    """Stock Leaky without the carry-over second subtraction (see the module docstring): our neuron."""

    def mem_reset(self, mem):
        return torch.zeros_like(mem)


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


def make_step(model, objective, vision, audio, y):
    model.detach_heads = False
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = objective(model(vision, audio), y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def epoch_rss(timeout: int) -> dict:
    """Peak RSS (MiB) and wall time of one training epoch of ours, default config, in a fresh process."""
    code = (
        "import json, resource, sys, time; sys.path.insert(0, %r); from pathlib import Path\n"
        "from bench.train_step import default_config\n"
        "from edge_taaf.train import train\n"
        "cfg = default_config(['trainer.epochs=1', 'trainer.progress=false', 'trainer.log_epochs=false'])\n"
        "build = time.perf_counter(); train(cfg, Path(sys.argv[1]))\n"
        "print(json.dumps({'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'epoch_s': time.perf_counter() - build}))\n" % str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
    if res.returncode != 0:
        raise RuntimeError(f"the training epoch failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads, the same for both")
    ap.add_argument("--no-rss", action="store_true", help="skip the one-epoch peak-RSS run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = default_config()
    mcfg = OmegaConf.to_container(cfg.model, resolve=True)
    ours = TwoModalitySNN(mcfg)
    vision, audio, y = random_batch(mcfg["T"], args.batch)
    scale_to_firing_rate(ours, vision, audio, target=0.1)
    stock, matched = SnnTorchTwoModality(ours, mcfg), SnnTorchTwoModality(ours, mcfg, MatchedLeaky)
    check = check_same_forward(ours, matched, stock, vision, audio)
    print("forward check:", json.dumps(check), flush=True)

    objective = build_loss(cfg.loss)
    steps = {name: make_step(model, objective, vision, audio, y)
             for name, model in (("ours", ours), ("snntorch", stock), ("snntorch_matched", matched))}
    times = {k: [] for k in steps}
    for i in range(args.warmup + args.steps):
        for name, step in steps.items():  # alternate, so load drift hits both alike
            start = time.perf_counter()
            step()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    print(", ".join(f"{k} {v:.1f} ms/step" for k, v in ms.items()), flush=True)

    result = {
        "train_step_ratio_vs_snntorch": ms["ours"] / ms["snntorch"], "ours_ms_per_step": ms["ours"],
        "snntorch_ms_per_step": ms["snntorch"], "snntorch_matched_ms_per_step": ms["snntorch_matched"],
        "train_step_ratio_vs_snntorch_matched": ms["ours"] / ms["snntorch_matched"],
        "batch": args.batch, "T": mcfg["T"], "steps": args.steps, "threads": args.threads,
        "weights": ours.weight_count(), "forward_check": check,
        "snntorch_version": snntorch.__version__, "torch_version": torch.__version__, "cpu": platform.processor() or platform.machine(),
    }
    if not args.no_rss:
        rss = epoch_rss(timeout=1800)
        result.update({"peak_rss_mb": rss["peak_rss_mb"], "epoch_s": rss["epoch_s"],
                       "epoch_note": "one epoch of edge_taaf.train on SYNTHETIC data (2000 train, 500 test), incl. data load"})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
