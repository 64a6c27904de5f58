"""Per-pixel neighbourhood features: the k x k window of every channel around each pixel.

The feature column order is defined here, once, and every other part of fastseg
(scoring kernels, saved models) follows it: columns are ordered ``(dy, dx, c)``
with the channel fastest, ``dy`` and ``dx`` running from ``-(k // 2)`` to
``k // 2``.  :func:`feature_offsets` returns that order explicitly.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._ext import _boxmeans, _windows, for_this_cpu
from ._validation import (
    check_bool,
    check_gradient_size as _check_gradient_size,
    check_images,
    check_k,
    check_k_fits,
    check_masks,
    check_mode,
    check_n_channels,
    check_n_features,
    check_n_jobs,
    check_odd_sizes,
    check_out,
    check_multiscale_image,
    check_scales,
    check_workers,
)


#: The pixel-feature kernels for this CPU: the AVX2 build (the same bits) where the CPU runs it.
_pixfeat = for_this_cpu("_pixfeat")

__all__ = [
    "window_features", "feature_offsets", "n_window_features", "context_channels", "box_means", "mirror_columns",
    "pixel_features", "pixel_feature_names", "FeatureSpec", "multiscale_features",
]

#: Default box of the asymmetry family's mean (context_channels, pixel_features, PixelSegmenter).
ASYMMETRY_BOX = 15


def n_window_features(k: int, n_channels: int) -> int:
    """Number of feature columns of a k x k window over ``n_channels`` channels: ``k * k * n_channels``.

    Examples
    --------
    >>> from fastseg import n_window_features
    >>> n_window_features(5, 4)
    100
    """
    k, n_channels = check_k(k), check_n_channels(n_channels)
    check_n_features(k, n_channels)
    return k * k * n_channels


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
    k, n_channels = check_k(k), check_n_channels(n_channels)
    check_n_features(k, n_channels)
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


# ----------------------------------------------------------------------------- context channels

def _deprecated(name: str) -> None:
    warnings.warn(
        f"fastseg.features.{name} is deprecated since fastseg 0.3 and will be removed in 0.4: "
        "pixel_features computes the context families for the pixels you ask for",
        FutureWarning, stacklevel=3,
    )


def box_means(images: ArrayLike, sizes=(7, 15, 31)) -> NDArray[np.float32]:
    """Local means of every channel over s x s boxes, zero outside the image.

    .. deprecated:: 0.3
        Removed in 0.4; use :func:`pixel_features`, which computes the context
        families for the requested pixels only.

    Computed by a Cython kernel from one integral image per slice (float64), so
    each size costs the same whatever its width.  Equal to ``scipy.ndimage.uniform_filter(...,
    size=(s, s), mode="constant")`` per channel, to float32 rounding.

    Parameters
    ----------
    images : array-like of shape (H, W, C) or (N, H, W, C)
    sizes : sequence of odd int, default=(7, 15, 31)

    Returns
    -------
    ndarray of shape (..., H, W, C * len(sizes)), dtype=float32
        The means for ``sizes[0]`` (all channels), then ``sizes[1]``, ...

    Examples
    --------
    >>> import numpy as np
    >>> import warnings
    >>> from fastseg.features import box_means
    >>> image = np.ones((4, 4, 1), dtype=np.float32)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)
    ...     means = box_means(image, sizes=(3,))
    >>> means[..., 0]
    array([[0.44444445, 0.6666667 , 0.6666667 , 0.44444445],
           [0.6666667 , 1.        , 1.        , 0.6666667 ],
           [0.6666667 , 1.        , 1.        , 0.6666667 ],
           [0.44444445, 0.6666667 , 0.6666667 , 0.44444445]], dtype=float32)
    """
    _deprecated("box_means")
    batch, single = check_images(images)
    sizes = check_odd_sizes(sizes, "sizes")
    N, H, W, C = batch.shape
    out = np.empty((N, H, W, C * len(sizes)), dtype=np.float32)
    if sizes:
        integral = np.empty((H + 1, W + 1, C), dtype=np.float64)
        _boxmeans.box_means(batch, np.asarray(sizes, dtype=np.intp), out, integral)
    return out[0] if single else out


def mirror_columns(brain: ArrayLike) -> NDArray[np.intp]:
    """For each slice, the column each column mirrors to across the brain's vertical midline.

    .. deprecated:: 0.3
        Removed in 0.4; use :func:`pixel_features`, which computes the context
        families for the requested pixels only.

    The midline is halfway between the brain's leftmost and rightmost columns
    (the image centre for an empty mask); mirrored columns outside the image are
    clipped to its edge.

    Parameters
    ----------
    brain : array-like of shape (H, W) or (N, H, W)

    Returns
    -------
    ndarray of shape (N, W) or (W,), dtype=intp

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.features import mirror_columns
    >>> import warnings
    >>> brain = np.zeros((2, 6), bool); brain[:, 1:4] = True     # midline at column 2
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)
    ...     mirror = mirror_columns(brain)
    >>> mirror.tolist()
    [4, 3, 2, 1, 0, 0]
    """
    _deprecated("mirror_columns")
    single = np.ndim(brain) == 2
    b = check_masks(brain, "brain", ndims=(2, 3)).view(bool)
    out = _mirror_of((b if not single else b[None]).any(axis=1))
    return out[0] if single else out


def _mirror_of(brain_columns: np.ndarray) -> NDArray[np.intp]:
    """(N, W) intp: each column's mirror across the midline of the brain's columns (``brain_columns``,
    (N, W) bool: the columns holding brain), clipped to the image; the image's midline for an empty
    brain.  Vectorised over the slices: the kernel plan makes it for every chunk predict scores."""
    N, W = brain_columns.shape
    first = brain_columns.argmax(axis=1)
    last = W - 1 - brain_columns[:, ::-1].argmax(axis=1)
    twice_mid = np.where(brain_columns.any(axis=1), first + last, W - 1)
    return np.clip(twice_mid[:, None] - np.arange(W), 0, W - 1).astype(np.intp)


def context_channels(
    images: ArrayLike,
    brain: ArrayLike,
    *,
    box_sizes=(7, 15, 31),
    asymmetry: bool = True,
    asymmetry_box: int = ASYMMETRY_BOX,
) -> NDArray[np.float32]:
    """Stack each pixel's context onto its channels: local means and left-right asymmetry.

    .. deprecated:: 0.3
        Removed in 0.4; use :func:`pixel_features`, which computes the context
        families for the requested pixels only.

    The result is a new multichannel image whose windows
    (:func:`window_features`) carry information from far beyond the k x k
    window, at the cost of extra channels rather than a wider window:

    1. the image itself (C channels);
    2. for each ``s`` in ``box_sizes``, the mean of each channel over an s x s box
       (zero outside the image: use it on brain-normalised images, whose
       background is 0), C channels each;
    3. with ``asymmetry``, the difference between each pixel and its mirror
       image across the brain's vertical midline (the brain is roughly
       symmetric, tumours are not), C channels, and the ``asymmetry_box`` mean of
       that difference, C channels.

    Every channel is a linear function of the image, so a linear classifier over
    windows of the result is still a (larger) linear filter of the image.

    Parameters
    ----------
    images : array-like of shape (H, W, C) or (N, H, W, C)
    brain : array-like of shape (H, W) or (N, H, W)
        Brain masks, used for the midline.
    box_sizes : sequence of odd int, default=(7, 15, 31)
    asymmetry : bool, default=True
    asymmetry_box : odd int, default=15

    Returns
    -------
    ndarray of shape (..., H, W, C * (1 + len(box_sizes) + 2 * asymmetry)), dtype=float32

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.features import context_channels
    >>> x = np.random.default_rng(0).standard_normal((2, 30, 30, 4)).astype(np.float32)
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)
    ...     stacked = context_channels(x, np.ones((2, 30, 30), bool))
    >>> stacked.shape
    (2, 30, 30, 24)
    """
    _deprecated("context_channels")
    batch, single = check_images(images)
    N, H, W, C = batch.shape
    b = check_masks(brain, "brain", shape=(H, W) if single else (N, H, W)).reshape(N, H, W)
    sizes = check_odd_sizes(box_sizes, "box_sizes")
    asymmetry = check_bool(asymmetry, "asymmetry")
    if asymmetry:
        asymmetry_box = check_k(asymmetry_box, "asymmetry_box")
    n_out = C * (1 + len(sizes) + 2 * bool(asymmetry))
    # The kernels write each part straight into its channels of the result (no concatenation).
    out = np.empty((N, H, W, n_out), dtype=np.float32)
    integral = np.empty((H + 1, W + 1, C), dtype=np.float64)
    _boxmeans.copy_channels(batch, out, 0)
    if sizes:
        _boxmeans.box_means(batch, np.asarray(sizes, dtype=np.intp), out, integral, C)
    if asymmetry:
        mirror = _mirror_of(b.view(bool).any(axis=1))
        diff = np.empty_like(batch)
        for n in range(N):
            np.subtract(batch[n], batch[n][:, mirror[n]], out=diff[n])
        offset = C * (1 + len(sizes))
        _boxmeans.copy_channels(diff, out, offset)
        _boxmeans.box_means(diff, np.array([asymmetry_box], dtype=np.intp), out, integral, offset + C)
    return out[0] if single else out


#: Boxes over which the position family measures the brain's share around a pixel.
POSITION_BOXES = (15, 31)


@dataclass(frozen=True)
class FeatureSpec:
    """What the feature rows of :func:`pixel_features` hold: the families, their sizes, the channels.

    Validated once when built; immutable afterwards.  A fitted model keeps one
    (``PixelModel.features``), and the model file stores its fields.

    Parameters
    ----------
    n_channels : int
        Image channels C.
    k : odd int, default=1
        Window size of the window family.
    mode : {"reflect", "constant", "edge"}, default="reflect"
        Border handling of the window.
    mean_sizes, std_sizes : sequence of odd int
        Boxes of the mean and standard-deviation families.
    asymmetry : bool, default=True
        The left-right asymmetry family and its ``asymmetry_box`` mean.
    asymmetry_box : odd int, default=15
    gradient_size : int, default=5
        Box-gradient size (0: no gradient family).
    position : bool, default=True
        The position family.

    Examples
    --------
    >>> from fastseg.features import FeatureSpec
    >>> spec = FeatureSpec(4, k=3)
    >>> spec.n_features, spec.names[:2]
    (60, ('window[-1,-1,c0]', 'window[-1,-1,c1]'))
    >>> FeatureSpec(4, k=2)
    Traceback (most recent call last):
    ...
    ValueError: k must be an odd integer >= 1, got 2
    """

    n_channels: int
    k: int = 1
    mode: str = "reflect"
    mean_sizes: tuple = ()
    std_sizes: tuple = (7, 15)
    asymmetry: bool = True
    asymmetry_box: int = ASYMMETRY_BOX
    gradient_size: int = 5
    position: bool = True

    def __post_init__(self):
        fields = {
            "n_channels": check_n_channels(self.n_channels),
            "k": check_k(self.k),
            "mode": check_mode(self.mode),
            "mean_sizes": check_odd_sizes(self.mean_sizes, "mean_sizes"),
            "std_sizes": check_odd_sizes(self.std_sizes, "std_sizes"),
            "asymmetry": check_bool(self.asymmetry, "asymmetry"),
            "asymmetry_box": check_k(self.asymmetry_box, "asymmetry_box"),
            "gradient_size": _check_gradient_size(self.gradient_size),
            "position": check_bool(self.position, "position"),
        }
        check_n_features(fields["k"], fields["n_channels"])
        for name, value in fields.items():  # the checked values, as plain Python types
            object.__setattr__(self, name, value)
        object.__setattr__(self, "names", tuple(self._names()))

    @property
    def n_features(self) -> int:
        """Columns of a feature row."""
        return len(self.names)

    @property
    def has_context(self) -> bool:
        """Whether any family besides the window is on."""
        return bool(self.mean_sizes or self.std_sizes or self.asymmetry or self.gradient_size or self.position)

    def _names(self) -> list[str]:
        C, k = self.n_channels, self.k
        channels = [f"c{c}" for c in range(C)]
        if k == 1:
            names = [f"value[{c}]" for c in channels]
        else:
            names = [f"window[{dy},{dx},c{c}]" for dy, dx, c in feature_offsets(k, C)]
        names += [f"mean{s}[{c}]" for s in self.mean_sizes for c in channels]
        names += [f"std{s}[{c}]" for s in self.std_sizes for c in channels]
        if self.asymmetry:
            names += [f"asymmetry[{c}]" for c in channels]
            names += [f"asymmetry_mean{self.asymmetry_box}[{c}]" for c in channels]
        if self.gradient_size:
            names += [f"gradient{self.gradient_size}[{c}]" for c in channels]
        if self.position:
            names += ["row_in_brain", "column_off_midline"] + [f"brain_share{s}" for s in POSITION_BOXES]
        return names

    def _kernel_plan(self, brain: np.ndarray, rows: np.ndarray) -> dict:
        """The arguments the row kernels take besides the images (``_pixfeat.pixel_context`` and the
        fused scorer), for a batch: ``brain`` and ``rows`` (N, H, W) uint8."""
        N, H, W = brain.shape
        # (vectorised: this runs for every chunk predict scores, where numpy calls per image cost about a
        # twentieth of predict's time)
        row_start = np.zeros(N + 1, dtype=np.intp)
        np.cumsum([np.count_nonzero(rows[n]) for n in range(N)], out=row_start[1:])
        bb = brain.view(bool)
        any_rows, any_cols = bb.any(axis=2), bb.any(axis=1)
        bbox = np.stack([any_rows.argmax(axis=1), H - 1 - any_rows[:, ::-1].argmax(axis=1),
                         any_cols.argmax(axis=1), W - 1 - any_cols[:, ::-1].argmax(axis=1)], axis=1).astype(np.intp)
        bbox[~any_rows.any(axis=1)] = 0  # an empty brain
        mirror = _mirror_of(any_cols) if self.asymmetry else np.zeros((N, W), dtype=np.intp)
        r = self.k // 2
        return dict(
            brain=brain, rows=rows, row_start=row_start, mirror=mirror, bbox=bbox,
            mean_sizes=np.asarray(self.mean_sizes, dtype=np.intp), std_sizes=np.asarray(self.std_sizes, dtype=np.intp),
            brain_boxes=np.asarray(POSITION_BOXES if self.position else (), dtype=np.intp), k=self.k,
            rowmap=pad_index(H, r, self.mode), colmap=pad_index(W, r, self.mode), asymmetry=self.asymmetry,
            asymmetry_box=self.asymmetry_box if self.asymmetry else 0, gradient_size=self.gradient_size,
            position=self.position,
        )


def pixel_feature_names(
    n_channels: int = 4,
    k: int = 1,
    *,
    mean_sizes=(),
    std_sizes=(7, 15),
    asymmetry: bool = True,
    asymmetry_box: int = ASYMMETRY_BOX,
    gradient_size: int = 5,
    position: bool = True,
) -> list[str]:
    """Names of the columns :func:`pixel_features` returns, in order.

    ``c`` is the channel index; window columns are ``window[dy,dx,c]``.

    Examples
    --------
    >>> from fastseg.features import pixel_feature_names
    >>> pixel_feature_names(2, std_sizes=(7,), asymmetry=False, gradient_size=0)
    ['value[c0]', 'value[c1]', 'std7[c0]', 'std7[c1]', 'row_in_brain', 'column_off_midline', 'brain_share15', 'brain_share31']
    """
    return list(FeatureSpec(n_channels, k, mean_sizes=mean_sizes, std_sizes=std_sizes, asymmetry=asymmetry,
                            asymmetry_box=asymmetry_box, gradient_size=gradient_size, position=position).names)


def pixel_features(
    images: ArrayLike,
    brain: ArrayLike,
    k: int = 1,
    *,
    mask: ArrayLike | None = None,
    mode: str = "reflect",
    mean_sizes=(),
    std_sizes=(7, 15),
    asymmetry: bool = True,
    asymmetry_box: int = ASYMMETRY_BOX,
    gradient_size: int = 5,
    position: bool = True,
    n_jobs: int | None = None,
) -> NDArray[np.float32]:
    """Feature rows of the pixels of interest: their window plus context from far around them.

    The feature families (columns in this order; :func:`pixel_feature_names`
    names them), each computed by one Cython kernel that writes only the
    requested rows (box statistics come from integral images, so their cost does
    not grow with the box size):

    1. **window**: the k x k window of every channel (:func:`window_features`,
       border ``mode``); for k = 1 the pixel's own values;
    2. **means**: each channel's mean over s x s boxes, s in ``mean_sizes``;
    3. **stds**: each channel's standard deviation over s x s boxes, s in ``std_sizes``
       (texture: tumour tissue is heterogeneous);
    4. **asymmetry**: each channel minus its value at the pixel mirrored across the
       brain's vertical midline (:func:`mirror_columns`), and the
       ``asymmetry_box`` mean of that difference (the brain is roughly
       symmetric, tumours are not);
    5. **gradient**: each channel's box-gradient magnitude at ``gradient_size``
       (the difference of the boxes right and left of, and below and above, the
       pixel; 0 turns it off);
    6. **position**: the pixel's row in the brain's bounding box (0 top, 1
       bottom), its distance from the box's vertical midline (0 to 0.5), and the
       brain's share of the 15 x 15 and 31 x 31 boxes around it (low near the
       brain's edge, where bright rims mimic tumour).

    Box statistics treat the outside of the image as 0: use them on
    brain-normalised images (:func:`fastseg.normalize_brain`), whose background
    is 0.  That is what :class:`fastseg.PixelSegmenter` does.

    Parameters
    ----------
    images : array-like of shape (H, W, C) or (N, H, W, C)
    brain : array-like of shape (H, W) or (N, H, W)
        Brain masks: the midline, the bounding box and the brain share.
    k : odd int, default=1
    mask : array-like of shape (H, W) or (N, H, W), optional
        Pixels to describe; default: the brain pixels.
    mode : {"reflect", "constant", "edge"}, default="reflect"
        Border handling of the window (k > 1).
    mean_sizes, std_sizes : sequence of odd int
    asymmetry : bool, default=True
    asymmetry_box : odd int, default=15
    gradient_size : int, default=5
    position : bool, default=True
    n_jobs : int, optional
        Threads over the images (None: 1, -1: all cores).

    Returns
    -------
    ndarray of shape (n_pixels, n_features), dtype=float32
        One row per requested pixel, in raster order over (n, y, x).

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.features import pixel_features, pixel_feature_names
    >>> x = np.random.default_rng(0).standard_normal((2, 30, 30, 4)).astype(np.float32)
    >>> brain = np.zeros((2, 30, 30), bool); brain[:, 5:25, 4:26] = True
    >>> X = pixel_features(x, brain)
    >>> X.shape, len(pixel_feature_names(4))
    ((880, 28), 28)
    """
    batch, single = check_images(images)
    N, H, W, C = batch.shape
    shape = (H, W) if single else (N, H, W)
    spec = FeatureSpec(C, k, mode=mode, mean_sizes=mean_sizes, std_sizes=std_sizes, asymmetry=asymmetry,
                       asymmetry_box=asymmetry_box, gradient_size=gradient_size, position=position)
    check_k_fits(spec.k, spec.mode, H, W)
    b = check_masks(brain, "brain", shape=shape).reshape(N, H, W).view(np.uint8)
    rows = b if mask is None else check_masks(mask, "mask", shape=shape).reshape(N, H, W).view(np.uint8)
    return _pixel_rows(batch, b, rows, spec, check_n_jobs(n_jobs))


def _pixel_rows(batch: np.ndarray, brain: np.ndarray, rows: np.ndarray, spec: "FeatureSpec",
                n_jobs: int = 1, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`pixel_features` on checked arguments: ``batch`` (N, H, W, C) float32 C-contiguous,
    ``brain`` and ``rows`` (N, H, W) uint8, ``spec`` a :class:`FeatureSpec` of C channels whose window
    fits the images.  Writes into ``out`` (a C-contiguous float32 buffer of at least n_rows x
    n_features values) when given; returns the rows."""
    from ._parallel import run_chunks, thread_buffer

    N, H, W, C = batch.shape
    plan = spec._kernel_plan(brain, rows)
    n_rows, n_columns = int(plan["row_start"][-1]), spec.n_features
    if out is None:
        out = np.empty((n_rows, n_columns), dtype=np.float32)
    else:
        out = out.reshape(-1)[:n_rows * n_columns].reshape(n_rows, n_columns)
    if n_rows == 0:
        return out
    scratch_size = _pixfeat.scratch_size(H, W, C, n_columns)

    def work(start, stop):
        # reused per thread: fresh memory costs a page fault per 4 KB on first touch
        scratch = thread_buffer(("pixel_context", scratch_size), lambda: np.empty(scratch_size, dtype=np.float64))
        _pixfeat.pixel_context(batch, out=out, offset=0, scratch=scratch, n0=start, n1=stop, **plan)

    run_chunks(work, N, n_jobs)
    return out


