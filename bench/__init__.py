"""The benchmarks, each run from the repository root as ``python -m bench.<name>`` (no sys.path edits):
encoders, train_step, accuracy, quant, sim, robustness; ``python -m bench.run_all`` runs them all.
bench/support/ holds their shared helpers (timing, peers, model loading)."""
