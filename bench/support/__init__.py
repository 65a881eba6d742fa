"""Helpers of the benchmark scripts in bench/ (not benchmarks themselves): interleaved timing, the
numpy/scipy cochlea peer, and the Xylo-neuron kernel timed against xylosim."""
