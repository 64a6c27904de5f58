"""Preprocessing of BraTS-style slices: the brain mask and per-slice intensity normalisation.

BraTS volumes are skull-stripped and exactly 0 outside the brain.  After the
usual z-normalisation of each modality over the whole volume, the outside-brain
pixels of a channel all hold one value (``-mean / std``), which
:func:`brain_mask` uses to find them.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._ext import _normalize
from ._validation import check_images, check_masks, non_finite_error

__all__ = ["brain_mask", "normalize_brain"]

#: A corner value counts as the background of a channel only if at least this
#: fraction of the slice (and at least two pixels) holds it exactly: a real
#: tissue value almost never repeats.
_MIN_BACKGROUND_FRACTION = 0.01


#: A channel whose spread inside the brain is below this is only centred, not scaled.
_MIN_STD = 1e-6


def _min_background(height: int, width: int) -> float:
    return max(2.0, _MIN_BACKGROUND_FRACTION * height * width)


def _differs(batch: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(N, H, W) bool: True where any channel differs from that slice's value (values: (N, C))."""
    out = batch[..., 0] != values[:, 0, None, None]
    for c in range(1, batch.shape[3]):
        out |= batch[..., c] != values[:, c, None, None]
    return out


def _corner_background(image: np.ndarray) -> np.ndarray:
    """Per channel, the corner value held by most pixels, or NaN when none is frequent."""
    H, W, C = image.shape
    corners = image[[0, 0, -1, -1], [0, -1, 0, -1], :]  # (4, C)
    values = np.full(C, np.nan, dtype=np.float32)
    for c in range(C):
        counts = [np.count_nonzero(image[..., c] == v) for v in corners[:, c]]
        best = int(np.argmax(counts))
        if counts[best] >= _min_background(H, W):
            values[c] = corners[best, c]
    return values


def brain_mask(images: ArrayLike) -> NDArray[np.bool_]:
    """Brain (foreground) mask of z-normalised, skull-stripped slices.

    In every channel of a slice, the outside-brain pixels share one exact value
    (the image of 0 under the normalisation).  A pixel is brain when **any**
    channel differs from its background value.  The background values are the
    top-left pixel's when at least 1 % of the slice (and two pixels) equals it in
    every channel; otherwise, per channel, the corner value held by most pixels
    (if as many).  A slice with a channel without such a value (no background
    visible) is brain everywhere.

    Parameters
    ----------
    images : array-like of shape (H, W, C) or (N, H, W, C)

    Returns
    -------
    ndarray of shape (H, W) or (N, H, W), dtype=bool

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg import brain_mask
    >>> image = np.full((6, 6, 2), -0.4, dtype=np.float32)
    >>> image[2:4, 1:5] = np.random.default_rng(0).standard_normal((2, 4, 2))
    >>> brain_mask(image).astype(int)
    array([[0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0],
           [0, 1, 1, 1, 1, 0],
           [0, 1, 1, 1, 1, 0],
           [0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0]])
    """
    batch, single = check_images(images)
    out = _brain_mask(batch)
    return out[0] if single else out


def _brain_mask(batch: np.ndarray) -> NDArray[np.bool_]:
    """:func:`brain_mask` of a checked (N, H, W, C) float32 batch: (N, H, W) bool."""
    N, H, W, C = batch.shape
    # Fast path, one pass for the whole batch: the top-left pixel is background.
    out = _differs(batch, batch[:, 0, 0, :])
    n_background = H * W - np.count_nonzero(out.reshape(N, -1), axis=1)
    for n in np.flatnonzero(n_background < _min_background(H, W)):
        values = _corner_background(batch[n])
        if np.isnan(values).any():
            out[n] = True
        else:
            out[n] = _differs(batch[n:n + 1], values[None])[0]
    return out


def normalize_brain(images: ArrayLike, brain: ArrayLike) -> NDArray[np.float32]:
    """Standardise each channel of each slice over its brain pixels; set the background to 0.

    Whole-volume z-scores depend on how much of the volume is brain and on the
    slice's position; re-standardising each slice over its own brain pixels
    makes intensities comparable between patients and slices.  A channel with
    (near) zero spread inside the brain is only centred.  Computed by a Cython
    kernel in float64 (a finiteness check and three passes per slice, no temporaries).

    Parameters
    ----------
    images : array-like of shape (H, W, C) or (N, H, W, C)
    brain : array-like of shape (H, W) or (N, H, W)
        Brain mask (bool, or integers with non-zero = brain).

    Returns
    -------
    ndarray of the images' shape, dtype=float32
        A new array; the input is not modified.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg import normalize_brain
    >>> image = np.array([[[1.0], [3.0], [9.0]]], dtype=np.float32)   # (1, 3, 1)
    >>> normalize_brain(image, np.array([[True, True, False]]))[..., 0]
    array([[-1.,  1.,  0.]], dtype=float32)
    """
    batch, single = check_images(images, finite=False)  # the kernel checks, slice by slice
    N, H, W, C = batch.shape
    m = check_masks(brain, "brain", shape=(H, W) if single else (N, H, W)).reshape(N, H, W)
    out = np.empty_like(batch)
    if not _normalize_brain_into(batch, m, out):
        raise non_finite_error(batch)
    return out[0] if single else out


def _normalize_brain_into(batch: np.ndarray, brain: np.ndarray, out: np.ndarray) -> bool:
    """:func:`normalize_brain` of a (N, H, W, C) float32 batch (checked but for finiteness) and
    (N, H, W) uint8 or bool masks, written into ``out`` (the batch's shape and dtype).

    Returns False, leaving ``out`` undefined, if the batch holds a NaN or an infinite value (the
    kernel looks at every value of a slice before normalising it)."""
    return _normalize.normalize_brain(batch, brain.view(np.uint8), out, np.empty((2, batch.shape[3])), _MIN_STD) < 0
