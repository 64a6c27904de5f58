"""The code a user writes without fastseg: the baselines of the benchmarks and of ``fastseg bench``.

Plain numpy / scikit-learn / scipy, step for step the same work as the fastseg
function it is compared with, so that timing both in one run gives an honest
ratio.  Not part of the public API.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage


#: The PixelSegmenter that ``numpy_predict`` reproduces: a 5x5 linear SVM over the brain-normalised
#: channels, no context features (the benchmarks' and ``fastseg bench``'s pipeline).
K5_LINEAR = dict(k=5, classifier="linear-svm", max_pixels=4000, max_iter=200, box_sizes=(), std_sizes=(),
                 asymmetry=False, gradient_size=0, position=False)


def numpy_window_features(image: np.ndarray, k: int, mode: str = "reflect") -> np.ndarray:
    """``np.pad`` + ``sliding_window_view`` + a reshaping copy: (H*W, k*k*C), columns (dy, dx, c)."""
    r = k // 2
    padded = np.pad(image, ((r, r), (r, r), (0, 0)), mode=mode)
    windows = sliding_window_view(padded, (k, k, image.shape[2]))  # (H, W, 1, k, k, C)
    return windows.reshape(image.shape[0] * image.shape[1], -1)


def numpy_predict(seg, images: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """``PixelSegmenter.predict`` for a k x k linear model without context channels, slice by slice:
    brain normalisation, window features of the brain pixels, the scikit-learn pipeline's
    ``decision_function``, threshold, and scipy post-processing."""
    structure = ndimage.generate_binary_structure(2, seg.connectivity)
    out = np.zeros(brain.shape, dtype=bool)
    for i in range(len(images)):
        b = brain[i]
        x = images[i].copy()
        values = x[b]
        x = (x - values.mean(0)) / values.std(0)
        x[~b] = 0
        features = numpy_window_features(x, seg.k, seg.mode)[b.ravel()]
        pred = np.zeros(b.shape, dtype=bool)
        pred[b] = seg.classifier_.decision_function(features) > seg.threshold_
        labels, n = ndimage.label(pred, structure=structure)
        if n:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            keep = (sizes >= seg.min_size) & (sizes >= seg.min_relative_size * sizes.max())
            keep[0] = False
            pred = keep[labels]
        out[i] = ndimage.binary_fill_holes(pred)
    return out
