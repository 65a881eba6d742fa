"""Run an integer Program over a (T, B, ...) batch: logits, every layer's spikes, counters.

    result = simulate(program, {"vision": v, "audio": a})     # v (T, B, 2, 34, 34), a (T, B, 64)
    result = simulate_sample(program, {"vision": v1, "audio": a1})   # one sample: (T, ...) arrays

Inputs are integer spike counts (any integer or bool dtype) in 0..max of the program's input, over
exactly the program's T steps. Anything else (missing input, wrong shape, float dtype, out-of-range
count, T > max_T, T != the program's T without ``allow_other_T=True``) raises a ContractError naming
the input and what was expected (docs/accelerator.md, "Inputs at run time"). The same rules, with the
same messages, guard quant/ integer mode and the onnxruntime runner.
"""
from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numba
import numpy as np

from firmware_sim import layer_kernels, readout_kernels, spec
from firmware_sim.counters import Counts, Unit
from firmware_sim.frontend import FRONTEND_COLUMNS
from firmware_sim.program import TAAF, TAAF_MODAL, ContractError, Layer, Program
from firmware_sim.program_io import MODALITY_LOGITS


PARALLEL_MIN_BATCH = 8
# The threads a batch is split over (Python threads running the nogil kernels; Numba's own threading layer is
# never used). Read from Numba's configuration, not numba.get_num_threads(): that call launches Numba's OpenMP
# pool, which sets the process's OpenMP thread count (torch's too) to every core, so a process that simulates
# and then trains (a LOSO study, a sweep) would train with oversubscribed threads, several times slower.
_threads = max(1, int(numba.config.NUMBA_NUM_THREADS))


