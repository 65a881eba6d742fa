"""Shared fixtures (plain helpers and constants live in tests/support/)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import settings

from tests.support.configs import TINY, compose_config

# Real-data gating: fixture_data_root (tests/data), full_data_root and @pytest.mark.full_data
# (EDGE_TAAF_DATA; skipped without it, a failure under --require-data). See tests/support/data_gating.py.
pytest_plugins = ["tests.support.data_gating"]

# No per-example deadline: a loaded CI machine (or a first Numba compile) must not fail a property.
# derandomize: every run draws the same examples (the random networks are seeded from them), so a
# property's activity and saturation assertions cannot pass on one run and fail on the next.
settings.register_profile("edge_taaf", deadline=None, derandomize=True)
settings.load_profile("edge_taaf")


@pytest.fixture
def one_torch_thread():
    """One torch intra-op thread for a test (use with pytest.mark.usefixtures): fast on a busy 2-core machine,
    and the same arithmetic as the subprocesses some tests start."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def tiny_train_cfg(tmp_path):
    """A tiny synth training config whose data cache lives in tmp_path."""
    def make(*extra: str):
        return compose_config("train", [*TINY, f"data.cache_dir={tmp_path / 'cache'}", *extra])
    return make
