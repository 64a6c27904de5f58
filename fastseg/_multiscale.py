"""The multiscale filter bank behind :func:`fastseg.features.multiscale_features` (unchecked twins).

The semantics are scikit-image's ``multiscale_basic_features``: integer images are rescaled as
``img_as_float32`` does, the scales are ``sigma_min * 2 ** i`` (or ``num_sigma`` log-spaced ones),
and the columns run channel by channel, scale by scale, each scale giving intensity, edges and the
Hessian eigenvalues (decreasing), the kinds requested.  The work is the compiled
``_multiscale.scale_features``, one call per channel and scale, spread over threads.
"""
from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ._ext import for_this_cpu
from ._parallel import chunk_bounds

#: The kernel for this CPU: the AVX2 build (the same bits) where the CPU runs it.
_kernel = for_this_cpu("_multiscale")

#: The Gaussian's support in standard deviations (scipy.ndimage's and scikit-image's default).
TRUNCATE = 4.0


def sigmas(sigma_min: float, sigma_max: float, num_sigma: int | None) -> NDArray[np.float64]:
    """The scales, as scikit-image chooses them."""
    if num_sigma is None:
        num_sigma = int(np.log2(sigma_max) - np.log2(sigma_min) + 1)
    return np.logspace(np.log2(sigma_min), np.log2(sigma_max), num=num_sigma, base=2, endpoint=True)


def half_kernel(sigma: float) -> NDArray[np.float32]:
    """The centre and right half of scipy.ndimage's Gaussian kernel at ``sigma`` (radius
    ``int(4 sigma + 0.5)``, normalised in float64), rounded to float32."""
    radius = int(TRUNCATE * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (float(sigma) * float(sigma)) * x * x)
    phi /= phi.sum()
    return np.ascontiguousarray(phi[radius:], dtype=np.float32)


def n_per_scale(ndim: int, intensity: bool, edges: bool, texture: bool) -> int:
    """Feature columns per channel and scale."""
    return int(intensity) + int(edges) + (ndim if texture else 0)


def as_channels(image: np.ndarray, shape3: tuple) -> NDArray[np.float32]:
    """The channels (last axis of ``image``) as one C-contiguous (C, *shape3) float32 array,
    integers rescaled as ``skimage.util.img_as_float32`` does (unsigned to [0, 1], signed to
    [-1, 1]); a new array, never the input."""
    C = image.shape[-1]
    out = np.empty((C, *shape3), dtype=np.float32)
    kind = image.dtype.kind
    for c in range(C):
        channel = image[..., c].reshape(shape3)
        if kind == "f":
            out[c] = channel
            continue
        info = np.iinfo(image.dtype)
        if image.dtype.itemsize <= 4:
            np.multiply(channel, np.float32(1.0 / info.max), out=out[c], dtype=np.float32)
        else:
            out[c] = np.multiply(channel, 1.0 / info.max, dtype=np.float64)
        if kind == "i":
            np.maximum(out[c], -1.0, out=out[c])
    return out


def needed_rows(mask3: np.ndarray | None, shape3: tuple, three_d: bool):
    """What the features of the requested pixels read, per image row:

    - ``row_start`` (Z * Y + 1,): the first output row of each image row;
    - ``need`` (Z, Y): the image rows whose Gaussian is read: those holding requested pixels,
      dilated by two rows along y and z (the reach of the second differences);
    - ``span`` (Z * Y, 4): columns ``[a, b)`` of the Gaussian read in each row, then the requested
      pixels' columns ``[a, b)``.  In 2-D the first is the second's, widened by the two columns
      and two rows of that reach; 3-D rows are filtered whole.
    """
    Z, Y, X = shape3
    if mask3 is None:
        row_start = np.arange(Z * Y + 1, dtype=np.intp) * X
        span = np.tile(np.array([0, X, 0, X], dtype=np.intp), (Z * Y, 1))
        return row_start, np.ones((Z, Y), dtype=np.uint8), span
    rows = mask3.reshape(Z * Y, X)
    counts = np.count_nonzero(rows, axis=1)
    row_start = np.zeros(Z * Y + 1, dtype=np.intp)
    np.cumsum(counts, out=row_start[1:])
    has = (counts > 0).reshape(Z, Y)
    size = (5, 5) if three_d else (1, 5)
    need = ndimage.maximum_filter(has.astype(np.uint8), size=size, mode="constant", cval=0)
    span = np.zeros((Z * Y, 4), dtype=np.intp)
    first = np.where(counts > 0, np.argmax(rows, axis=1), X)
    last = np.where(counts > 0, X - np.argmax(rows[:, ::-1], axis=1), 0)
    span[:, 2] = np.where(counts > 0, first, 0)
    span[:, 3] = last
    if three_d:
        span[:, 1] = np.where(need.ravel() > 0, X, 0)
    else:
        lo = ndimage.minimum_filter1d(first, 5, mode="constant", cval=X) - 2
        hi = ndimage.maximum_filter1d(last, 5, mode="constant", cval=0) + 2
        ok = need.ravel() > 0
        span[:, 0] = np.where(ok, np.clip(lo, 0, X), 0)
        span[:, 1] = np.where(ok, np.clip(hi, 0, X), 0)
        span[:, 0] = np.minimum(span[:, 0], span[:, 1])
    return row_start, np.ascontiguousarray(need, dtype=np.uint8), span


