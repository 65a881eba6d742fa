"""Modality dropout and sensor corruption in training (edge_taaf/corrupt.py, trainer.corrupt): the statistics
of each corruption, seeded determinism, whole counts within the clip, never both sensors silent, the config
checks, the training loop (float and QAT) really training on corrupted batches, and trainer.modal_balance."""
from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

import edge_taaf.train as train_mod
from edge_taaf.apps.train import run_training
from edge_taaf.checkpoint import load_checkpoint
from edge_taaf.config import ConfigError, check_train_config, corrupt_settings
from edge_taaf.corrupt import CorruptSettings, audio_noise, corrupt_batch, noise_levels, silence, time_shift, vision_noise
from edge_taaf.fusion import balance_loss
from tests.support.configs import TINY, composition_error

T, B = 8, 400
CLIPS = {"vision": 1, "audio": 8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def batch(seed=0, b=B, vision_rate=0.05, audio_rate=0.2):
    """Time-major float counts as the training loop hands them: vision (T, B, 2, 34, 34) binary, audio (T, B, 64)
    in 0..8 (Poisson of mean audio_rate, clipped)."""
    g = torch.Generator().manual_seed(seed)
    v = (torch.rand(T, b, 2, 34, 34, generator=g) < vision_rate).float()
    a = torch.poisson(torch.full((T, b, 64), audio_rate), generator=g).clamp(max=8)
    return v, a


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


def whole_within(x, clip):
    return bool((x == torch.floor(x)).all() and x.min() >= 0 and x.max() <= clip)


def empty(x):
    """(B,) True where a sample has no count at all."""
    return x.transpose(0, 1).reshape(x.shape[1], -1).eq(0).all(1)


# ------------------------------------------------------------------ the pieces


def test_time_shift_moves_each_sample_with_zero_fill_and_no_wraparound():
    x = torch.arange(1, 6, dtype=torch.float32).view(5, 1, 1).repeat(1, 4, 3)       # x[t, b, c] = t + 1
    out = time_shift(x, torch.tensor([2, -1, 0, -4]))
    assert out[:, 0, 0].tolist() == [0, 0, 1, 2, 3]        # later by 2: the last two steps fall off
    assert out[:, 1, 0].tolist() == [2, 3, 4, 5, 0]        # earlier by 1
    assert out[:, 2, 0].tolist() == [1, 2, 3, 4, 5]
    assert out[:, 3, 0].tolist() == [5, 0, 0, 0, 0]
    assert torch.equal(out[..., 0], out[..., 2])           # every element of a step moves together


def test_silence_zeroes_only_the_masked_samples():
    v, _ = batch(b=6)
    mask = torch.tensor([True, False, True, False, False, False])
    out = silence(v, mask)
    assert out[:, mask].sum() == 0 and torch.equal(out[:, ~mask], v[:, ~mask])


def test_vision_noise_adds_bernoulli_events_at_the_asked_probability():
    zeros = torch.zeros(T, 50, 2, 34, 34)
    p = torch.linspace(0.0, 0.2, 50)
    out = vision_noise(zeros, p, 1, gen())
    rate = out.transpose(0, 1).reshape(50, -1).mean(1)
    n = T * 2 * 34 * 34
    assert rate[0] == 0
    assert torch.all((rate - p).abs() <= 5 * torch.sqrt(p * (1 - p) / n) + 1e-6), (rate - p).abs().max()
    assert whole_within(vision_noise(torch.ones(T, 3, 2, 34, 34), torch.full((3,), 0.5), 1, gen()), 1)


def test_vision_noise_on_share_splits_the_same_flood_between_on_and_off_events():
    zeros, p = torch.zeros(T, 40, 2, 34, 34), torch.full((40,), 0.05)
    even = vision_noise(zeros, p, 1, gen())
    assert torch.equal(even, vision_noise(zeros, p, 1, gen(), on_share=0.5))     # 0.5: exactly the old flood
    shaped = vision_noise(zeros, p, 1, gen(), on_share=0.9)
    on, off = shaped[:, :, 1].mean().item(), shaped[:, :, 0].mean().item()
    n = T * 40 * 34 * 34
    assert abs(on - 0.09) < 5 * math.sqrt(0.09 / n) and abs(off - 0.01) < 5 * math.sqrt(0.01 / n)
    assert abs(shaped.mean().item() - even.mean().item()) < 0.002                 # the same events in all
    assert vision_noise(zeros, p, 1, gen(), on_share=1.0)[:, :, 0].sum() == 0
    assert whole_within(vision_noise(torch.ones(T, 3, 2, 34, 34), torch.full((3,), 0.8), 1, gen(), on_share=0.9), 1)
    with pytest.raises(ValueError, match=r"on_share=0.9 needs vision \(T, B, 2, H, W\), got \(8, 4, 1, 17, 17\)"):
        vision_noise(torch.zeros(T, 4, 1, 17, 17), torch.full((4,), 0.1), 1, gen(), on_share=0.9)


def test_corrupt_batch_floods_vision_with_the_configured_on_share():
    v, a = batch(b=64, vision_rate=0.02)
    settings = CorruptSettings(noise_prob=1.0, vision_noise=4.0, vision_noise_on_share=0.9)
    out, _, applied = corrupt_batch(v, a, settings, CLIPS, gen())
    extra = out - v
    assert applied["noise.vision"].all() and extra.min() >= 0
    assert extra[:, :, 1].sum() > 6 * extra[:, :, 0].sum()      # about 9:1 (less where ON pixels were already set)


def test_audio_noise_is_white_poisson_at_the_asked_mean_and_clipped():
    zeros = torch.zeros(64, 20, 64)          # 64 steps so per-step means are well estimated
    out = audio_noise(zeros, torch.full((20,), 0.5), 8, gen())
    assert whole_within(out, 8)
    assert out.mean().item() == pytest.approx(0.5, abs=0.02)
    assert out.var().item() == pytest.approx(0.5, abs=0.05)                  # Poisson: variance = mean
    per_channel, per_step = out.mean((0, 1)), out.mean((1, 2))
    se = (0.5 / (64 * 20)) ** 0.5
    assert (per_channel - 0.5).abs().max() < 5 * se and (per_step - 0.5).abs().max() < 5 * se   # flat: white
    loud = audio_noise(torch.full((T, 4, 64), 7.0, dtype=torch.uint8), torch.full((4,), 300.0), 255, gen())
    assert loud.dtype == torch.uint8 and loud.min() >= 7 and loud.max() == 255      # widened, never wrapped


# ------------------------------------------------------------------ corrupt_batch statistics


def test_silence_one_sensor_never_both_at_the_configured_rate_and_share():
    v, a = batch()
    s = CorruptSettings(silence_prob=0.4, silence_audio_share=0.25)
    v2, a2, applied = corrupt_batch(v, a, s, CLIPS, gen())
    sa, sv = applied["silence.audio"], applied["silence.vision"]
    assert not (sa & sv).any()
    n = int((sa | sv).sum())
    assert abs(n / B - 0.4) < 4 * (0.4 * 0.6 / B) ** 0.5
    assert abs(int(sa.sum()) / n - 0.25) < 4 * (0.25 * 0.75 / n) ** 0.5
    assert empty(a2)[sa].all() and empty(v2)[sv].all()
    assert torch.equal(a2[:, ~sa], a[:, ~sa]) and torch.equal(v2[:, ~sv], v[:, ~sv])    # nothing else touched
    every = CorruptSettings(silence_prob=1.0)
    v3, a3, _ = corrupt_batch(v, a, every, CLIPS, gen(5))
    assert (empty(v3) ^ empty(a3)).all()                   # each sample: exactly one sensor silent


def test_never_both_silent_even_when_a_shift_would_empty_the_other_sensor():
    v = torch.zeros(T, B, 2, 34, 34)
    a = torch.zeros(T, B, 64)
    v[0, :, 0, 5, 5] = 1               # every sample's events sit at the first or last step only
    a[-1, :, 3] = 2
    s = CorruptSettings(silence_prob=1.0, shift_prob=1.0, max_shift=T - 1)
    v2, a2, applied = corrupt_batch(v, a, s, CLIPS, gen())
    assert not (empty(v2) & empty(a2)).any()
    assert (applied["silence.audio"] | applied["silence.vision"]).float().mean() > 0.3   # the rest kept silencing
    kept = ~(applied["silence.audio"] | applied["silence.vision"])
    assert kept.any() and torch.equal(v2[:, kept], v[:, kept]) and torch.equal(a2[:, kept], a[:, kept])


def test_noise_raises_each_sensors_rate_by_k_times_its_own():
    v, a = batch(vision_rate=0.04, audio_rate=0.1)
    s = CorruptSettings(noise_prob=0.5, vision_noise=0.5, audio_noise=3.0)
    v2, a2, applied = corrupt_batch(v, a, s, CLIPS, gen())
    assert whole_within(v2, 1) and whole_within(a2, 8)
    for m, x, y, k in (("vision", v, v2, 0.5), ("audio", a, a2, 3.0)):
        noisy = applied[f"noise.{m}"]
        assert abs(noisy.float().mean().item() - 0.5) < 0.1
        assert torch.equal(y[:, ~noisy], x[:, ~noisy])
        assert (y >= x).all()                                        # noise only adds
        own = x[:, noisy].transpose(0, 1).reshape(int(noisy.sum()), -1).mean(1)
        added = (y - x)[:, noisy].transpose(0, 1).reshape(int(noisy.sum()), -1).mean(1)
        if m == "vision":    # an event lands only where there was none (clip 1): expected k r (1 - r)
            expected = k * own * (1 - own)
        else:                # clip 8 is almost never reached at these rates
            expected = k * own
        assert (added.mean() / expected.mean()).item() == pytest.approx(1.0, abs=0.05), m
        assert torch.corrcoef(torch.stack([added, expected]))[0, 1] > 0.3, m   # per sample: its own rate


def test_noise_levels_are_log_uniform_within_the_range_and_fixed_for_one_number():
    assert torch.equal(noise_levels(2.5, 7, gen()), torch.full((7,), 2.5))
    k = noise_levels((0.5, 8.0), 20_000, gen())
    assert k.min() >= 0.5 and k.max() <= 8.0
    u = torch.log(k / 0.5) / math.log(16.0)               # log-uniform: the log-position is uniform on [0, 1]
    assert u.mean().item() == pytest.approx(0.5, abs=0.01) and (u < 0.25).float().mean().item() == pytest.approx(0.25, abs=0.01)


def test_a_noise_range_floods_each_noisy_sample_at_its_own_level_within_the_range():
    v, a = batch(b=64, audio_rate=0.05)
    s = CorruptSettings(noise_prob=1.0, vision_noise=(0.5, 8.0), audio_noise=(0.5, 8.0))
    v2, a2, applied = corrupt_batch(v, a, s, {"vision": 1, "audio": 255}, gen())
    for x, y in ((v, v2), (a, a2)):
        own = x.transpose(0, 1).reshape(64, -1).mean(1)
        added = (y - x).transpose(0, 1).reshape(64, -1).mean(1)
        ratio = added / own
        assert ratio.min() > 0.3 and ratio.max() < 9.0 and ratio.max() / ratio.min() > 4   # spread over the range


def test_shifts_are_per_sensor_independent_nonzero_and_bounded():
    v, a = batch()
    s = CorruptSettings(shift_prob=0.6, max_shift=3)
    v2, a2, applied = corrupt_batch(v, a, s, CLIPS, gen())
    sv, sa = applied["shift_steps.vision"], applied["shift_steps.audio"]
    for m, steps in (("vision", sv), ("audio", sa)):
        on = applied[f"shift.{m}"]
        assert abs(on.float().mean().item() - 0.6) < 0.1
        assert (steps[on] != 0).all() and (steps[~on] == 0).all() and steps.abs().max() == 3
        assert set(steps[on].tolist()) == {-3, -2, -1, 1, 2, 3}
    assert (applied["shift.vision"] != applied["shift.audio"]).any()                     # independent draws
    both = applied["shift.vision"] & applied["shift.audio"]
    assert (sv[both] != sa[both]).any()
    i = int(torch.nonzero(applied["shift.audio"])[0])
    assert torch.equal(a2[:, i:i + 1], time_shift(a[:, i:i + 1], sa[i:i + 1]))


def test_crosstalk_swaps_one_sensor_for_another_class_at_the_rate_and_share_labels_kept():
    v, a = batch()
    labels = torch.arange(B) % 10
    s = CorruptSettings(crosstalk_prob=0.4, crosstalk_audio_share=0.25)
    v2, a2, applied = corrupt_batch(v, a, s, CLIPS, gen(), labels)
    ca, cv, src = applied["crosstalk.audio"], applied["crosstalk.vision"], applied["crosstalk_from"]
    assert not (ca & cv).any()
    n = int((ca | cv).sum())
    assert abs(n / B - 0.4) < 4 * (0.4 * 0.6 / B) ** 0.5
    assert abs(int(ca.sum()) / n - 0.25) < 4 * (0.25 * 0.75 / n) ** 0.5
    crossed = ca | cv
    assert (labels[src[crossed]] != labels[crossed]).all()          # always another class
    assert torch.equal(src[~crossed], torch.arange(B)[~crossed])
    for m, x, y, on in (("audio", a, a2, ca), ("vision", v, v2, cv)):
        assert torch.equal(y[:, on], x[:, src[on]]), m             # the partner's own (uncorrupted) stream
        assert torch.equal(y[:, ~on], x[:, ~on]), m                # the other sensor and other samples: untouched
    assert len(set(src[crossed].tolist())) > n // 3                 # partners drawn, not one fixed sample


def test_crosstalk_never_hits_a_silenced_sample_nor_a_batch_of_one_class():
    v, a = batch(b=64)
    labels = torch.arange(64) % 10
    _, _, applied = corrupt_batch(v, a, CorruptSettings(silence_prob=0.5, crosstalk_prob=1.0), CLIPS, gen(), labels)
    silenced = applied["silence.audio"] | applied["silence.vision"]
    crossed = applied["crosstalk.audio"] | applied["crosstalk.vision"]
    assert silenced.any() and torch.equal(crossed, ~silenced)        # each sample: one corruption of the two
    same = torch.full((64,), 3)
    v2, a2, applied = corrupt_batch(v, a, CorruptSettings(crosstalk_prob=1.0), CLIPS, gen(), same)
    assert not (applied["crosstalk.audio"] | applied["crosstalk.vision"]).any()
    assert torch.equal(v2, v) and torch.equal(a2, a)                 # no other class to take a stream from
    with pytest.raises(ValueError, match="crosstalk needs the batch's 64 labels, got None"):
        corrupt_batch(v, a, CorruptSettings(crosstalk_prob=0.5), CLIPS, gen())
    with pytest.raises(ValueError, match="crosstalk_prob=0.5 needs two sensors"):
        corrupt_batch(None, a, CorruptSettings(crosstalk_prob=0.5), CLIPS, gen(), labels)


def test_same_seed_same_corruption_other_seed_other():
    v, a = batch(b=64)
    s = CorruptSettings(silence_prob=0.3, noise_prob=0.5, shift_prob=0.5, max_shift=2)
    one = corrupt_batch(v, a, s, CLIPS, gen(3))
    two = corrupt_batch(v, a, s, CLIPS, gen(3))
    other = corrupt_batch(v, a, s, CLIPS, gen(4))
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
    assert all(torch.equal(one[2][k], two[2][k]) for k in one[2])
    assert not torch.equal(one[0], other[0]) and not torch.equal(one[1], other[1])
    assert torch.equal(v, batch(b=64)[0])                                 # inputs are never written to


def test_off_settings_leave_the_batch_untouched_and_silencing_one_sensor_is_refused():
    v, a = batch(b=16)
    assert not CorruptSettings().active
    v2, a2, _ = corrupt_batch(v, a, CorruptSettings(), CLIPS, gen())
    assert torch.equal(v2, v) and torch.equal(a2, a)
    with pytest.raises(ValueError, match="silence_prob=0.5 needs two sensors"):
        corrupt_batch(None, a, CorruptSettings(silence_prob=0.5), CLIPS, gen())
    _, a3, _ = corrupt_batch(None, a, CorruptSettings(noise_prob=1.0), CLIPS, gen())    # one sensor: noise is fine
    assert (a3 >= a).all() and not torch.equal(a3, a)


# ------------------------------------------------------------------ config


def test_default_config_is_off(tiny_train_cfg):
    cfg = tiny_train_cfg()
    check_train_config(cfg)
    settings = corrupt_settings(cfg)
    assert settings == CorruptSettings() and not settings.active


def test_a_noise_range_is_read_as_a_pair(tiny_train_cfg):
    settings = corrupt_settings(tiny_train_cfg("trainer.corrupt.vision_noise=[0.25,8]"))
    assert settings.vision_noise == (0.25, 8.0) and settings.audio_noise == 1.0


@pytest.mark.parametrize("override, message", [
    ("trainer.corrupt.silence_prob=1.5", "trainer.corrupt.silence_prob=1.5, expected a probability in [0, 1]"),
    ("trainer.corrupt.noise_prob=-0.1", "trainer.corrupt.noise_prob=-0.1, expected a probability in [0, 1]"),
    ("trainer.corrupt.shift_prob=2", "trainer.corrupt.shift_prob=2.0, expected a probability in [0, 1]"),
    ("trainer.corrupt.silence_audio_share=1.01", "trainer.corrupt.silence_audio_share=1.01, expected a probability"),
    ("trainer.corrupt.vision_noise=-1.0", "trainer.corrupt.vision_noise=-1.0, expected a noise level >= 0"),
    ("trainer.corrupt.audio_noise=-0.5", "trainer.corrupt.audio_noise=-0.5, expected a noise level >= 0"),
    ("trainer.corrupt.vision_noise=[2.0,1.0]", "trainer.corrupt.vision_noise=[2.0, 1.0], expected a noise level >= 0 or a range"),
    ("trainer.corrupt.audio_noise=[0,4]", "trainer.corrupt.audio_noise=[0, 4], expected a noise level >= 0 or a range"),
    ("trainer.corrupt.vision_noise=[1,2,3]", "trainer.corrupt.vision_noise=[1, 2, 3], expected"),
    ("trainer.corrupt.max_shift=6", "trainer.corrupt.max_shift=6, expected a whole number of steps in 0..5"),
    ("trainer.corrupt.max_shift=-1", "trainer.corrupt.max_shift=-1"),
    ("trainer.corrupt.crosstalk_prob=1.2", "trainer.corrupt.crosstalk_prob=1.2, expected a probability in [0, 1]"),
    ("trainer.corrupt.crosstalk_audio_share=-1", "trainer.corrupt.crosstalk_audio_share=-1.0, expected a probability"),
    ("trainer.corrupt.vision_noise_on_share=1.5", "trainer.corrupt.vision_noise_on_share=1.5, expected a probability"),
    ("+trainer.corrupt.dropout=0.1", "trainer.corrupt.dropout is unknown"),
])
def test_bad_values_are_config_errors_naming_the_option(tiny_train_cfg, override, message):
    cfg = tiny_train_cfg(override)            # TINY: data.T=6
    with pytest.raises(ConfigError) as err:
        check_train_config(cfg)
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize("override, key", [
    ("trainer.corrupt.max_shift=1.5", "trainer.corrupt.max_shift"),
    ("trainer.corrupt.noise_prob=often", "trainer.corrupt.noise_prob"),
    ("trainer.corrupt=5", "trainer.corrupt"),
    ("trainer.corrupt.no_such_key=0.1", "trainer.corrupt.no_such_key"),
])
def test_wrong_types_and_unknown_keys_fail_when_the_config_is_composed(override, key):
    # the trainer schema (edge_taaf/schema.py) rejects them before any check or data set runs
    text = composition_error("train", [*TINY, override])
    assert f"full_key: {key}" in text, text


def test_an_on_share_for_vision_without_two_polarity_channels_is_a_config_error(tiny_train_cfg):
    cfg = tiny_train_cfg("trainer.corrupt.vision_noise_on_share=0.9", "data.vision_shape=[1,34,34]")
    with pytest.raises(ConfigError, match=r"trainer.corrupt.vision_noise_on_share=0.9 splits the flood between ON and "
                                          r"OFF events; the vision input \(data.vision_shape=\[1, 34, 34\]\) has 1 "
                                          r"polarity channel\(s\), not 2"):
        check_train_config(cfg)
    assert corrupt_settings(tiny_train_cfg("trainer.corrupt.vision_noise_on_share=0.9")).vision_noise_on_share == 0.9


@pytest.mark.parametrize("option", ["silence_prob", "crosstalk_prob"])
def test_silencing_or_crosstalk_on_a_one_sensor_model_is_a_config_error(tiny_train_cfg, option):
    cfg = tiny_train_cfg("model.modalities=[audio]", f"trainer.corrupt.{option}=0.2")
    with pytest.raises(ConfigError, match=rf"trainer.corrupt.{option}=0.2 .*model.modalities=\['audio'\]"):
        check_train_config(cfg)
    check_train_config(tiny_train_cfg("model.modalities=[audio]", "trainer.corrupt.noise_prob=0.2"))


# ------------------------------------------------------------------ the training loop


@pytest.fixture
def spy(monkeypatch):
    """Records what corrupt_batch did in the training loop (it still runs)."""
    calls = []
    real = train_mod.corrupt_batch

    def recording(vision, audio, settings, clips, generator, labels=None):
        out = real(vision, audio, settings, clips, generator, labels)
        calls.append({"settings": settings, "clips": clips, "applied": out[2], "labels": labels,
                      "vision": out[0].detach().clone(), "audio": out[1].detach().clone()})
        return out
    monkeypatch.setattr(train_mod, "corrupt_batch", recording)
    return calls


def test_off_by_default_gives_exactly_todays_run(tiny_train_cfg, tmp_path, spy):
    with_section = tiny_train_cfg("trainer.epochs=1")
    without = OmegaConf.create(OmegaConf.to_container(tiny_train_cfg("trainer.epochs=1")))   # untyped, as a
    del without.trainer["corrupt"]                      # checkpoint's config from before the option existed
    run_training(with_section, tmp_path / "a")
    run_training(without, tmp_path / "b")
    assert not spy                                      # no corruption call, no draws
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.pt")["model"] for d in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("quantized", [False, True])
def test_float_and_qat_training_see_corrupted_batches(tiny_train_cfg, tmp_path, spy, quantized):
    extra = ["quant.weight_bits=8", "trainer.init_firing_rate=null"] if quantized else []
    cfg = tiny_train_cfg("trainer.epochs=1", "trainer.corrupt.silence_prob=0.5", "trainer.corrupt.noise_prob=0.5",
                         "trainer.corrupt.shift_prob=0.5", "trainer.corrupt.max_shift=2", "data.clip_audio=4",
                         "trainer.corrupt.crosstalk_prob=0.5", *extra)
    metrics = run_training(cfg, tmp_path / "run")
    assert metrics["epoch"] == 1 and torch.isfinite(torch.tensor(metrics["train_loss"]))
    assert len(spy) == 4                                # 60 samples / batch 16: every batch corrupted
    assert spy[0]["clips"] == {"vision": 1, "audio": 4}
    silenced = sum(int((c["applied"]["silence.audio"] | c["applied"]["silence.vision"]).sum()) for c in spy)
    assert 15 <= silenced <= 45
    for c in spy:
        assert whole_within(c["vision"], 1) and whole_within(c["audio"], 4)
        assert not (empty(c["vision"]) & empty(c["audio"])).any()
        assert empty(c["audio"])[c["applied"]["silence.audio"]].all()
        crossed = c["applied"]["crosstalk.audio"] | c["applied"]["crosstalk.vision"]
        assert (c["labels"][c["applied"]["crosstalk_from"][crossed]] != c["labels"][crossed]).all()
    assert sum(int((c["applied"]["crosstalk.audio"] | c["applied"]["crosstalk.vision"]).sum()) for c in spy) > 0


def test_the_float_stage_key_holds_every_corrupt_option_and_no_display_option(tmp_path):
    """The float stage's key is the declared option list (edge_taaf/apps/stages.py STAGE_OPTIONS): the whole
    trainer.corrupt section, so any change of it re-trains; trainer.progress is not in it, so it re-trains nothing."""
    from edge_taaf.apps.stages import stage_options
    from tests.support.configs import compose_config

    base = [f"workdir={tmp_path}", "data=synth"]
    off = stage_options(compose_config("pipeline", base), "float")
    assert off["trainer"]["corrupt"]["noise_prob"] == 0.0 and off["trainer"]["epochs"] and "progress" not in off["trainer"]
    on = stage_options(compose_config("pipeline", [*base, "trainer.corrupt.noise_prob=0.2"]), "float")
    assert on["trainer"]["corrupt"]["noise_prob"] == 0.2 and on != off
    quiet = stage_options(compose_config("pipeline", [*base, "trainer.progress=false", "trainer.log_epochs=false"]), "float")
    assert quiet == off
    moved = stage_options(compose_config("pipeline", [*base, f"data.cache_dir={tmp_path / 'elsewhere'}"]), "data")
    assert moved == stage_options(compose_config("pipeline", base), "data")


# ------------------------------------------------------------------ trainer.modal_balance


def test_balance_loss_is_the_healthy_samples_squared_distance_from_equal_mass():
    share = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [1.0, 0.0]], requires_grad=True)
    healthy = torch.tensor([True, True, True, False])          # the last sample's vision was silenced
    loss = balance_loss(share, healthy)
    assert loss.item() == pytest.approx((0.0 + 0.16 + 0.09) / 3)
    loss.backward()
    assert share.grad[3].abs().sum() == 0                       # a failing sensor's mass is left free
    none = balance_loss(share, torch.zeros(4, dtype=torch.bool))
    assert none.item() == 0.0 and none.requires_grad


