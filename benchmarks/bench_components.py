"""Post-processing: fastseg's component kernels beside scipy, scikit-image and OpenCV.

Run:  pytest benchmarks/bench_components.py --benchmark-columns=median,iqr,rounds --benchmark-sort=name
Each group holds fastseg and the baselines a user would otherwise run, measured in
the same run; every baseline's result is checked equal to fastseg's, so the
ratios compare the same work.

The masks look like thresholded predictions: a few irregular blobs of various
sizes (some with holes, some smaller than ``MIN_SIZE``) plus speckle, about
10 % foreground, generated deterministically from a seed.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage
from skimage import morphology

import fastseg
from fastseg import _reference

MIN_SIZE = 50
SIZE = 240
N_BATCH = 256


def prediction_mask(seed: int, size: int = SIZE) -> np.ndarray:
    """A (size, size) bool mask shaped like a post-threshold tumour prediction."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    m = np.zeros((size, size), dtype=bool)
    margin = size // 6

    def ellipse(cy, cx, ry, rx, angle):
        c, s = np.cos(angle), np.sin(angle)
        u = ((yy - cy) * c + (xx - cx) * s) / ry
        v = (-(yy - cy) * s + (xx - cx) * c) / rx
        return u * u + v * v < 1.0

    # Two or three large irregular blobs (unions of ellipses), most with holes.
    for _ in range(rng.integers(2, 4)):
        cy, cx = rng.uniform(margin, size - margin, 2)
        r = rng.uniform(18, 30)
        for _ in range(3):
            m |= ellipse(cy + rng.normal(0, r / 3), cx + rng.normal(0, r / 3),
                         r * rng.uniform(0.6, 1.0), r * rng.uniform(0.6, 1.0), rng.uniform(0, np.pi))
        for _ in range(rng.integers(0, 4)):
            hole_r = rng.uniform(1.5, 4.0)
            m &= ~ellipse(cy + rng.normal(0, r / 4), cx + rng.normal(0, r / 4), hole_r, hole_r, 0.0)
    # Small detections, some below and some above MIN_SIZE.
    for _ in range(rng.integers(3, 8)):
        cy, cx = rng.uniform(margin, size - margin, 2)
        r = rng.uniform(1.5, 6.0)
        m |= ellipse(cy, cx, r, r * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi))
    # Speckle.
    m |= rng.random((size, size)) < 0.004
    return m


@pytest.fixture(scope="module")
def mask_240():
    m = prediction_mask(0)
    assert 0.05 < m.mean() < 0.15
    return m


@pytest.fixture(scope="module")
def masks_256():
    masks = np.stack([prediction_mask(seed) for seed in range(N_BATCH)])
    assert 0.05 < masks.mean() < 0.15
    return masks


# --------------------------------------------------------------------------- baselines

S4 = ndimage.generate_binary_structure(2, 1)
S8 = ndimage.generate_binary_structure(2, 2)


def planar(structure_2d: np.ndarray) -> np.ndarray:
    """A 3-D structuring element that connects pixels within a slice only (stack in one call)."""
    s = np.zeros((3, 3, 3), dtype=bool)
    s[1] = structure_2d
    return s


def scipy_remove_small(mask, min_size=MIN_SIZE):
    structure = S8 if mask.ndim == 2 else planar(S8)
    labels, _ = ndimage.label(mask, structure=structure)
    keep = np.bincount(labels.ravel()) >= min_size
    keep[0] = False
    return keep[labels]


def scipy_clean(mask, min_size=MIN_SIZE):
    """scipy: label + bincount size filter + binary_fill_holes (a stack in one call)."""
    kept = scipy_remove_small(mask, min_size)
    return ndimage.binary_fill_holes(kept, structure=S4 if mask.ndim == 2 else planar(S4))


