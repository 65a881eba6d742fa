"""Encoder benchmark: our Numba encoders against their peers, in one process, on the same inputs.

- binning: ``sensors.binning.bin_camera_events`` vs ``tonic.transforms.ToFrame`` on random sorted
  34x34x2 streams of 100k and 1M events (outputs checked equal first);
- cochlea, like for like (headline): ``sensors.cochlea.cochlea_encode`` vs the SAME algorithm in
  numpy / scipy (bench/support/cochlea_peer.py: the four gammatone stages in one scipy.signal.sosfilt call per
  channel, the LIF in scipy.signal.lfilter windows over every channel at once, no Python loop over
  samples), events checked equal on every clip;
- cochlea, different algorithm (beside it): vs lauscher's ``Wave2Spike`` (the SHD converter: RMS
  normalisation, Hanning window, transmission-line basilar membrane, Meddis inner hair cell, bushy
  cells), whose output differs from ours (its event counts are reported beside ours);
- DVS: ``sensors.dvs_emulator.emulate_saccades`` on 100 real MNIST digits, time per sample, and its
  mean event count against the one real N-MNIST recording. That count ratio is IN-SAMPLE: the
  emulator's thresholds were fitted so that these same 100 digits match this same recording, and no
  other real recording is available to validate it on.
The cochlea and DVS settings are the training data's (configs: data=fsdd_mnist, its sensor section).

Timing method (bench/support/timing.py): thread pools pinned to one thread; each contender runs one timed
unit per round, rounds interleaved in rotated order after untimed warm-up, GC off; a unit lasts
~UNIT_S = 0.2 s on both sides (the faster function is called k times in a row), so time slicing on
a busy machine stretches both alike; every speedup is peer time / our time per call, one per round,
reported as the median of the per-round ratios with its quartiles, min and max. First calls (Numba
compile or cache load) are reported apart under ``compile_s``.

The last line printed is one JSON object with every number. Run from the repo root:
    EDGE_TAAF_DATA=../shared/data python -m bench.encoders
"""
import json
import os
import platform
import statistics
import time

import numba
import numpy as np
import tonic
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench.support.cochlea_peer import cochlea_encode_numpy
from edge_taaf import CONFIG_DIR
from sensors.audio_io import read_wav
from sensors.binning import bin_camera_events
from sensors.cochlea import CochleaParams, cochlea_encode
from sensors.dvs_emulator import DVSParams, emulate_saccades
from sensors.events import CAMERA_DTYPE, make_events
from sensors.mnist import load_mnist5k
from sensors.paths import data_root
from sensors.readers import read_nmnist_bin
from bench.support.timing import gc_paused, interleaved_times, median_ms, pin_threads, ratio_stats, repeats_for

SENSOR, N_BINS = (34, 34, 2), 20
LAUSCHER_BUDGET_S = 180.0  # stop timing lauscher after this much; its ratio uses the clips timed
UNIT_S = 0.2  # each timed unit lasts about this long on both sides (bench/support/timing.py: repeats_for)
LAUSCHER_LABEL = ("lauscher Wave2Spike (RMS normalisation + Hanning window + transmission-line basilar membrane "
                  "+ Meddis inner hair cell + bushy cells): a DIFFERENT algorithm with a different output")
PEER_LABEL = ("the same algorithm in numpy/scipy (bench/support/cochlea_peer.py): the four complex gammatone stages in one "
              "scipy.signal.sosfilt call per channel, numpy rectify/compress, the LIF's membrane recurrence in "
              "scipy.signal.lfilter windows over all channels at once (a Python loop per window, not per sample)")


