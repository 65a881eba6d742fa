"""Encoder benchmark: our Numba encoders against their peers, in one process, on the same inputs.

- binning: ``sensors.binning.bin_camera_events`` vs ``tonic.transforms.ToFrame`` on random sorted
  34x34x2 streams of 100k and 1M events (outputs checked equal first);
- cochlea: ``sensors.cochlea.cochlea_encode`` (64 channels) vs lauscher's ``Wave2Spike`` (the SHD
  converter) on 20 real FSDD clips at 8 kHz;
- DVS: ``sensors.dvs_emulator.emulate_saccades`` on 100 real MNIST digits, time per sample and event
  count against the real N-MNIST sample.

Times are steady state: one warm-up call first (reported under ``compile_s``), then the median of
repeated calls (lauscher: one call per clip, it takes seconds). The last line printed is one JSON
object with every number. Run from the repo root:  EDGE_TAAF_DATA=/work/shared/data python bench/encoders.py
"""
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402
import numpy as np  # noqa: E402
import tonic  # noqa: E402

from sensors.audio_io import read_wav  # noqa: E402
from sensors.binning import bin_camera_events  # noqa: E402
from sensors.cochlea import cochlea_encode  # noqa: E402
from sensors.dvs_emulator import emulate_saccades  # noqa: E402
from sensors.events import CAMERA_DTYPE, make_events  # noqa: E402
from sensors.mnist import load_mnist5k  # noqa: E402
from sensors.paths import data_root  # noqa: E402
from sensors.readers import read_nmnist_bin  # noqa: E402

SENSOR, N_BINS, FS = (34, 34, 2), 20, 8000
LAUSCHER_BUDGET_S = 180.0  # stop timing lauscher after this much; the speedup uses the clips timed


