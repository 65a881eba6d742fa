"""quant: the accelerator's integer arithmetic as PyTorch, for training and export.

    from quant.qmodel import build_quant_model, run_integer   # QAT model, integer mode
    from quant.export import export_onnx                      # integer model -> standard ONNX (Scan over T)
    from quant.ort_runner import OrtModel, compare             # run the file in onnxruntime, compare outputs

Every constant comes from firmware_sim/spec.py (docs/accelerator.md).
"""