def set_threads(n: int) -> int:
    """Split batches over at most ``n`` threads from now on (1: the calling thread alone); returns the old count."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_threads: n={n!r}, expected a whole number >= 1")
    old, _threads = _threads, n
    return old


def get_threads() -> int:
    """The most threads a batch is split over."""
    return _threads


@dataclass
class SimResult:
    """Integer outputs (int64) named as in the ONNX file, plus counters.

    logits (B, K); step_logits (T, B, K); scores (T, B) (zeros for concat); attention (T, B); for
    taaf_modal with M modalities: step_logits (T, B, M, K), scores and attention (T, B, M), and with
    modality_logits, modal_logits: modality -> (B, K) its own prediction y_m (output ``logits_<m>``);
    spikes: layer name -> (T, B, *out_shape) uint8; frontend: input name -> (T, B, *out_shape) uint8,
    the counts the front-end passed to the first layer."""

    logits: np.ndarray
    step_logits: np.ndarray
    scores: np.ndarray
    attention: np.ndarray
    spikes: dict[str, np.ndarray]
    counts: Counts
    frontend: dict[str, np.ndarray]
    modal_logits: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def predictions(self) -> np.ndarray:
        """argmax of the logits, lowest class index on ties (B,)."""
        return np.argmax(self.logits, axis=1)

    def outputs(self) -> dict[str, np.ndarray]:
        """Every output under its ONNX output name (``spikes.<layer>`` for spikes)."""
        out = {"logits": self.logits, "step_logits": self.step_logits, "scores": self.scores, "attention": self.attention}
        out.update({MODALITY_LOGITS[m]: y for m, y in self.modal_logits.items()})
        out.update({f"spikes.{name}": s for name, s in self.spikes.items()})
        out.update({f"frontend.{name}": y for name, y in self.frontend.items()})
        return out


def check_counts(name: str, arr: np.ndarray, top: int, floats: bool = False) -> None:
    """ContractError naming input ``name`` unless ``arr`` holds whole spike counts in 0..``top``.

    The simulator (``floats=False``) takes integer or bool dtypes only. onnxruntime's graph inputs are float32,
    so its runner passes ``floats=True``: float arrays are taken when every value is a finite whole number."""
    if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.integer):
        if not floats or not np.issubdtype(arr.dtype, np.floating):
            raise ContractError(f"input {name!r}: dtype {arr.dtype}, expected integer spike counts "
                                f"(convert with .astype(np.uint8) after checking they are whole numbers)")
        bad = ~np.isfinite(arr) | (arr != np.floor(arr)) if arr.size else np.zeros(0, bool)
        if bad.any():
            raise ContractError(f"input {name!r}: value {float(arr[bad].flat[0])!r} is not a whole number, expected integer "
                                f"spike counts 0..{top}")
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > top:
            raise ContractError(f"input {name!r}: counts span {int(lo)}..{int(hi)}, expected 0..{top} "
                                f"(inputs.{name}.max in the program)")


def check_steps(n_t: int, program_T: int, max_T: int, allow_other_T: bool = False) -> None:
    """ContractError unless a stream of ``n_t`` steps may run: 1..max_T always (beyond it the readout can pass
    2^24), and exactly the program's T unless the caller says another length is meant (``allow_other_T``).
    A stream of another length runs exactly its own steps: never padded, never cut."""
    if not 1 <= n_t <= max_T:
        raise ContractError(f"inputs: T={n_t} steps, expected 1..max_T={max_T} (beyond it the readout can pass 2^24)")
    if n_t != program_T and not allow_other_T:
        raise ContractError(f"inputs: T={n_t} steps, expected the program's T={program_T}; a stream of another length "
                            f"(1..max_T={max_T}) runs only with allow_other_T=True, over exactly its own steps (never "
                            "padded or cut; docs/accelerator.md, 'Inputs at run time')")


def check_inputs(program: Program, inputs: Mapping[str, np.ndarray],
                 allow_other_T: bool = False) -> tuple[dict[str, np.ndarray], int, int]:
    """Validate and convert inputs to contiguous uint8 (T, B, *shape); return (arrays, T, B)."""
    if not isinstance(inputs, Mapping):
        raise ContractError(f"inputs must be a mapping name -> array with names {sorted(program.inputs)}, "
                            f"got {type(inputs).__name__}")
    missing = sorted(set(program.inputs) - set(inputs))
    extra = sorted(set(inputs) - set(program.inputs))
    if missing or extra:
        raise ContractError(f"inputs: missing {missing}, unexpected {extra}; the program's inputs are {sorted(program.inputs)}")
    out, tb = {}, None
    for name, (shape, top) in program.inputs.items():
        arr = np.asarray(inputs[name])
        if arr.ndim != 2 + len(shape) or tuple(arr.shape[2:]) != tuple(shape):
            raise ContractError(f"input {name!r}: shape {arr.shape}, expected (T, B, {', '.join(map(str, shape))})")
        if tb is not None and arr.shape[:2] != tb:
            raise ContractError(f"input {name!r}: (T, B) = {arr.shape[:2]} but another input has {tb}")
        tb = arr.shape[:2]
        check_counts(name, arr, top)
        out[name] = np.ascontiguousarray(arr, dtype=np.uint8)
    n_t, n_b = tb
    check_steps(n_t, program.T, program.max_T, allow_other_T)
    if n_b < 1:
        raise ContractError("inputs: batch size B=0, expected B >= 1")
    return out, n_t, n_b


def batch_slices(batch: int) -> list[tuple[int, int]]:
    """(b0, b1) chunks of a batch, one per thread; one chunk for small batches or a single thread."""
    n = min(_threads, batch // PARALLEL_MIN_BATCH)
    if n < 2:
        return [(0, batch)]
    edges = [batch * i // n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


def run_batched(kernel, batch: int, *args) -> None:
    """kernel(*args, b0, b1) over the batch; chunks run in threads (the kernels release the GIL)."""
    slices = batch_slices(batch)
    if len(slices) == 1:
        kernel(*args, 0, batch)
        return
    with ThreadPoolExecutor(len(slices)) as pool:
        for f in [pool.submit(kernel, *args, b0, b1) for b0, b1 in slices]:
            f.result()


def _run_layer(layer: Layer, x: np.ndarray, w_run: np.ndarray, leak_shift: int, lo: int, hi: int,
               reference: bool = False, state: "LayerState | None" = None):
    """One spiking layer over the batch: (spikes (T, B, *out_shape) uint8, counters summed over B).
    ``reference`` runs the kernel that steps every neuron instead of the event-driven one. ``state`` (a stream's
    membranes and uncounted catch-up leaks, firmware_sim.stream) is read at the first step and left as of the
    last; None: a fresh window."""
    n_t, n_b = x.shape[:2]
    out = np.zeros((n_t, n_b, *layer.out_shape), np.uint8)
    counts = np.zeros((n_b, len(layer_kernels.LAYER_COLUMNS)), np.int64)
    state = LayerState.fresh(layer, n_b) if state is None else state
    if layer.kind == "conv":
        kernel = layer_kernels.conv_layer_reference if reference else layer_kernels.conv_layer
        run_batched(kernel, n_b, x.reshape(n_t, n_b, *layer.in_shape), w_run, layer.stride, layer.padding,
                    layer.theta, leak_shift, lo, hi, out, counts, state.v, state.carry)
    else:
        kernel = layer_kernels.dense_layer_reference if reference else layer_kernels.dense_layer
        run_batched(kernel, n_b, x.reshape(n_t, n_b, -1), w_run, layer.theta, leak_shift, lo, hi, out, counts,
                    state.v, state.carry)
    return out, counts.sum(0)


@dataclass
class LayerState:
    """A spiking layer's state between two chunks of a stream, per sample, in the kernels' neuron order
    (channel-last (H', W', C_out) for a conv layer): v (B, N) int64 membranes as of the last step; carry (B, N)
    int32 catch-up leak steps not yet counted (counted when the neuron is next updated, as one run would)."""

    v: np.ndarray
    carry: np.ndarray

    @classmethod
    def fresh(cls, layer: Layer, batch: int) -> "LayerState":
        return cls(np.zeros((batch, layer.n_out), np.int64), np.zeros((batch, layer.n_out), np.int32))


def kernel_weights(layer: Layer) -> np.ndarray:
    """The weight memory as the kernels read it: dense (in, out), conv (C_in, k, k, C_out), int8."""
    w = layer.weight.astype(np.int8)
    return np.ascontiguousarray(w.T if layer.kind == "dense" else w.transpose(1, 2, 3, 0))


def fanout(layer: Layer) -> np.ndarray:
    """Synapses leaving each input of a layer (array of in_shape): a dense input reaches N_out neurons, a conv
    input at (c, y, x) the C_out neurons of every output position its kernel taps hit (fewer at the borders)."""
    if layer.kind == "dense":
        return np.full(layer.in_shape, layer.n_out, np.int64)

    def reach(size: int, out_size: int) -> np.ndarray:
        k, s, p = layer.kernel, layer.stride, layer.padding
        n = np.arange(size)[:, None] + p - np.arange(k)[None, :]
        return ((n >= 0) & (n % s == 0) & (n // s < out_size)).sum(1)
    _, h, w = layer.in_shape
    per_pos = np.outer(reach(h, layer.out_shape[1]), reach(w, layer.out_shape[2])) * layer.out_shape[0]
    return np.broadcast_to(per_pos, layer.in_shape).astype(np.int64)


class Runner:
    """A Program prepared for the kernels (weights laid out once); call it on inputs like ``simulate``.

    ``reference=True`` runs every spiking layer with the kernel that steps every neuron (the reference
    the event-driven kernels are tested against); spikes and counters are the same."""

    def __init__(self, program: Program, reference: bool = False):
        self.program, self.reference = program, reference
        self._fingerprint = None     # the program's SHA-256 (firmware_sim.stream), computed at the first stream call
        self.weights = {layer.name: kernel_weights(layer) for layer in program.layers}
        self.fanout = {layer.name: fanout(layer) for layer in program.layers}
        r = program.readout
        i64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
        taaf = r.fusion == TAAF
        n_z = r.weight.shape[1]
        # A missing modality reaches the kernel as zero features (D = 0) under a zero one-tap warp.
        no_warp = np.zeros(1, np.int64)
        warps = tuple(i64(w) if w is not None else no_warp for w in (r.warp_audio, r.warp_vision))
        lut = np.asarray(spec.EXP2_LUT, np.int64)
        score_shift = -r.score_log2 - spec.EXP2_FRAC_BITS
        if r.fusion == TAAF_MODAL:
            br = [r.branches[m] for m in r.modalities]   # z order: U_m^T rows stacked as the features are
            self.readout_args = (
                *warps, i64(r.weight.T), i64([b.bias for b in br]), i64(np.concatenate([b.hidden_weight.T for b in br])),
                i64([b.hidden_bias for b in br]), i64([b.out_weight[0] for b in br]), i64([b.out_bias[0] for b in br]),
                r.logit_shift, r.hidden_shift, score_shift, r.modality_logits, lut)
        else:
            self.readout_args = (
                *warps, i64(r.weight.T), i64(r.bias),
                i64(r.hidden_weight.T) if taaf else np.zeros((n_z, 0), np.int64),
                i64(r.hidden_bias) if taaf else np.zeros(0, np.int64),
                i64(r.out_weight[0]) if taaf else np.zeros(0, np.int64),
                int(r.out_bias[0]) if taaf else 0,
                r.logit_shift, r.hidden_shift if taaf else 0, score_shift, taaf, lut)

    def __call__(self, inputs: Mapping[str, np.ndarray], allow_other_T: bool = False) -> SimResult:
        """Run a (T, B, ...) batch; T must be the program's unless ``allow_other_T`` (then 1..max_T steps, run as given)."""
        acts, n_t, n_b = check_inputs(self.program, inputs, allow_other_T)
        return self._run(acts, n_t, n_b, None)

    def stream(self, inputs: Mapping[str, np.ndarray], state=None) -> tuple[SimResult, object]:
        """Run the next chunk (T, B, ...) of B streams (1..max_T steps) from ``state`` (a firmware_sim.stream.StreamState;
        None: the streams' start) and return (the chunk's result, the state after it). Every per-step output (spikes, front-end counts, step
        logits, scores) and every counter summed over chunks equals one run over the whole stream, however it
        is cut (firmware_sim.stream, tests/firmware_sim/test_stream.py); ``logits`` and ``attention`` are the
        readout over this chunk's steps as a window. ``state`` is not modified; a state of another program or
        batch size is a ContractError."""
        from firmware_sim.stream import StreamState, program_fingerprint
        acts, n_t, n_b = check_inputs(self.program, inputs, allow_other_T=True)
        if self._fingerprint is None:          # once per Runner: the program is fixed, and a chunk's hot path
            self._fingerprint = program_fingerprint(self.program)
        state = StreamState.start(self.program, n_b, self._fingerprint) if state is None else state
        state.check(self._fingerprint, n_b)
        after = state.copy()
        result = self._run(acts, n_t, n_b, after)
        after.steps += n_t
        return result, after

    def _run(self, acts: dict[str, np.ndarray], n_t: int, n_b: int, state) -> SimResult:
        """The run of checked inputs from ``state`` (a StreamState, updated in place) or a fresh window (None)."""
        p = self.program
        lo, hi = spec.state_range(p.state_bits)
        units: dict[str, Unit] = {}
        frontend = {}
        for name in p.inputs:
            fe = p.frontend(name)
            frontend[name], c = fe.run(acts[name], None if state is None else state.frontend[name])
            acts[name] = frontend[name]
            units[f"frontend.{name}"] = Unit(name, "frontend", p.weight_bits, 0, int(np.prod(fe.out_shape(p.inputs[name][0]))))
            units[f"frontend.{name}"].add(**dict(zip(FRONTEND_COLUMNS, c.sum(0).tolist())))
        for layer in p.layers:
            out, c = _run_layer(layer, acts[layer.input], self.weights[layer.name], p.leak_shift, lo, hi, self.reference,
                                None if state is None else state.layers[layer.name])
            acts[layer.name] = out
            unit = Unit(layer.modality, layer.kind, p.weight_bits, int(layer.weight.size), layer.n_out)
            active = acts[layer.input].any(axis=0).reshape(n_b, *layer.in_shape)    # (B, *in_shape)
            unit.add(**dict(zip(layer_kernels.LAYER_COLUMNS, c.tolist())), steps=n_t * n_b,
                     active_inputs=int(np.count_nonzero(active)),
                     active_synapses=int((active * self.fanout[layer.name]).sum()),
                     active_neurons=int(np.count_nonzero(out.any(axis=0))))
            units[layer.name] = unit
        r = p.readout
        no_features = np.zeros((n_t, n_b, 0), np.uint8)
        a = acts[r.audio_input].reshape(n_t, n_b, -1) if r.audio_input is not None else no_features
        v = acts[r.vision_input].reshape(n_t, n_b, -1) if r.vision_input is not None else no_features
        t0 = 0
        if state is not None:           # the warp reads the features of the steps before this chunk
            a, v = (np.concatenate([state.history[m], x]) for m, x in (("audio", a), ("vision", v)))
            t0 = state.history["audio"].shape[0]
            state.history = {m: x[x.shape[0] - t0:] for m, x in (("audio", a), ("vision", v))}
        k = r.n_classes
        modal = r.fusion == TAAF_MODAL
        per_step = (len(r.modalities),) if modal else ()       # taaf_modal: one term per modality and step
        step_logits = np.zeros((n_t, n_b, *per_step, k), np.int64)
        scores = np.zeros((n_t, n_b, *per_step), np.int64)
        attention = np.zeros((n_t, n_b, *per_step), np.int64)
        logits = np.zeros((n_b, k), np.int64)
        rc = np.zeros((n_b, len(readout_kernels.READOUT_COLUMNS)), np.int64)
        outputs = (step_logits, scores, attention, logits)
        if modal:
            own = np.zeros((n_b, len(r.modalities), k), np.int64)
            run_batched(readout_kernels.modal_readout, n_b, a, v, *self.readout_args, *outputs, own, rc, t0)
        else:
            run_batched(readout_kernels.readout, n_b, a, v, *self.readout_args, *outputs, rc, t0)
        ops_a, ops_v, macs_l, macs_s, big = rc.sum(0).tolist()
        bits = p.weight_bits
        for m, ops in (("audio", ops_a), ("vision", ops_v)):
            if m in r.modalities:
                units[f"warp.{m}"] = Unit(m, "warp", bits, int(getattr(r, f"warp_{m}").size))
                units[f"warp.{m}"].add(syn_ops=ops, weight_rows=n_t * n_b, steps=n_t * n_b)   # its D taps, each step
        # Readout rows: one K-weight row of W per nonzero z_j (macs_l = rows x K); the score MLP reads an
        # H-weight row of U per nonzero z_j (of z_j's branch for taaf_modal) and, every step, the H output
        # weights s of each branch (macs_s = rows x H + T x M x H, M = 1 for taaf).
        z_rows = macs_l // k
        units["readout"] = Unit("fusion", "readout", bits, int(r.weight.size))
        units["readout"].add(macs=macs_l, weight_rows=z_rows, exact_limit=big, steps=n_t * n_b)
        units["attention"] = Unit("fusion", "attention", bits, 0)
        if r.n_branches:
            # per step, each branch reads its H output weights s_m (taaf: one branch)
            units["score"] = Unit("fusion", "score", bits, r.score_weights)
            units["score"].add(macs=macs_s, weight_rows=z_rows + n_t * n_b * r.n_branches, steps=n_t * n_b)
            # over the n = T x M scores: max (n - 1 compares), d = max - e (n subtracts), n exp2 lookups,
            # y = sum u l (n x K MACs)
            n = n_t * r.n_branches
            units["attention"].add(lut_reads=n * n_b, macs=n * k * n_b, adds=(2 * n - 1) * n_b)
            if r.modality_logits:   # each modality's own lookup over its T scores, and y_m = sum_t u l
                units["attention"].add(lut_reads=n * n_b, macs=n * k * n_b, adds=r.n_branches * (2 * n_t - 1) * n_b)
        else:
            units["attention"].add(adds=n_t * k * n_b)
        spikes = {layer.name: acts[layer.name] for layer in p.layers}
        modal_logits = {m: own[:, i] for i, m in enumerate(r.modalities)} if modal and r.modality_logits else {}
        return SimResult(logits, step_logits, scores, attention, spikes, Counts(n_b, units), frontend, modal_logits)


def simulate(program: Program, inputs: Mapping[str, np.ndarray], allow_other_T: bool = False) -> SimResult:
    """Run a batch: inputs name -> (T, B, *shape) integer counts. One-off; reuse a Runner for many calls.
    T is the program's unless ``allow_other_T`` (then any 1..max_T, run over exactly the steps given)."""
    return Runner(program)(inputs, allow_other_T)


def simulate_sample(program: Program, inputs: Mapping[str, np.ndarray], allow_other_T: bool = False) -> SimResult:
    """Run one sample: inputs name -> (T, *shape). Outputs keep a batch axis of 1."""
    if not isinstance(inputs, Mapping):
        raise ContractError(f"inputs must be a mapping name -> (T, ...) array, got {type(inputs).__name__}")
    return simulate(program, {name: np.asarray(arr)[:, None] for name, arr in inputs.items()}, allow_other_T)
