"""Shared inputs for the benchmark suites: deterministic 240x240x4 slices like the mission's."""
from __future__ import annotations

import numpy as np
import pytest


def make_slices(n: int, seed: int = 0, size: int = 240, channels: int = 4) -> np.ndarray:
    """``n`` float32 slices of z-normalised-looking noise, shape (n, size, size, channels)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, size, size, channels), dtype=np.float32)


@pytest.fixture(scope="session")
def slice_240():
    """One (240, 240, 4) float32 slice."""
    return make_slices(1)[0]


@pytest.fixture(scope="session")
def mask_240_40pct():
    """A (240, 240) bool mask selecting about 40 % of the pixels at random."""
    return np.random.default_rng(1).random((240, 240)) < 0.4