#: Rows of the outer axis per tile in 2-D (y): the Gaussians of every channel and scale over a tile
#: and its two-row margins stay in cache between their filtering and the features' reads.
TILE_ROWS_2D = 64
#: Scratch per thread for the Gaussians of a tile in 3-D, in image volumes (of one channel), at
#: least ``MIN_SCRATCH`` bytes; each tile filters four planes more than it outputs.
SCRATCH_VOLUMES = 2
MIN_SCRATCH = 32 << 20
#: The thinnest tile made only to give threads work: rows in 2-D, planes in 3-D.
MIN_TILE = {False: 16, True: 8}
#: Pixels x channels x scales below which one thread does the work: starting and joining threads
#: costs more than they save there (a 120x120x4 slice: 2.3 ms on one thread, 3.7 ms on two).
MIN_PARALLEL_WORK = 1 << 20


def tiles(outer: int, per_row: int, three_d: bool, image_bytes: int, n_workers: int) -> list:
    """``(t0, t1)`` ranges of the outer axis (z in 3-D, y in 2-D), near-equal, enough for the threads.

    ``per_row``: scratch floats per outer row (channels x scales x a plane or a row)."""
    if three_d:
        budget = max(SCRATCH_VOLUMES * image_bytes, MIN_SCRATCH) // (4 * per_row)
        size = max(4, budget - 4)
    else:
        size = TILE_ROWS_2D
    # two tiles per thread when there are threads, but none thinner than MIN_TILE rows (planes): a
    # thin tile filters its four margin rows for few output rows, and a small image is not worth a
    # thread
    spare = min(2 * n_workers, outer // MIN_TILE[three_d]) if n_workers > 1 else 1
    return chunk_bounds(outer, max(-(-outer // size), spare, 1))


def multiscale(images: np.ndarray, three_d: bool, intensity: bool, edges: bool, texture: bool,
               scales: np.ndarray, mask3: np.ndarray | None, out2d: np.ndarray, n_workers: int) -> None:
    """Write the features of every channel into ``out2d`` (rows: the requested pixels in C order).

    ``images``: (C, Z, Y, X) float32, C-contiguous (Z = 1 in 2-D).
    """
    C, Z, Y, X = images.shape
    halves = [half_kernel(s) for s in scales]
    R = max(h.shape[0] for h in halves) - 1
    weights = np.zeros((len(scales), R + 1), dtype=np.float32)
    for i, h in enumerate(halves):
        weights[i, :h.shape[0]] = h
    radii = np.array([h.shape[0] - 1 for h in halves], dtype=np.intp)
    if C * Z * Y * X * len(scales) < MIN_PARALLEL_WORK:
        n_workers = 1
    row_start, need, span = needed_rows(mask3, (Z, Y, X), three_d)
    outer = Z if three_d else Y
    per_row = C * len(scales) * (Y * X if three_d else X)
    bounds = tiles(outer, per_row, three_d, Z * Y * X * 4, n_workers)
    longest = max(t1 - t0 for t0, t1 in bounds)
    scratch = per_row * min(longest + 4, outer)
    lock = threading.Lock()
    todo = iter(bounds)

    def work():
        gauss = np.empty(scratch, dtype=np.float32)
        while True:
            with lock:
                tile = next(todo, None)
            if tile is None:
                return
            _kernel.tile_features(images, weights, radii, three_d, intensity, edges, texture, mask3,
                                  row_start, need, span, out2d, tile[0], tile[1], gauss)

    n_threads = max(1, min(n_workers, len(bounds)))
    if n_threads == 1:
        work()
        return
    errors: list = []
    threads = [threading.Thread(target=_catching(work, errors)) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _catching(func, errors: list):
    def run():
        try:
            func()
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)
    return run
