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
K5_LINEAR = dict(k=5, classifier="linear-svm", max_pixels=4000, max_iter=200, mean_sizes=(), std_sizes=(),
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
    out = np.zeros(brain.shape, dtype=bool)
    for i in range(len(images)):
        b = brain[i]
        x = _normalize(images[i], b)
        features = numpy_window_features(x, seg.k, seg.mode)[b.ravel()]
        pred = np.zeros(b.shape, dtype=bool)
        pred[b] = seg.classifier_.decision_function(features) > seg.threshold_
        out[i] = _post_process(seg, pred)
    return out


def numpy_predict_context(seg, images: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """``PixelSegmenter.predict`` for a probabilistic classifier over the window and context features
    (the default MLP), slice by slice: brain normalisation, the features of the brain pixels from
    scipy's filters (``fastseg._reference.pixel_features``), the scikit-learn pipeline's
    ``predict_proba``, threshold, and scipy post-processing."""
    from ._reference import pixel_features

    out = np.zeros(brain.shape, dtype=bool)
    for i in range(len(images)):
        b = brain[i]
        x = _normalize(images[i], b)
        features = pixel_features(x[None], b[None], seg.k, mode=seg.mode, mean_sizes=seg.mean_sizes,
                                  std_sizes=seg.std_sizes, asymmetry=seg.asymmetry,
                                  gradient_size=seg.gradient_size, position=seg.position)
        pred = np.zeros(b.shape, dtype=bool)
        pred[b] = seg.classifier_.predict_proba(features)[:, 1] > seg.threshold_
        out[i] = _post_process(seg, pred)
    return out


def _normalize(image: np.ndarray, b: np.ndarray) -> np.ndarray:
    values = image[b]
    x = (image - values.mean(0)) / values.std(0)
    x[~b] = 0
    return x


def _post_process(seg, pred: np.ndarray) -> np.ndarray:
    """Components below ``min_size`` or ``min_relative_size`` of the largest removed, holes filled."""
    labels, n = ndimage.label(pred, structure=ndimage.generate_binary_structure(2, seg.connectivity))
    if n:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        keep = (sizes >= seg.min_size) & (sizes >= seg.min_relative_size * sizes.max())
        keep[0] = False
        pred = keep[labels]
    return ndimage.binary_fill_holes(pred)
