"""The accelerator's integer semantics, written once (docs/accelerator.md explains each line).

Everything here is plain Python / numpy: quant/ imports it to build the matching training-time
arithmetic, firmware_sim/ runs it, the ONNX exporter writes CONTRACT_VERSION into the file.
No other module may restate one of these constants.
"""
from __future__ import annotations

import numpy as np

CONTRACT_VERSION = "edge-taaf-int/2"   # /2: the sensor front-end stage
METADATA_PROGRAM_KEY = "edge_taaf.program"   # metadata_props entry holding the program JSON
METADATA_VERSION_KEY = "edge_taaf.contract"

# ---- weights: symmetric, narrow range, power-of-two scale per tensor ----
WEIGHT_BITS_DEFAULT = 8
WEIGHT_BITS_MIN, WEIGHT_BITS_MAX = 4, 8
BIAS_BITS = 32                     # readout / score biases, int32 at the product scale

# ---- neuron state ----
STATE_BITS = 16                    # membrane: saturating signed 16-bit
ACC_BITS = 32                      # synaptic accumulator
EVENT_BITS = 32                    # an address-event (layer, channel, y, x, count) between layers
RESET = "subtract"                 # V <- V - theta * s  (the only reset the accelerator has)
LEAK_OFF = STATE_BITS              # leak_shift = 16: no leak, an integrate-and-fire neuron. (A 16-bit membrane shifted
                                   # right by 16 would keep its sign, -1 for a negative v; the contract's leak is 0.)
EXACT_LIMIT = 2 ** 24              # every intermediate magnitude stays below this (float32-exact)

# ---- TAAF attention: softmax over time in base 2 through an exp2 lookup ----
EXP2_FRAC_BITS = 4                 # LUT resolution: 1/16 of a log2 unit
EXP2_ONE_BITS = 8                  # LUT[0] = 2^8 = 256 represents attention weight 1
EXP2_LUT = tuple(int(round(2 ** (EXP2_ONE_BITS - i / 2 ** EXP2_FRAC_BITS))) for i in range(2 ** EXP2_FRAC_BITS))
READOUT_MAX_BITS = 11              # per-step logits are shifted right until |l_t| < 2^11 before weighting
SCORE_LIMIT = EXACT_LIMIT // 2     # |e_t| < 2^23, so that a score difference max - e_t stays below 2^24

# ---- sensor front-end (firmware_sim.frontend): pooling, threshold, refractory, adaptive level ----
FRONTEND_POOLS = (1, 2, 4)         # sum-pooling factors per input axis (vision (P, H, W): [2, 2, 2] merges
                                   # the polarities and pools 2x2 pixels, as Speck's DVS layer; audio (C,))
FRONTEND_MODES = ("count", "adaptive")
COUNT_BITS = 8                     # a front-end count (and an input count) is one byte: 0..255
REFRACTORY_BITS = 4                # per-element refractory countdown: 0..15 steps
LEVEL_BITS = 16                    # adaptive mode: per-element level m < 256 x 2^8 (count < 2^8, leak <= 8)
ADAPT_LEAK_SHIFTS = (1, 8)         # adaptive mode: m <- m - (m >> leak) + x, leak in 1..8
ADAPT_GAIN_SHIFT_MAX = 15          # adaptive mode: threshold max(min_count, m >> gain), gain in 0..15


def check_weight_bits(bits: int, where: str = "weight_bits") -> int:
    if int(bits) != bits or not WEIGHT_BITS_MIN <= bits <= WEIGHT_BITS_MAX:
        raise ValueError(f"{where}={bits} is outside the accelerator's {WEIGHT_BITS_MIN}..{WEIGHT_BITS_MAX} bits")
    return int(bits)


def weight_limit(bits: int) -> int:
    """Largest |w| of a narrow-range signed weight: 2^(bits-1) - 1 (127 at 8 bits)."""
    return 2 ** (check_weight_bits(bits) - 1) - 1


def stamp_bits(max_T: int) -> int:
    """Bits of the per-neuron time stamp (last updated step, 0..max_T-1) stored beside the membrane
    for the event-driven neuron update (docs/accelerator.md, "Dataflow")."""
    return max(1, (int(max_T) - 1).bit_length())


def state_range(bits: int = STATE_BITS) -> tuple[int, int]:
    """(min, max) of the saturating membrane register."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def leak(v, leak_shift: int):
    """The leak v >> k (an arithmetic shift: floor division by 2^k), and 0 at k = LEAK_OFF (IF). Works on
    Python ints and int64 numpy arrays."""
    return v * 0 if leak_shift >= LEAK_OFF else v >> leak_shift


def lif_step(v: np.ndarray, current: np.ndarray, theta: int, leak_shift: int, state_bits: int = STATE_BITS):
    """One integer LIF step (the reference every implementation must equal).

        u = sat(v - leak(v, k) + I);  s = (u >= theta);  v' = u - theta * s

    leak(v, k) = v >> k, an arithmetic shift (floor division by 2^k), for k in 0..15, and 0 for k = LEAK_OFF
    (16: integrate-and-fire). Returns (v', s, saturated) where saturated marks the neurons whose u hit the
    register limit. int64 arrays in, int64 out.
    """
    lo, hi = state_range(state_bits)
    raw = v - leak(v, leak_shift) + current
    u = np.clip(raw, lo, hi)
    s = (u >= theta).astype(np.int64)
    return u - theta * s, s, raw != u


def exp2_weights(e: np.ndarray, score_log2_scale: int) -> np.ndarray:
    """Unnormalised attention u_t = 2^((e_t - max_t e_t) * 2^score_log2_scale) on the integer grid.

    e: (T, ...) int64 step scores whose real value is e * 2^score_log2_scale (log2 units).
    d_t = max - e_t >= 0 is brought to 1/16 log2 units (floor shift), then
    u_t = EXP2_LUT[d & 15] >> (d >> 4). No division: argmax_k sum_t u_t l_t needs none.
    """
    d = e.max(axis=0, keepdims=True) - e
    shift = -score_log2_scale - EXP2_FRAC_BITS     # d * 2^scale in units of 2^-4
    q = d >> shift if shift >= 0 else d << (-shift)
    lut = np.asarray(EXP2_LUT, dtype=np.int64)
    whole = np.minimum(q >> EXP2_FRAC_BITS, 62)
    return lut[q & (2 ** EXP2_FRAC_BITS - 1)] >> whole
