"""Per-pixel neighbourhood features: the k x k window of every channel around each pixel.

The feature column order is defined here, once, and every other part of fastseg
(scoring kernels, saved models) follows it: columns are ordered ``(dy, dx, c)``
with the channel fastest, ``dy`` and ``dx`` running from ``-(k // 2)`` to
``k // 2``.  :func:`feature_offsets` returns that order explicitly.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._ext import _windows
from ._validation import (
    check_images,
    check_k,
    check_k_fits,
    check_masks,
    check_mode,
    check_out,
)

__all__ = ["window_features", "feature_offsets", "n_window_features"]


def n_window_features(k: int, n_channels: int) -> int:
    """Number of feature columns of a k x k window over ``n_channels`` channels: ``k * k * n_channels``.

    Examples
    --------
    >>> from fastseg import n_window_features
    >>> n_window_features(5, 4)
    100
    """
    return check_k(k) ** 2 * int(n_channels)


def feature_offsets(k: int, n_channels: int) -> NDArray[np.intp]:
    """Which pixel offset and channel each feature column holds.

    Parameters
    ----------
    k : int
        Odd window size >= 1.
    n_channels : int
        Number of image channels C.

    Returns
    -------
    offsets : ndarray of shape (k*k*C, 3), dtype=intp
        Row ``j`` is ``(dy, dx, c)`` for feature column ``j``: the value of channel
        ``c`` at pixel ``(y + dy, x + dx)``.  The channel runs fastest, then ``dx``,
        then ``dy``.

    Examples
    --------
    >>> from fastseg import feature_offsets
    >>> feature_offsets(3, 2)[:4].tolist()
    [[-1, -1, 0], [-1, -1, 1], [-1, 0, 0], [-1, 0, 1]]
    >>> feature_offsets(1, 4).tolist()
    [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3]]
    """
    k = check_k(k)
    if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
        raise ValueError(f"n_channels must be a positive integer, got {n_channels!r}")
    r = k // 2
    dy, dx, c = np.meshgrid(
        np.arange(-r, r + 1), np.arange(-r, r + 1), np.arange(int(n_channels)), indexing="ij"
    )
    return np.stack([dy.ravel(), dx.ravel(), c.ravel()], axis=1).astype(np.intp)


def pad_index(size: int, r: int, mode: str) -> NDArray[np.intp]:
    """Source index of each position of an axis padded by ``r`` on both sides.

    Position ``i`` of the padded axis (``0 <= i < size + 2 r``) shows the original
    element ``pad_index(size, r, mode)[i]``, or zero where that is ``-1``
    (``mode="constant"``).  The meanings are numpy.pad's: ``reflect`` mirrors
    without repeating the edge (``d c b | a b c d | c b a``), ``edge`` repeats it.
    """
    p = np.arange(-r, size + r, dtype=np.intp)
    if mode == "reflect":
        p = np.abs(p)
        p = np.where(p >= size, 2 * (size - 1) - p, p)
    elif mode == "edge":
        p = np.clip(p, 0, size - 1)
    elif mode == "constant":
        p = np.where((p < 0) | (p >= size), -1, p)
    else:  # validated by callers; kept as a guard for internal use
        raise ValueError(f"unknown mode {mode!r}")
    return np.ascontiguousarray(p, dtype=np.intp)


def padded_scratch(height: int, width: int, n_channels: int, k: int) -> NDArray[np.float32]:
    """Scratch buffer for one padded image, as the window kernels expect it."""
    r = k // 2
    return np.empty((height + 2 * r, width + 2 * r, n_channels), dtype=np.float32)


def window_features(
    images: ArrayLike,
    k: int = 3,
    *,
    mask: ArrayLike | None = None,
    mode: str = "reflect",
    out: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """Neighbourhood features: the k x k window of all channels around each pixel.

    Parameters
    ----------
    images : array-like of shape (H, W, C) or (N, H, W, C)
        One image or a stack of images, any real dtype (computed in float32).
        NaN and infinite values are rejected.
    k : int, default=3
        Odd window size >= 1.  ``k=1`` gives the pixel's own channel values.
    mask : array-like of shape (H, W) or (N, H, W), optional
        Pixels whose rows to compute (bool; integers: non-zero = selected).
        Only these rows are gathered; the dense feature matrix is never built.
    mode : {"reflect", "constant", "edge"}, default="reflect"
        How windows that cross the image border are filled, with numpy.pad's
        meanings (``constant`` pads with 0).  ``reflect`` needs ``k // 2`` to be
        smaller than both image sides.
    out : ndarray of shape (n_pixels, k*k*C), dtype=float32, optional
        C-contiguous buffer to write into (and return) instead of allocating.

    Returns
    -------
    features : ndarray of shape (n_pixels, k*k*C), dtype=float32
        One row per pixel, in raster order over ``(n, y, x)`` (only masked pixels
        when ``mask`` is given); columns ordered ``(dy, dx, c)`` with the channel
        fastest, see :func:`feature_offsets`.

    Raises
    ------
    TypeError
        If ``images`` is not real-valued, ``k`` is not an integer, ``mask`` or
        ``out`` has the wrong dtype.
    ValueError
        If shapes do not match, ``k`` is even or too large for ``mode``, or the
        images contain NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg import window_features
    >>> image = np.arange(3 * 3 * 2, dtype=np.float32).reshape(3, 3, 2)
    >>> X = window_features(image, k=3)
    >>> X.shape
    (9, 18)
    >>> X[4].reshape(3, 3, 2)[..., 0]    # channel 0 around the centre pixel
    array([[ 0.,  2.,  4.],
           [ 6.,  8., 10.],
           [12., 14., 16.]], dtype=float32)
    >>> mask = np.zeros((3, 3), dtype=bool); mask[1, 1] = True
    >>> np.array_equal(window_features(image, 3, mask=mask), X[4:5])
    True
    """
    batch, single = check_images(images)
    k = check_k(k)
    mode = check_mode(mode)
    N, H, W, C = batch.shape
    check_k_fits(k, mode, H, W)
    r = k // 2
    rowmap = pad_index(H, r, mode)
    colmap = pad_index(W, r, mode)
    scratch = padded_scratch(H, W, C, k)
    if mask is None:
        out = check_out(out, (N * H * W, k * k * C), inputs=(images,))
        _windows.gather_dense(batch, rowmap, colmap, k, out, scratch)
        return out
    mask_shape = (H, W) if single else (N, H, W)
    m = check_masks(mask, "mask", shape=mask_shape).reshape(N, H, W)
    out = check_out(out, (np.count_nonzero(m), k * k * C), inputs=(images,))
    _windows.gather_masked(batch, rowmap, colmap, k, m, out, scratch)
    return out
