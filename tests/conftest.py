"""Fixtures and settings shared by several test modules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

# No test is timed (timings are benchmarks): hypothesis's per-example deadline would make a
# property test fail on a loaded machine, so it is off for every test.
settings.register_profile("bnlessons", deadline=None)
settings.load_profile("bnlessons")


@pytest.fixture
def seed_network() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The notes' network: W1 100x10, W2 100x100, W3 1x100, N(0,1) weights, ||x|| = 1."""
    rng = np.random.default_rng(2018)
    w1 = rng.standard_normal((100, 10))
    w2 = rng.standard_normal((100, 100))
    w3 = rng.standard_normal((1, 100))
    x = rng.standard_normal(10)
    x /= np.linalg.norm(x)
    return w1, w2, w3, x