def skimage_clean(mask, min_size=MIN_SIZE):
    """scikit-image 0.26: remove_small_objects + remove_small_holes (slice by slice).

    ``remove_small_holes`` fills background regions of at most ``max_size`` pixels
    whether or not they touch the border; with the border-touching background far
    larger than any hole (as in these masks) it equals ``binary_fill_holes``.
    """
    if mask.ndim == 3:
        return np.stack([skimage_clean(m, min_size) for m in mask])
    kept = morphology.remove_small_objects(mask, max_size=min_size - 1, connectivity=2)
    return morphology.remove_small_holes(kept, max_size=mask.size // 8, connectivity=1)


def _cv_fill(kept_u8):
    """Holes of a 0/1 uint8 mask filled: flood the background from a zero frame, keep the rest."""
    pad = cv2.copyMakeBorder(kept_u8, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    cv2.floodFill(pad, None, (0, 0), 2)
    return pad[1:-1, 1:-1] != 2


def opencv_remove_small(mask, min_size=MIN_SIZE):
    """OpenCV: connectedComponentsWithStats + area lookup table; returns 0/1 uint8."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8,
                                                           ltype=cv2.CV_32S)
    keep = (stats[:, cv2.CC_STAT_AREA] >= min_size).astype(np.uint8)
    keep[0] = 0
    return np.take(keep, labels)   # np.take: ~3x faster than keep[labels]


def opencv_clean(mask, min_size=MIN_SIZE):
    """OpenCV: connectedComponentsWithStats + area lookup table + floodFill from the border."""
    if mask.ndim == 3:
        return np.stack([opencv_clean(m, min_size) for m in mask])
    return _cv_fill(opencv_remove_small(mask, min_size))


def opencv_bincount_clean(mask, min_size=MIN_SIZE):
    """OpenCV variant: connectedComponents (no stats) + np.bincount areas + floodFill."""
    if mask.ndim == 3:
        return np.stack([opencv_bincount_clean(m, min_size) for m in mask])
    n, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    keep = (np.bincount(labels.ravel(), minlength=n) >= min_size).astype(np.uint8)
    keep[0] = 0
    return _cv_fill(np.take(keep, labels))


CLEAN = {
    "fastseg": lambda m: fastseg.clean_mask(m, MIN_SIZE),
    "scipy": scipy_clean,
    "skimage": skimage_clean,
    "opencv": opencv_clean,
    "opencv-bincount": opencv_bincount_clean,
}


# --------------------------------------------------------------------------- clean_mask

@pytest.mark.parametrize("impl", list(CLEAN))
def test_clean_240(benchmark, mask_240, impl):
    benchmark.group = "components-clean-240x240"
    out = benchmark(CLEAN[impl], mask_240)
    np.testing.assert_array_equal(out, _reference.clean_mask(mask_240[None], MIN_SIZE)[0])


@pytest.mark.parametrize("impl", ["fastseg", "fastseg-2jobs", "scipy", "skimage", "opencv"])
def test_clean_batch(benchmark, masks_256, impl):
    benchmark.group = f"components-clean-{N_BATCH}x240x240"
    if impl == "fastseg-2jobs":
        out = benchmark(fastseg.clean_mask, masks_256, MIN_SIZE, n_jobs=2)
    else:
        out = benchmark(CLEAN[impl], masks_256)
    assert out.shape == masks_256.shape
    np.testing.assert_array_equal(out[:8], _reference.clean_mask(masks_256[:8], MIN_SIZE))


# --------------------------------------------------------------------------- parts

@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("impl", ["fastseg", "scipy", "opencv"])
def test_label_240(benchmark, mask_240, impl, connectivity):
    benchmark.group = f"components-label-c{connectivity}-240x240"
    if impl == "fastseg":
        labels, n = benchmark(fastseg.label, mask_240, connectivity)
    elif impl == "scipy":
        labels, n = benchmark(ndimage.label, mask_240, ndimage.generate_binary_structure(2, connectivity))
    else:   # different numbering (and one count more: the background), same partition
        n, labels = benchmark(cv2.connectedComponents, mask_240.view(np.uint8),
                              connectivity=4 * connectivity, ltype=cv2.CV_32S)
        n -= 1
    assert n == ndimage.label(mask_240, ndimage.generate_binary_structure(2, connectivity))[1]


@pytest.mark.parametrize("impl", ["fastseg", "scipy"])
def test_label_batch(benchmark, masks_256, impl):
    benchmark.group = f"components-label-c1-{N_BATCH}x240x240"
    if impl == "fastseg":
        labels, counts = benchmark(fastseg.label, masks_256, 1)
        n = int(counts.sum())
    else:
        labels, n = benchmark(ndimage.label, masks_256, planar(S4))
    assert n == int(_reference.label(masks_256, 1)[1].sum())


@pytest.mark.parametrize("impl", ["fastseg", "scipy", "skimage", "opencv"])
def test_remove_small_240(benchmark, mask_240, impl):
    benchmark.group = "components-remove-small-240x240"
    funcs = {
        "fastseg": lambda m: fastseg.remove_small_components(m, MIN_SIZE),
        "scipy": scipy_remove_small,
        "skimage": lambda m: morphology.remove_small_objects(m, max_size=MIN_SIZE - 1, connectivity=2),
        "opencv": lambda m: opencv_remove_small(m).view(np.bool_),
    }
    out = benchmark(funcs[impl], mask_240)
    np.testing.assert_array_equal(out, _reference.remove_small_components(mask_240[None], MIN_SIZE)[0])


@pytest.mark.parametrize("impl", ["fastseg", "scipy", "skimage", "opencv"])
def test_fill_holes_240(benchmark, mask_240, impl):
    benchmark.group = "components-fill-holes-240x240"
    funcs = {
        "fastseg": fastseg.fill_holes,
        "scipy": ndimage.binary_fill_holes,
        "skimage": lambda m: morphology.remove_small_holes(m, max_size=m.size // 8, connectivity=1),
        "opencv": lambda m: _cv_fill(m.view(np.uint8)),
    }
    out = benchmark(funcs[impl], mask_240)
    np.testing.assert_array_equal(out, ndimage.binary_fill_holes(mask_240))