def multiscale_features(
    image: ArrayLike,
    intensity: bool = True,
    edges: bool = True,
    texture: bool = True,
    sigma_min: float = 0.5,
    sigma_max: float = 16,
    num_sigma: int | None = None,
    workers: int | None = None,
    *,
    channel_axis: int | None = None,
    mask: ArrayLike | None = None,
    out: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """Multiscale filter-bank features of every pixel of a 2-D or 3-D image, any number of channels.

    A drop-in for :func:`skimage.feature.multiscale_basic_features`: the same parameters, columns
    and values (within float32 rounding, see Notes), computed in compiled code.  At each scale
    sigma the image is smoothed by a Gaussian (truncated at 4 sigma, border repeated), which gives
    the *intensity*; its Sobel magnitude gives the *edges*; the eigenvalues of its Hessian
    (``numpy.gradient`` twice), in decreasing order, give the *texture*.

    Parameters
    ----------
    image : array-like of shape (Y, X) or (Z, Y, X), with a channel axis if `channel_axis` is set
        Any integer or floating dtype.  Integers are rescaled as ``skimage.util.img_as_float32``
        does (unsigned to [0, 1], signed to [-1, 1]); floating values must be finite.
    intensity, edges, texture : bool, default True
        The feature kinds to compute (at least one).
    sigma_min, sigma_max : float, default 0.5 and 16
        The smallest and largest scale, ``0 < sigma_min <= sigma_max``.
    num_sigma : int, optional
        The number of scales, log-spaced from `sigma_min` to `sigma_max`; by default one per
        octave, ``sigma_min * 2 ** i``.
    workers : int, optional
        Threads (over channels and scales); None uses every core.  Results do not depend on it.
    channel_axis : int, optional
        The axis of `image` holding channels; None for a single-channel image.
    mask : array-like of bool, optional
        The spatial shape of `image`: compute the features of these pixels only, returned as rows
        in C order.  Only the image rows they read are filtered.
    out : ndarray of float32, optional
        A C-contiguous buffer of the returned shape to write into.

    Returns
    -------
    features : ndarray of float32
        Shape ``spatial_shape + (n_features,)``, or ``(n_masked, n_features)`` with `mask`.  The
        columns run channel by channel, then scale by scale (increasing), then intensity, edges
        and the ``ndim`` Hessian eigenvalues (decreasing): ``n_features = n_channels * n_scales *
        (intensity + edges + ndim * texture)``.

    Notes
    -----
    **Agreement with scikit-image.**  Both compute in float32, in different orders, so the values
    differ by rounding.  Every column of the difference is within ``16 * eps * max|image|``, with
    eps float32's epsilon (1.19e-7) and ``max|image|`` the largest magnitude of the (rescaled)
    channel: tested for 2-D and 3-D, 1-4 channels, five dtypes and scales from 0.3 to 64, where the
    largest difference seen was below 10 of those units (scikit-image's own distance to a float64
    computation reaches 4).  The Gaussian is a sum of float32 products, so its rounding is a few eps
    times the image's magnitude; the edges and the Hessian are differences of it, so their error
    scales with the image's magnitude, not with their own (a column of small second derivatives
    can differ by more, relative to its own size).  Where the
    Hessian has a (near) double eigenvalue, scikit-image's float32 LAPACK solver (3-D) is itself
    only accurate to that bound.  On an axis of one pixel the second differences are zero (scikit-
    image raises an error there).

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.features import multiscale_features
    >>> image = np.random.default_rng(0).random((32, 32, 4), dtype=np.float32)
    >>> multiscale_features(image, channel_axis=-1).shape  # 4 channels x 6 scales x 4 features
    (32, 32, 96)
    >>> volume = np.random.default_rng(0).random((8, 16, 16), dtype=np.float32)
    >>> multiscale_features(volume, sigma_max=4, texture=False, mask=volume > 0.5).shape[1]
    8
    """
    from . import _multiscale

    arr, three_d = check_multiscale_image(image, channel_axis)
    flags = [check_bool(v, n) for v, n in ((intensity, "intensity"), (edges, "edges"), (texture, "texture"))]
    if not any(flags):
        raise ValueError("at least one of intensity, edges and texture must be True")
    sigma_min, sigma_max, num_sigma = check_scales(sigma_min, sigma_max, num_sigma)
    n_workers = check_workers(workers)
    spatial = arr.shape[:-1]
    m = None if mask is None else check_masks(mask, "mask", shape=spatial)
    scales = _multiscale.sigmas(sigma_min, sigma_max, num_sigma)
    n_channels = arr.shape[-1]
    n_features = n_channels * len(scales) * _multiscale.n_per_scale(len(spatial), *flags)
    n_rows = int(np.prod(spatial)) if m is None else int(np.count_nonzero(m))
    shape = (*spatial, n_features) if m is None else (n_rows, n_features)
    out = check_out(out, shape, inputs=(np.asarray(image),))
    shape3 = spatial if three_d else (1, *spatial)
    mask3 = None if m is None else m.reshape(shape3)
    images = _multiscale.as_channels(arr, shape3)
    _multiscale.multiscale(images, three_d, *flags, scales, mask3, out.reshape(n_rows, n_features), n_workers)
    return out
