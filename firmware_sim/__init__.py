"""firmware_sim: the accelerator without PyTorch (numpy, Numba, ONNX, YAML only).

    from firmware_sim.loader import load_program        # .onnx -> Program (validated)
    from firmware_sim.run import simulate, Runner        # (T, B, ...) integer spikes -> SimResult
    from firmware_sim.energy import load_hardware, energy_report
    from firmware_sim.evaluate import evaluate           # a whole data set: accuracy, energy, latency

spec.py holds the contract's constants (docs/accelerator.md); nothing here imports torch or brevitas.
This file imports nothing, so that quant/ can read spec.py without loading Numba.
"""
