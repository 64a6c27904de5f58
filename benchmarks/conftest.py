"""Shared inputs for the benchmark suites: deterministic 240x240x4 slices like the mission's, and the
real BraTS slices of ``../shared/data/brats2d`` with the k=5 linear segmenter the pipeline and scaling
suites time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

BRATS2D = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brats2d"
#: The real slices are repeated to this many for the pipeline benchmarks.
N_SLICES = 256


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


@pytest.fixture(scope="session")
def brats():
    """(x, y, brain) of the 20 real slices, and (images, brain) of them repeated to ``N_SLICES``."""
    if not (BRATS2D / "train_x.npy").exists():
        pytest.skip("BraTS slices not found at ../shared/data/brats2d")
    x = np.concatenate([np.load(BRATS2D / "train_x.npy"), np.load(BRATS2D / "test_x.npy")])
    y = np.concatenate([np.load(BRATS2D / "train_y.npy"), np.load(BRATS2D / "test_y.npy")]).astype(bool)
    b = np.concatenate([np.load(BRATS2D / "train_brain.npy"), np.load(BRATS2D / "test_brain.npy")])
    reps = -(-N_SLICES // len(x))
    return x, y, b, np.tile(x, (reps, 1, 1, 1))[:N_SLICES], np.tile(b, (reps, 1, 1))[:N_SLICES]


@pytest.fixture(scope="session")
def linear_k5(brats):
    """k=5 linear SVM on the raw channels (no context channels) with post-processing, fitted on all 20 slices."""
    from fastseg import PixelSegmenter
    from fastseg._baselines import K5_LINEAR

    x, y, b, _, _ = brats
    return PixelSegmenter(random_state=0, **K5_LINEAR).fit(x, y, b)