def timed(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` once; return (seconds, result)."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def sensor_settings() -> tuple[int, CochleaParams, DVSParams]:
    """(sample rate Hz, cochlea params, DVS params) of the fsdd_mnist training data (configs)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        data = compose(config_name="train", overrides=["data=fsdd_mnist"]).data
    cochlea = OmegaConf.to_container(data.cochlea, resolve=True)
    dvs = OmegaConf.to_container(data.dvs, resolve=True)
    dvs = {k: tuple(map(tuple, v)) if k == "saccade_vertices_px" else tuple(v) if isinstance(v, list) else v
           for k, v in dvs.items()}
    return int(data.sample_rate), CochleaParams(**cochlea), DVSParams(**dvs)


def random_stream(n: int, seed: int = 0) -> np.ndarray:
    """n camera events, uniform over the 34x34x2 sensor, t sorted over 1 s (microseconds)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 1_000_000, n))
    return make_events(CAMERA_DTYPE, x=rng.integers(0, 34, n), y=rng.integers(0, 34, n), t=t, p=rng.integers(0, 2, n))


def bench_binning(n: int, rounds: int) -> dict:
    """ToFrame vs bin_camera_events on one n-event stream: per-round speedups, median ms each, compile s."""
    events = random_stream(n)
    to_frame = tonic.transforms.ToFrame(sensor_size=SENSOR, n_time_bins=N_BINS)
    ours = lambda: bin_camera_events(events, SENSOR, N_BINS, clip=None, drop_last_timestamp=True)  # noqa: E731
    compile_s, mine = timed(ours)
    assert np.array_equal(to_frame(events).astype(np.int64), mine.astype(np.int64)), "binning differs from ToFrame"
    fns = {"tonic": lambda: to_frame(events), "ours": ours}
    reps = repeats_for(fns, UNIT_S)
    times = interleaved_times(fns, rounds, warmup=1, repeats=reps)
    return {"speedup": ratio_stats(times["tonic"], times["ours"]), "tonic_ms": median_ms(times["tonic"]),
            "ours_ms": median_ms(times["ours"]), "compile_s": compile_s, "calls_per_unit": reps}


def fsdd_clips(fs: int, count: int = 20, step: int = 150) -> list[tuple[str, np.ndarray]]:
    """(name, waveform (N,) at fs Hz) of every ``step``-th FSDD recording in sorted name order."""
    files = sorted((data_root() / "fsdd" / "recordings").glob("*.wav"))[::step][:count]
    return [(f.name, read_wav(f, fs)) for f in files]


def bench_cochlea_like_for_like(clips, fs: int, params: CochleaParams, rounds: int) -> dict:
    """Ours vs the numpy/scipy peer of the same algorithm: events compared per clip, then per clip
    ``rounds`` interleaved rounds (one pair per clip and round, units of ~UNIT_S on both sides)."""
    compile_s = timed(cochlea_encode, clips[0][1], fs, params)[0]
    ours_events = [cochlea_encode(wave, fs, params) for _, wave in clips]
    peer_events = [cochlea_encode_numpy(wave, fs, params) for _, wave in clips]
    equal = [bool(np.array_equal(a, b)) for a, b in zip(ours_events, peer_events)]
    peer_s, ours_s, reps = [], [], []
    for _, wave in clips:
        fns = {"peer": lambda: cochlea_encode_numpy(wave, fs, params), "ours": lambda: cochlea_encode(wave, fs, params)}
        reps.append(repeats_for(fns, UNIT_S))
        times = interleaved_times(fns, rounds, warmup=0, repeats=reps[-1])  # repeats_for warmed both up
        peer_s += times["peer"]
        ours_s += times["ours"]
    return {"speedup": ratio_stats(peer_s, ours_s), "peer_ms_per_clip": 1e3 * sum(peer_s) / (rounds * len(clips)),
            "ours_ms_per_clip": 1e3 * sum(ours_s) / (rounds * len(clips)), "compile_s": compile_s,
            "clips_events_equal": sum(equal), "clips": len(clips),
            "calls_per_unit": {k: [r[k] for r in reps] for k in ("peer", "ours")},
            "ours_events": [len(e) for e in ours_events], "peer_events": [len(e) for e in peer_events]}


def lauscher_encoder(fs: int):
    """lauscher's full waveform -> spikes chain at 64 channels, one pool worker; returns wave -> spike count."""
    from lauscher.audiowaves import MonoAudioWave
    from lauscher.helpers import CommandLineArguments
    from lauscher.transformations.wave2spike import Wave2Spike

    CommandLineArguments().num_concurrent_jobs = 1  # default None = os.cpu_count() Pool workers per stage
    np.random.seed(0)  # its bushy cells sample spikes with np.random
    return lambda wave: len(MonoAudioWave(wave, fs).transform(Wave2Spike(num_channels=64)).spike_times)


def bench_cochlea_lauscher(clips, fs: int, params: CochleaParams) -> dict:
    """Per clip one lauscher call (seconds, a unit of its own) paired with two units of ours (~UNIT_S
    of back-to-back calls each), one right before and one right after it: ours = their mean per call.
    Stops once LAUSCHER_BUDGET_S of lauscher time is spent."""
    lauscher = lauscher_encoder(fs)
    warmup_s = timed(lauscher, clips[0][1][:800])[0]
    theirs, ours, counts = [], [], []
    for _, wave in clips:
        if sum(theirs) > LAUSCHER_BUDGET_S:
            break
        fns = {"ours": lambda: cochlea_encode(wave, fs, params)}
        reps = repeats_for(fns, UNIT_S)
        before = interleaved_times(fns, 1, warmup=0, repeats=reps)["ours"][0]
        with gc_paused():
            seconds, count = timed(lauscher, wave)
        after = interleaved_times(fns, 1, warmup=0, repeats=reps)["ours"][0]
        theirs.append(seconds)
        counts.append(count)
        ours.append((before + after) / 2)
    return {"speedup": ratio_stats(theirs, ours), "lauscher_ms": [1e3 * s for s in theirs],
            "ours_ms": [1e3 * s for s in ours], "lauscher_events": counts, "warmup_s": warmup_s}


def bench_dvs(params: DVSParams, n_digits: int = 100, step: int = 50) -> dict:
    """Per-sample ms (one call each, after a warm-up) and event counts over every ``step``-th MNIST digit."""
    images, _ = load_mnist5k(data_root())
    digits = images[::step][:n_digits]
    compile_s = timed(emulate_saccades, digits[0], params)[0]
    runs = [timed(emulate_saccades, img, params, seed=0) for img in digits]
    return {"ms": [1e3 * s for s, _ in runs], "events": [len(ev) for _, ev in runs], "compile_s": compile_s,
            "nmnist_events": len(read_nmnist_bin(data_root() / "events" / "sample_nmnist.bin"))}


def machine() -> dict:
    """CPU count and library versions."""
    return {"cpu_count": os.cpu_count(), "cpu": platform.processor() or platform.machine(), "python":
            platform.python_version(), "numpy": np.__version__, "numba": numba.__version__, "tonic": tonic.__version__}


def summarise(small: dict, large: dict, peer: dict, laus: dict, dvs: dict, clips, fs: int, pinned: dict) -> dict:
    """The JSON report: headline ratios (medians of per-round ratios) with their spreads, raw times, counts."""
    n_laus = len(laus["lauscher_ms"])
    return {
        "binning_speedup_vs_tonic": large["speedup"]["median"],
        "binning_speedup_vs_tonic_spread": large["speedup"],
        "binning_speedup_vs_tonic_100k": small["speedup"]["median"],
        "binning_speedup_vs_tonic_100k_spread": small["speedup"],
        "cochlea_speedup_vs_numpy_scipy_same_algorithm": peer["speedup"]["median"],
        "cochlea_speedup_vs_numpy_scipy_same_algorithm_spread": peer["speedup"],
        "cochlea_speedup_vs_lauscher_different_algorithm": laus["speedup"]["median"],
        "cochlea_speedup_vs_lauscher_different_algorithm_spread": laus["speedup"],
        "cochlea_peer": PEER_LABEL,
        "cochlea_lauscher": LAUSCHER_LABEL,
        "cochlea_peer_events_equal_clips": f"{peer['clips_events_equal']} of {peer['clips']}",
        "cochlea_events_per_clip": {"ours": statistics.mean(peer["ours_events"]),
                                    "numpy_scipy_same_algorithm": statistics.mean(peer["peer_events"]),
                                    "lauscher_different_algorithm": statistics.mean(laus["lauscher_events"]),
                                    "ours_on_lauscher_clips": statistics.mean(peer["ours_events"][:n_laus])},
        "cochlea_ms_per_clip": {"ours": peer["ours_ms_per_clip"],
                                "numpy_scipy_same_algorithm": peer["peer_ms_per_clip"],
                                "lauscher_different_algorithm": statistics.mean(laus["lauscher_ms"])},
        "cochlea_clips": [name for name, _ in clips], "cochlea_audio_s_total": sum(len(w) for _, w in clips) / fs,
        "lauscher_clips_timed": n_laus,
        "lauscher_workers": "1 (CommandLineArguments().num_concurrent_jobs = 1: each of its 3 Pool stages "
                            "runs in one worker process; default is os.cpu_count() workers)",
        "dvs_ms_per_sample": statistics.median(dvs["ms"]),
        "dvs_event_count_ratio_vs_nmnist_in_sample": statistics.mean(dvs["events"]) / dvs["nmnist_events"],
        "dvs_event_count_validation": "IN-SAMPLE, not a validation: the emulator's thresholds (theta_on = theta_off "
                                      "= 0.52) were fitted so that these same 100 MNIST digits give the event count "
                                      "of this same, single real N-MNIST recording (events/sample_nmnist.bin), and "
                                      "its noise rate was measured on that recording; no other real recording is "
                                      "available to test it on",
        "dvs_ms_p90": float(np.percentile(dvs["ms"], 90)), "dvs_digits": len(dvs["ms"]),
        "dvs_events_mean": statistics.mean(dvs["events"]), "nmnist_events": dvs["nmnist_events"],
        "binning_ms": {"tonic_100k": small["tonic_ms"], "ours_100k": small["ours_ms"],
                       "tonic_1m": large["tonic_ms"], "ours_1m": large["ours_ms"]},
        # first calls; with a warm NUMBA_CACHE_DIR ours are cache loads, not compiles
        "compile_s": {"binning": small["compile_s"], "cochlea_ours": peer["compile_s"],
                      "cochlea_lauscher_warmup": laus["warmup_s"], "dvs": dvs["compile_s"]},
        "ratio_method": "speedup = peer time / our time, one pair per round, rounds interleaved in rotated order after "
                        "untimed warm-up rounds, GC off; headline = median of the per-round ratios, *_spread = their "
                        "quartiles, min, max and count (bench/support/timing.py)",
        "timing": f"timed units of ~{UNIT_S} s on both sides (k back-to-back calls of the faster one); binning "
                  f"34x34x2, T={N_BINS}, events over 1 s: 30 rounds at 100k and at 1M; cochlea vs numpy/scipy: 3 "
                  "rounds per clip; lauscher: one call per clip, paired with a unit of ours right before and one "
                  "right after it; dvs: 1 call per digit",
        "calls_per_unit": {"binning_100k": small["calls_per_unit"], "binning_1m": large["calls_per_unit"],
                           "cochlea_numpy_scipy": peer["calls_per_unit"]},
        "thread_pools": pinned,
        "machine": machine(),
    }


def main() -> None:
    pinned = pin_threads(1)
    fs, cochlea, dvs_params = sensor_settings()
    small, large = bench_binning(100_000, 30), bench_binning(1_000_000, 30)
    print(f"binning 1M: tonic {large['tonic_ms']:.1f} ms, ours {large['ours_ms']:.2f} ms, "
          f"speedup {large['speedup']['median']:.2f}", flush=True)
    dvs = bench_dvs(dvs_params)
    print(f"dvs: median {statistics.median(dvs['ms']):.2f} ms/sample", flush=True)
    clips = fsdd_clips(fs)
    peer = bench_cochlea_like_for_like(clips, fs, cochlea, rounds=3)
    print(f"cochlea vs numpy/scipy: {peer['speedup']['median']:.1f}x, events equal on "
          f"{peer['clips_events_equal']} of {peer['clips']} clips", flush=True)
    laus = bench_cochlea_lauscher(clips, fs, cochlea)
    print(f"cochlea vs lauscher (different algorithm): {laus['speedup']['median']:.0f}x", flush=True)
    print(json.dumps(summarise(small, large, peer, laus, dvs, clips, fs, pinned)))


if __name__ == "__main__":
    main()
