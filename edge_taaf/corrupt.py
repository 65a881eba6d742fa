"""Modality dropout and sensor corruption of training batches: pure torch functions, no parameters.

A two-sensor device must never be worse than its best sensor, also when one sensor fails. Training
(float and QAT) sees failing sensors on purpose, per sample and with the probabilities of
``trainer.corrupt`` (configs/trainer/default.yaml; checked by edge_taaf/config.py):

* silence (``silence_prob``): one sensor of the sample is all zeros, never both: audio with probability
  ``silence_audio_share`` (0.5 by default), else vision.
* heavy noise (``noise_prob``, per sample and sensor independently):
  vision: extra background events, Bernoulli per (step, polarity, pixel) with probability
  ``vision_noise`` x the sample's own event rate (events per element and step, capped at 1), a share
  ``vision_noise_on_share`` of them ON events (channel 1 of (T, B, 2, H, W)): 0.5 floods both polarities
  alike; a DVS camera's own background activity is mostly ON events (the emulator's
  ``sensor.dvs.noise_on_fraction``: 0.9), and a flood shaped like it sets that share (docs/robustness.md);
  audio: Poisson counts added to every (step, channel) pair with mean ``audio_noise`` x the sample's
  own mean count per pair: activity flat over channels and time, like a cochlea hearing white noise.
  Either level may be a range [k_min, k_max] (0 < k_min <= k_max): k is then drawn per sample,
  log-uniformly, so training sees floods from mild to far beyond the sample's own activity.
* time shift (``shift_prob``, per sample and sensor independently): the stream rolls by s steps,
  s uniform in [-max_shift, max_shift] without 0, zero fill (no wrap-around).
* crosstalk (``crosstalk_prob``): one sensor of the sample carries another source, confidently wrong:
  its stream is replaced by the same sensor's (uncorrupted) stream of another sample of the batch whose
  label differs; audio with probability ``crosstalk_audio_share``, else vision; the label stays. It
  mimics a sensor of a speaker or writer never met: wrong while looking healthy. Measured on the
  speaker-held-out split (docs/robustness.md) it did not, alone, keep the fused answer above vision:
  the score network cannot tell such a stream from a right one; ``trainer.modal_balance`` did.

No sample ever ends with both sensors silent (unless it came in so): one whose corruption would empty
both (a silenced sensor beside a partner shifted out of the window, or a partner that held nothing)
keeps its original streams.

Every function takes time-major count tensors (T, B, ...) (any float or integer dtype holding whole
numbers) and returns new ones; counts stay whole numbers in 0..clip (``data.clip`` for vision,
``data.clip_audio`` for audio). Randomness comes only from the ``torch.Generator`` passed in (a CPU
generator; draws are moved to the data's device), so a seed gives the same corruption on any device.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from sensors.options import MODALITIES



@dataclass(frozen=True)
class CorruptSettings:
    """``trainer.corrupt``: probabilities per sample (0 turns a corruption off) and the corruption sizes."""

    silence_prob: float = 0.0         #: chance a sample has one sensor silenced (all zeros); never both
    silence_audio_share: float = 0.5  #: of the silenced samples, the share whose audio is silenced
    noise_prob: float = 0.0           #: chance, per sample and sensor, of heavy noise
    vision_noise: float | tuple[float, float] = 1.0  #: k: extra vision events at k x the sample's own event rate
    audio_noise: float | tuple[float, float] = 1.0   #: k: extra audio counts at k x the sample's own mean count
    #: per (step, channel); a pair (k_min, k_max) draws k per sample, log-uniformly (noise_levels)
    vision_noise_on_share: float = 0.5  #: share of the vision flood's events that are ON (channel 1 of P = 2)
    shift_prob: float = 0.0           #: chance, per sample and sensor, of a time shift
    max_shift: int = 2                #: the largest shift in steps (< T)
    crosstalk_prob: float = 0.0       #: chance a sample has one sensor replaced by another class's stream
    crosstalk_audio_share: float = 0.5  #: of the crosstalk samples, the share whose audio is replaced

    @property
    def active(self) -> bool:
        """Whether any corruption can happen (all probabilities 0: batches pass untouched, no draws)."""
        return bool(self.silence_prob or self.noise_prob or (self.shift_prob and self.max_shift) or self.crosstalk_prob)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A (B,) tensor on x's device, shaped to broadcast over the (T, B, ...) tensor x."""
    return values.to(x.device).view(1, -1, *([1] * (x.dim() - 2)))


def _add_clipped(x: torch.Tensor, extra: torch.Tensor, clip: int) -> torch.Tensor:
    """x + extra, clipped at ``clip``, in x's dtype (integer dtypes are widened first: no wrap-around)."""
    wide = x if x.is_floating_point() else x.to(torch.int64)
    return torch.clamp(wide + extra.to(device=x.device, dtype=wide.dtype), max=clip).to(x.dtype)


