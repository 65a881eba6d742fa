"""Energy of an always-on stream: dynamic energy from what the hardware did, static power over the time it ran
(docs/accelerator.md, "Streams in chunks"; issue #24, "Idle priced truly").

Per inference, firmware_sim.energy prices static power over the latency: the chip is assumed busy, then off. A
device that runs always on pays its leakage for every second of the stream, busy or idle, and while the input is
quiet its dynamic energy is only what the quiet input makes it do: the front-end's per-step scan, the events that
still arrive (background activity), the catch-up leak of the neurons they reach, the armed neurons, and the
readout's per-step work. The counters of a stream (Runner.stream, summed with Counts.then) hold exactly that,
priced here by the same rules and dataflows as every inference (firmware_sim.dataflow.price_units).

Reported apart, per stream and per second:
  dynamic   the network and the event front-end: every unit's operations and memory words;
  sensor    the cochlea's digital filterbank (the hardware config's ``sensor_frontend``), which runs with the
            microphone: channels x sample_rate_hz x seconds channel-samples (every network pays it alike);
  static    ``static_power_mw`` x seconds: no power gating is declared by any shipped config, so leakage runs for
            the whole stream;
  busy_share  cycles / (clock x seconds): the share of the time the chip computes; above 1 it cannot keep up.
"""
from __future__ import annotations

import math

from firmware_sim.counters import Counts
from firmware_sim.dataflow import price_units
from firmware_sim.energy import price_sensor
from firmware_sim.hardware import Hardware
from firmware_sim.program import Program


def stream_energy(program: Program, counts: Counts, hw: Hardware, seconds: float) -> dict:
    """Energy of a stream of ``seconds`` whose counters (of ``counts.n_samples`` streams run side by side, summed
    over the chunks) are ``counts``: per stream, in uJ, and per second, in uJ/s (uW)."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds={seconds!r}: a stream lasts a positive, finite number of seconds")
    n = max(counts.n_samples, 1)
    priced, choice = price_units(program, counts, hw)
    by_unit = {name: sum(pj.values()) / n * 1e-6 for name, (pj, _) in priced.items()}
    cycles = sum(c for _, c in priced.values()) / n
    sensor_uj = 0.0
    for name in program.inputs:
        row = price_sensor(program, name, hw)
        if row is not None:          # priced per window_s of signal: scaled to the stream's seconds
            sensor_uj += sum(row[0].values()) * 1e-6 * seconds / row[2]["window_s"]
    dynamic = sum(by_unit.values())
    static = hw.static_power_mw * seconds * 1e3          # mW x s = mJ = 1e3 uJ
    busy = cycles / (hw.clock_mhz * 1e6) / seconds
    return {"hardware": hw.name, "seconds": seconds, "streams": counts.n_samples,
            "dynamic_uj": dynamic, "sensor_uj": sensor_uj, "static_uj": static,
            "energy_uj": dynamic + sensor_uj + static,
            "dynamic_uj_per_s": dynamic / seconds, "sensor_uj_per_s": sensor_uj / seconds,
            "static_uj_per_s": static / seconds, "energy_uj_per_s": (dynamic + sensor_uj + static) / seconds,
            "busy_share": busy, "real_time": busy <= 1.0,
            "by_unit_uj": by_unit, "dataflows": {k: v["chosen"] for k, v in choice.items()},
            "power_gating": "none declared: static power over the whole stream"}
