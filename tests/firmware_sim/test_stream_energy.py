"""firmware_sim.stream_energy: a stream priced per second, dynamic, sensor and static apart."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_taaf import CONFIG_DIR
from firmware_sim.dataflow import price_units
from firmware_sim.hardware import load_hardware as load_any
from firmware_sim.run import Runner
from firmware_sim.stream_energy import stream_energy
from tests.support.sim_programs import random_inputs, random_program


def load_hardware(name):
    return load_any(name, Path(CONFIG_DIR) / "hardware")


def _stream(program, x, cuts):
    runner, state, counts, t = Runner(program), None, None, 0
    for n in cuts:
        res, state = runner.stream({k: v[t:t + n] for k, v in x.items()}, state)
        counts = res.counts if counts is None else counts.then(res.counts)
        t += n
    return counts


def test_static_runs_for_every_second_and_dynamic_follows_the_counters():
    rng = np.random.default_rng(0)
    program = random_program(rng, fusion="concat", frontends=True)
    x = random_inputs(rng, program, 12, 2, 0.4)
    hw = load_hardware("horowitz45nm")
    whole = _stream(program, x, [12])
    chunked = _stream(program, x, [5, 4, 3])
    a, b = stream_energy(program, whole, hw, 0.12), stream_energy(program, chunked, hw, 0.12)
    assert a["dynamic_uj"] == pytest.approx(b["dynamic_uj"], rel=1e-12)     # however the stream was cut
    assert a["static_uj"] == pytest.approx(hw.static_power_mw * 0.12 * 1e3)
    assert a["static_uj_per_s"] == pytest.approx(hw.static_power_mw * 1e3)
    priced, _ = price_units(program, whole, hw)
    assert a["dynamic_uj"] == pytest.approx(sum(sum(pj.values()) for pj, _ in priced.values()) / 2 * 1e-6)
    assert a["energy_uj_per_s"] == pytest.approx((a["dynamic_uj"] + a["sensor_uj"] + a["static_uj"]) / 0.12)
    assert 0 < a["busy_share"] < 1 and a["real_time"]


def test_a_quiet_stream_costs_less_dynamic_energy_than_an_active_one():
    rng = np.random.default_rng(1)
    program = random_program(rng, fusion="taaf", frontends=False)
    hw = load_hardware("horowitz45nm")
    busy = random_inputs(rng, program, 10, 1, 0.5)
    quiet = {k: np.zeros_like(v) for k, v in busy.items()}
    active, idle = (stream_energy(program, _stream(program, x, [10]), hw, 0.1) for x in (busy, quiet))
    assert idle["dynamic_uj"] < active["dynamic_uj"] and idle["static_uj"] == active["static_uj"]


@pytest.mark.parametrize("seconds", [0, -1.0, float("inf"), "1s"])
def test_a_bad_duration_is_refused(seconds):
    rng = np.random.default_rng(2)
    program = random_program(rng, fusion="concat")
    counts = _stream(program, random_inputs(rng, program, 4, 1), [4])
    with pytest.raises(ValueError, match="seconds=.*positive, finite number of seconds"):
        stream_energy(program, counts, load_hardware("horowitz45nm"), seconds)


def test_counters_of_other_streams_do_not_continue():
    rng = np.random.default_rng(3)
    program = random_program(rng, fusion="concat")
    one = _stream(program, random_inputs(rng, program, 4, 1), [4])
    two = _stream(program, random_inputs(rng, program, 4, 2), [4])
    with pytest.raises(ValueError, match="cannot continue counters of 1 streams"):
        one.then(two)