def timed(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` once; return (seconds, result)."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def median_seconds(fn, repeats: int, *args, **kwargs) -> float:
    """Median wall time (s) of ``repeats`` calls; call once before to exclude compile / warm-up."""
    return statistics.median(timed(fn, *args, **kwargs)[0] for _ in range(repeats))

def random_stream(n: int, seed: int = 0) -> np.ndarray:
    """n camera events, uniform over the 34x34x2 sensor, t sorted over 1 s (microseconds)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 1_000_000, n))
    return make_events(CAMERA_DTYPE, x=rng.integers(0, 34, n), y=rng.integers(0, 34, n), t=t, p=rng.integers(0, 2, n))


def bench_binning(n: int, repeats: int) -> dict:
    """ToFrame vs bin_camera_events on one n-event stream: ms each (median of repeats) and compile s."""
    events = random_stream(n)
    to_frame = tonic.transforms.ToFrame(sensor_size=SENSOR, n_time_bins=N_BINS)
    ours = lambda ev: bin_camera_events(ev, SENSOR, N_BINS, clip=None, drop_last_timestamp=True)  # noqa: E731
    compile_s, mine = timed(ours, events)
    assert np.array_equal(to_frame(events).astype(np.int64), mine.astype(np.int64)), "binning differs from ToFrame"
    return {"tonic_ms": 1e3 * median_seconds(to_frame, repeats, events),
            "ours_ms": 1e3 * median_seconds(ours, repeats, events), "compile_s": compile_s}


def fsdd_clips(count: int = 20, step: int = 150) -> list[tuple[str, np.ndarray]]:
    """(name, 8 kHz waveform (N,)) of every ``step``-th FSDD recording in sorted name order."""
    files = sorted((data_root() / "fsdd" / "recordings").glob("*.wav"))[::step][:count]
    return [(f.name, read_wav(f, FS)) for f in files]


def lauscher_encoder():
    """lauscher's full waveform -> spikes chain at 64 channels, one pool worker; returns wave -> spike count."""
    from lauscher.audiowaves import MonoAudioWave
    from lauscher.helpers import CommandLineArguments
    from lauscher.transformations.wave2spike import Wave2Spike

    CommandLineArguments().num_concurrent_jobs = 1  # default None = os.cpu_count() Pool workers per stage
    np.random.seed(0)  # its bushy cells sample spikes with np.random
    return lambda wave: len(MonoAudioWave(wave, FS).transform(Wave2Spike(num_channels=64)).spike_times)


def bench_cochlea(repeats: int = 5) -> dict:
    """Per-clip ms of lauscher (one call) and ours (median of repeats) on the same clips."""
    clips = fsdd_clips()
    lauscher = lauscher_encoder()
    compile_s = {"ours": timed(cochlea_encode, clips[0][1], FS)[0], "lauscher": timed(lauscher, clips[0][1][:800])[0]}
    theirs = []  # (seconds, spike count) per clip, until the time budget is spent
    for _, wave in clips:
        if sum(seconds for seconds, _ in theirs) <= LAUSCHER_BUDGET_S:
            theirs.append(timed(lauscher, wave))
    timed_clips = clips[: len(theirs)]
    ours_s = [median_seconds(cochlea_encode, repeats, wave, FS) for _, wave in timed_clips]
    return {"lauscher_ms": [1e3 * s for s, _ in theirs], "ours_ms": [1e3 * s for s in ours_s],
            "lauscher_events": [n for _, n in theirs], "compile_s": compile_s,
            "ours_events": [len(cochlea_encode(wave, FS)) for _, wave in timed_clips],
            "clips": [name for name, _ in timed_clips], "audio_s": [len(w) / FS for _, w in timed_clips]}


def bench_dvs(n_digits: int = 100, step: int = 50) -> dict:
    """Per-sample ms (one call each, after a warm-up) and event counts over every ``step``-th MNIST digit."""
    images, _ = load_mnist5k(data_root())
    digits = images[::step][:n_digits]
    compile_s = timed(emulate_saccades, digits[0])[0]
    runs = [timed(emulate_saccades, img, seed=0) for img in digits]
    return {"ms": [1e3 * s for s, _ in runs], "events": [len(ev) for _, ev in runs], "compile_s": compile_s,
            "nmnist_events": len(read_nmnist_bin(data_root() / "events" / "sample_nmnist.bin"))}


def machine() -> dict:
    """CPU count and library versions."""
    return {"cpu_count": os.cpu_count(), "cpu": platform.processor() or platform.machine(), "python":
            platform.python_version(), "numpy": np.__version__, "numba": numba.__version__, "tonic": tonic.__version__}


def summarise(small: dict, large: dict, coch: dict, dvs: dict) -> dict:
    """The JSON report: the four headline figures, the raw times behind them, counts and machine."""
    return {
        "binning_speedup_vs_tonic": large["tonic_ms"] / large["ours_ms"],
        "binning_speedup_vs_tonic_100k": small["tonic_ms"] / small["ours_ms"],
        "cochlea_speedup_vs_lauscher": sum(coch["lauscher_ms"]) / sum(coch["ours_ms"]),
        "dvs_ms_per_sample": statistics.median(dvs["ms"]),
        "dvs_event_count_ratio_vs_nmnist": statistics.mean(dvs["events"]) / dvs["nmnist_events"],
        "binning_ms": {"tonic_100k": small["tonic_ms"], "ours_100k": small["ours_ms"],
                       "tonic_1m": large["tonic_ms"], "ours_1m": large["ours_ms"]},
        "cochlea_ms_per_clip": {k: statistics.mean(coch[f"{k}_ms"]) for k in ("lauscher", "ours")},
        "cochlea_total_ms": {"lauscher": sum(coch["lauscher_ms"]), "ours": sum(coch["ours_ms"])},
        "cochlea_events_per_clip": {k: statistics.mean(coch[f"{k}_events"]) for k in ("lauscher", "ours")},
        "cochlea_clips": coch["clips"], "cochlea_audio_s_total": sum(coch["audio_s"]),
        "lauscher_clips_timed": len(coch["lauscher_ms"]),
        "lauscher_workers": "1 (CommandLineArguments().num_concurrent_jobs = 1: each of its 3 Pool stages "
                            "runs in one worker process; default is os.cpu_count() workers)",
        "dvs_ms_p90": float(np.percentile(dvs["ms"], 90)), "dvs_digits": len(dvs["ms"]),
        "dvs_events_mean": statistics.mean(dvs["events"]), "nmnist_events": dvs["nmnist_events"],
        # first calls; with a warm NUMBA_CACHE_DIR ours are cache loads, not compiles
        "compile_s": {"binning": small["compile_s"], "cochlea_ours": coch["compile_s"]["ours"],
                      "cochlea_lauscher_warmup": coch["compile_s"]["lauscher"], "dvs": dvs["compile_s"]},
        "timing": f"median of repeats after one warm-up call (binning, 34x34x2, T={N_BINS}, events over 1 s: 50 "
                  "at 100k, 15 at 1M; cochlea ours: 5 per clip; lauscher: 1 per clip; dvs: 1 per digit)",
        "machine": machine(),
    }


def main() -> None:
    small, large = bench_binning(100_000, 50), bench_binning(1_000_000, 15)
    print(f"binning 1M: tonic {large['tonic_ms']:.1f} ms, ours {large['ours_ms']:.2f} ms", flush=True)
    dvs = bench_dvs()
    print(f"dvs: median {statistics.median(dvs['ms']):.2f} ms/sample", flush=True)
    coch = bench_cochlea()
    print(f"cochlea: lauscher {sum(coch['lauscher_ms']):.0f} ms, ours {sum(coch['ours_ms']):.1f} ms", flush=True)
    print(json.dumps(summarise(small, large, coch, dvs)))


if __name__ == "__main__":
    main()