def noise_levels(k: float | tuple[float, float], n: int, generator: torch.Generator) -> torch.Tensor:
    """(n,) noise levels: k for every sample, or for a pair (k_min, k_max) k_min * (k_max / k_min)^u with u
    uniform per sample (log-uniform; one draw from ``generator`` per sample, none for a single k)."""
    if isinstance(k, tuple):
        lo, hi = k
        return lo * (hi / lo) ** torch.rand(n, generator=generator)
    return torch.full((n,), float(k))


def silence(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x (T, B, ...) with the samples where ``mask`` (B,) is True set to all zeros."""
    return torch.where(_per_sample(mask.bool(), x), torch.zeros((), dtype=x.dtype, device=x.device), x)


def event_rate(x: torch.Tensor) -> torch.Tensor:
    """Each sample's mean count per element and step (B,), float32, on the CPU."""
    return x.float().transpose(0, 1).reshape(x.shape[1], -1).mean(1).cpu()


def vision_noise(x: torch.Tensor, prob: torch.Tensor, clip: int, generator: torch.Generator,
                 on_share: float = 0.5) -> torch.Tensor:
    """x (T, B, ...) plus one event at each (step, element) with probability ``prob`` (B,) per sample
    (Bernoulli; clamped to [0, 1]), clipped at ``clip``. ``on_share`` != 0.5 needs x (T, B, 2, H, W): the
    ON channel (1) then gets probability 2 on_share prob and the OFF channel (0) 2 (1 - on_share) prob (each
    clamped to [0, 1]), the same expected number of events split unevenly; 0.5 is the even split."""
    u = torch.rand(x.shape, generator=generator)
    p = prob.float().cpu().view(1, -1, *([1] * (x.dim() - 2)))
    if on_share != 0.5:
        if x.dim() != 5 or x.shape[2] != 2:
            raise ValueError(f"vision_noise: on_share={on_share} needs vision (T, B, 2, H, W), got {tuple(x.shape)}")
        p = p * torch.tensor([2.0 * (1.0 - on_share), 2.0 * on_share]).view(1, 1, 2, 1, 1)
    return _add_clipped(x, u < p.clamp(0.0, 1.0), clip)


def audio_noise(x: torch.Tensor, mean: torch.Tensor, clip: int, generator: torch.Generator) -> torch.Tensor:
    """x (T, B, C) plus Poisson counts of mean ``mean`` (B,) per sample at every (step, channel) pair,
    clipped at ``clip``."""
    rate = mean.float().cpu().clamp(min=0.0).view(1, -1, *([1] * (x.dim() - 2))).expand(x.shape).contiguous()
    return _add_clipped(x, torch.poisson(rate, generator=generator), clip)


def time_shift(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Each sample b of x (T, B, ...) moved by ``shifts[b]`` steps along time (positive: later), zero fill,
    no wrap-around: out[t, b] = x[t - s_b, b] where 0 <= t - s_b < T, else 0."""
    n_t, n_b = x.shape[:2]
    src = torch.arange(n_t).view(-1, 1) - shifts.long().cpu().view(1, -1)          # (T, B)
    valid = ((src >= 0) & (src < n_t)).to(x.device).view(n_t, n_b, *([1] * (x.dim() - 2)))
    batch = torch.arange(n_b).view(1, -1).expand(n_t, n_b)
    out = x[src.clamp(0, n_t - 1).to(x.device), batch.to(x.device)]
    return torch.where(valid, out, torch.zeros((), dtype=x.dtype, device=x.device))


def _any_events(x: torch.Tensor) -> torch.Tensor:
    """(B,) True where a sample holds at least one count (on the CPU)."""
    return x.transpose(0, 1).reshape(x.shape[1], -1).ne(0).any(1).cpu()


def crosstalk_partners(labels: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each sample b, the sample j of the batch with the highest ``scores[b, j]`` (B, B) among those whose
    label differs (a uniform draw when scores are uniform noise). Returns (partner (B,), found (B,)): found is
    False where every sample of the batch shares b's label."""
    labels = labels.cpu().view(-1)
    other = labels.view(-1, 1) != labels.view(1, -1)
    masked = torch.where(other, scores, torch.full_like(scores, -1.0))
    return masked.argmax(1), other.any(1)


def corrupt_batch(vision: torch.Tensor | None, audio: torch.Tensor | None, settings: CorruptSettings,
                  clips: dict[str, int], generator: torch.Generator, labels: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor | None, torch.Tensor | None, dict[str, torch.Tensor]]:
    """Corrupt a time-major batch per sample: vision (T, B, 2, H, W), audio (T, B, C) (None: absent).

    Returns (vision, audio, applied): ``applied`` maps "silence.<m>", "noise.<m>", "shift.<m>",
    "crosstalk.<m>" to (B,) boolean masks, "shift_steps.<m>" to the (B,) shifts drawn (0 where none) and
    "crosstalk_from" to each sample's crosstalk source (its own index where none). Order: crosstalk (never
    on a silenced sample), shift, then noise (at the shifted stream's own rate), then silence (a silenced
    sensor is exactly zero). ``labels`` (B,) are needed for crosstalk (ValueError otherwise). The
    per-sample draws are made in a fixed order whatever the settings, so the generator's seed decides
    everything; ``clips`` gives each modality's largest count (data.clip, data.clip_audio).
    Silencing needs both sensors (ValueError otherwise).
    """
    streams = {"audio": audio, "vision": vision}
    present = [m for m in MODALITIES if streams[m] is not None]
    if not present:
        raise ValueError("corrupt_batch: no sensor given")
    n_b = streams[present[0]].shape[1]
    if settings.silence_prob and len(present) < 2:
        raise ValueError(f"trainer.corrupt.silence_prob={settings.silence_prob} needs two sensors; the batch holds {present}")
    g = generator
    u_silence, u_which = torch.rand(n_b, generator=g), torch.rand(n_b, generator=g)
    draws = {m: (torch.rand(n_b, generator=g), torch.rand(n_b, generator=g), torch.randint(0, 2, (n_b,), generator=g),
                 torch.randint(1, max(settings.max_shift, 1) + 1, (n_b,), generator=g)) for m in MODALITIES}
    u_cross, u_cross_which, partner_scores = torch.rand(n_b, generator=g), torch.rand(n_b, generator=g), \
        torch.rand(n_b, n_b, generator=g)
    silenced = u_silence < settings.silence_prob
    lose_audio = silenced & (u_which < settings.silence_audio_share)
    applied = {"silence.audio": lose_audio, "silence.vision": silenced & ~lose_audio}
    crossed = torch.zeros(n_b, dtype=torch.bool)
    partner = torch.arange(n_b)
    if settings.crosstalk_prob:
        if len(present) < 2:
            raise ValueError(f"trainer.corrupt.crosstalk_prob={settings.crosstalk_prob} needs two sensors; "
                             f"the batch holds {present}")
        if labels is None or labels.numel() != n_b:
            raise ValueError(f"corrupt_batch: crosstalk needs the batch's {n_b} labels, got "
                             f"{None if labels is None else labels.numel()}")
        found_partner, found = crosstalk_partners(labels, partner_scores)
        crossed = (u_cross < settings.crosstalk_prob) & found & ~silenced
        partner = torch.where(crossed, found_partner, partner)
    cross_audio = crossed & (u_cross_which < settings.crosstalk_audio_share)
    applied.update({"crosstalk.audio": cross_audio, "crosstalk.vision": crossed & ~cross_audio,
                    "crosstalk_from": partner})
    for m in present:
        x = streams[m]
        if applied[f"crosstalk.{m}"].any():
            source = torch.where(applied[f"crosstalk.{m}"], partner, torch.arange(n_b)).to(x.device)
            x = x[:, source]
        u_noise, u_shift, sign, size = draws[m]
        kept = ~applied[f"silence.{m}"]        # a sensor silenced anyway is neither shifted nor noised
        shifted = (u_shift < settings.shift_prob) & kept & (settings.max_shift > 0)
        steps = torch.where(shifted, size * (2 * sign - 1), torch.zeros_like(size))
        if shifted.any():
            x = time_shift(x, steps)
        noisy = (u_noise < settings.noise_prob) & kept
        if noisy.any():
            k = settings.vision_noise if m == "vision" else settings.audio_noise
            level = torch.where(noisy, noise_levels(k, n_b, g) * event_rate(x), torch.zeros(n_b))
            x = vision_noise(x, level, clips[m], g, settings.vision_noise_on_share) if m == "vision" \
                else audio_noise(x, level, clips[m], g)
        if applied[f"silence.{m}"].any():
            x = silence(x, applied[f"silence.{m}"])
        streams[m] = x
        applied.update({f"noise.{m}": noisy, f"shift.{m}": shifted, f"shift_steps.{m}": steps})
    if len(present) == 2:
        # Never both sensors silent: a sample that held events and lost them all (a silenced sensor whose
        # partner was shifted out of the window) keeps its original streams, and no corruption is recorded.
        had = _any_events(vision) | _any_events(audio)
        lost = had & ~(_any_events(streams["vision"]) | _any_events(streams["audio"]))
        if lost.any():
            for m in present:
                streams[m] = torch.where(_per_sample(lost, streams[m]), {"audio": audio, "vision": vision}[m], streams[m])
                for kind in ("silence", "noise", "shift", "crosstalk"):
                    applied[f"{kind}.{m}"] = applied[f"{kind}.{m}"] & ~lost
                applied[f"shift_steps.{m}"] = torch.where(lost, torch.zeros_like(applied[f"shift_steps.{m}"]),
                                                          applied[f"shift_steps.{m}"])
            applied["crosstalk_from"] = torch.where(lost, torch.arange(n_b), applied["crosstalk_from"])
    return streams["vision"], streams["audio"], applied


def failing(applied: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B,) True where corrupt_batch's ``applied`` shows a sensor visibly failing: silenced or flooded with
    noise (crosstalk and shifts look healthy)."""
    masks = [applied[f"{kind}.{m}"] for kind in ("silence", "noise") for m in MODALITIES if f"{kind}.{m}" in applied]
    return torch.stack(masks).any(0)