@pytest.mark.parametrize("overrides, message", [
    (["trainer.modal_balance=1.0"], "trainer.modal_balance=1.0 balances taaf_modal's attention mass"),
    (["model.fusion=taaf_modal", "model.modalities=[audio]", "trainer.modal_balance=1.0"], "model.modalities=['audio']"),
    (["model.fusion=taaf_modal", "trainer.modal_balance=-1"], "trainer.modal_balance=-1.0; expected a number >= 0"),
])
def test_modal_balance_needs_taaf_modal_with_two_sensors(tiny_train_cfg, overrides, message):
    with pytest.raises(ConfigError) as err:
        check_train_config(tiny_train_cfg(*overrides))
    assert message in str(err.value), str(err.value)


def test_training_balances_only_samples_whose_sensors_are_healthy(tiny_train_cfg, tmp_path, spy, monkeypatch):
    seen = []
    real = train_mod.balance_loss

    def recording(share, healthy):
        seen.append(healthy.clone())
        return real(share, healthy)
    monkeypatch.setattr(train_mod, "balance_loss", recording)
    cfg = tiny_train_cfg("trainer.epochs=1", "model.fusion=taaf_modal", "trainer.modal_balance=4.0",
                         "trainer.corrupt.silence_prob=0.4", "trainer.corrupt.noise_prob=0.3",
                         "trainer.corrupt.crosstalk_prob=0.3")
    run_training(cfg, tmp_path / "run")
    assert len(seen) == len(spy) == 4
    for healthy, call in zip(seen, spy):
        a = call["applied"]
        failing = a["silence.audio"] | a["silence.vision"] | a["noise.audio"] | a["noise.vision"]
        assert torch.equal(healthy, ~failing)                   # crosstalk and shifts look healthy: balanced
    assert any(h.any() for h in seen) and any((~h).any() for h in seen)
