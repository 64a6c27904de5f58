"""Fused scoring: per-pixel scores of linear and MLP classifiers computed straight from images.

Scoring a pixel classifier the obvious way builds the window feature matrix
(``window_features``: ``H * W`` rows of ``k*k*C`` floats per image, 23 MB for a
240x240x4 slice at k=5) and hands it to ``decision_function`` or
``predict_proba``.  The kernels here never build that matrix:

- a **linear** model over windows is a ``k x k x C`` correlation of the image
  with its weights; :func:`linear_scores` pads each image and adds one
  weighted, contiguous run of a padded row per tap to a block of output pixels
  held in vector registers (see ``fastseg/_ext/_linear.pyx`` for the two layouts;
  the build for this CPU is chosen at import, see ``fastseg/_ext/__init__.py``);
- an **MLP** (:func:`mlp_scores`) gathers a tile of a few hundred windows into
  a small buffer that stays in cache, multiplies it by the first layer with
  single-precision BLAS (``scipy.linalg.cython_blas.sgemm``), and runs the
  remaining layers on the tile before moving on.

Scaler folding
--------------
A ``Pipeline(StandardScaler(), classifier)`` is accepted as is.  The scaler's
affine map ``z = (x - mean) / scale`` is folded into the first layer (the
linear model counts as one layer with one output): for weights ``W`` of shape
``(k*k*C, n_out)`` and bias ``b``,

    ``W' = W / scale[:, None]``,  ``b' = b - mean @ W'``,

so ``z @ W + b == x @ W' + b'``.  A scaler with ``with_mean=False`` has no
``mean`` term and one with ``with_std=False`` no ``scale`` term; several scalers
fold one after the other.  The folding is done in float64 before the weights
are cast to float32.

Precision
---------
Scores are accumulated in float32 (the references accumulate in float64); they
agree with ``window_features(images, k) @ coef + intercept`` and with
``predict_proba`` to about ``1e-5`` relative on typical data.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._ext import _mlp, for_this_cpu
from ._parallel import run_chunks, thread_buffer as _scratch
from ._validation import (
    check_finite_weights,
    check_images,
    check_k,
    check_k_fits,
    check_linear_model,
    check_masks,
    check_mlp_model,
    check_mlp_weights,
    check_mode,
    check_n_jobs,
    check_out,
    non_finite_error,
    check_pipeline,
    check_real,
    check_scaler_width,
)
from .features import pad_index, padded_scratch

_linear = for_this_cpu("_linear")  # the linear kernels built for this CPU

__all__ = ["linear_scores", "mlp_scores", "MLPWeights", "Network"]


class MLPWeights(NamedTuple):
    """The raw weights of a binary MLP, accepted by :func:`mlp_scores` in place of an estimator.

    Laid out as scikit-learn's ``MLPClassifier`` stores them (``coefs_``,
    ``intercepts_``, ``activation``), e.g. to score with weights loaded from a
    file without unpickling an estimator.

    Attributes
    ----------
    coefs : sequence of array-like of shape (n_in, n_out)
        One matrix per layer; the first has ``k*k*C`` rows (feature column
        order of :func:`fastseg.feature_offsets`), the last one column.
    intercepts : sequence of array-like of shape (n_out,)
        One bias vector per layer.
    activation : {"identity", "relu", "tanh", "logistic"}
        Activation of the hidden layers; the output unit is logistic.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg import mlp_scores
    >>> from fastseg.scoring import MLPWeights
    >>> w = MLPWeights([np.ones((9, 2)), np.ones((2, 1))], [np.zeros(2), np.zeros(1)], "relu")
    >>> mlp_scores(np.zeros((4, 4, 1)), w, k=3)[0, 0]
    np.float32(0.5)
    """

    coefs: Sequence[ArrayLike]
    intercepts: Sequence[ArrayLike]
    activation: str

#: Activation codes understood by the MLP kernel.
_ACTIVATION_CODES = {"identity": 0, "relu": 1, "tanh": 2, "logistic": 3}

#: Windows per tile in the MLP kernel: a 64 x k*k*C float32 tile (25 KB at k=5,
#: C=4) and its hidden activations stay in L1/L2 while all layers run on it
#: (measured on 240x240x4 slices: 64 is as fast as 32 and faster than 128-512).
_MLP_TILE = 64

#: Output rows per band in the planar linear kernel: a 32-row band of padded
#: planes (150 KB for 240x240x4 at k=7) stays in L2 between padding and scoring.
_LINEAR_BAND = 32

_blas_controller = None


def _single_threaded_blas():
    """Context manager capping BLAS to one thread: each tile's GEMM is small, and
    parallelism comes from ``n_jobs`` over images.  The threadpoolctl controller is
    built once (building it scans the loaded libraries, ~1 ms)."""
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def _tile_splits(mask, n_pixels: int, tile: int, n_parts: int) -> list:
    """Raster positions splitting one image into ``n_parts`` runs that start on tile boundaries.

    Tiles are runs of ``tile`` selected pixels in raster order; starting each part
    at the first pixel of a tile keeps every GEMM, and so every result, the same
    as in one serial pass.
    """
    if mask is None:
        n_tiles = -(-n_pixels // tile)
        return [min(n_pixels, -(-n_tiles * i // n_parts) * tile) for i in range(n_parts)] + [n_pixels]
    selected = np.flatnonzero(mask.ravel())
    n_tiles = -(-selected.size // tile)
    splits = [0]
    for i in range(1, n_parts):
        first = -(-n_tiles * i // n_parts) * tile  # index of the tile's first selected pixel
        splits.append(int(selected[first]) if first < selected.size else n_pixels)
    return splits + [n_pixels]


def _fold_scalers(scalers, W: np.ndarray, b: np.ndarray):
    """Fold StandardScaler steps (pipeline order) into the first layer ``(W, b)``."""
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite results are rejected by the caller
        for mean, scale in reversed(scalers):
            if scale is not None:
                W = W / scale[:, None]
            if mean is not None:
                b = b - mean @ W
    return W, b


@lru_cache(maxsize=64)
def _pad_map(size: int, r: int, mode: str) -> NDArray[np.intp]:
    """``features.pad_index``, cached (read-only): scoring one slice at a time reuses the same maps."""
    index = pad_index(size, r, mode)
    index.setflags(write=False)
    return index


def _check_image_args(images, k, mode, mask, fill_value, n_jobs, *, finite=True):
    """Shared validation of the image-side arguments."""
    batch, single = check_images(images, finite=finite)
    k = check_k(k)
    mode = check_mode(mode)
    fill_value = check_real(fill_value, "fill_value")
    n_jobs = check_n_jobs(n_jobs)
    N, H, W, C = batch.shape
    check_k_fits(k, mode, H, W)
    m = None
    if mask is not None:
        mask_shape = (H, W) if single else (N, H, W)
        m = check_masks(mask, "mask", shape=mask_shape).reshape(N, H, W)
    r = k // 2
    return batch, single, k, mode, m, fill_value, n_jobs, _pad_map(H, r, mode), _pad_map(W, r, mode)


def linear_scores(
    images: ArrayLike,
    model,
    k: int,
    *,
    mode: str = "reflect",
    mask: ArrayLike | None = None,
    fill_value: float = 0.0,
    n_jobs: int | None = None,
    out: np.ndarray | None = None,
) -> NDArray[np.float32]:
    """Decision values of a binary linear pixel classifier, computed straight from the images.

    Equal (to float32 rounding) to
    ``(window_features(images, k, mode=mode) @ coef + intercept).reshape(N, H, W)``
    without building the feature matrix: the model is applied as a
    ``k x k x C`` correlation of each image with its weights.

    Parameters
    ----------
    images : array-like of shape (H, W, C) or (N, H, W, C)
        One image or a stack, any real dtype (computed in float32); finite.
    model : fitted linear classifier, Pipeline, or tuple (coef, intercept)
        A binary scikit-learn linear classifier (``LinearSVC``, ``SGDClassifier``,
        ``LogisticRegression``, ``RidgeClassifier``, ...) fitted on
        ``window_features(..., k)``; a ``Pipeline`` of ``StandardScaler`` steps
        ending in one (the scalers are folded into the weights, see the module
        notes); or ``coef`` of length ``k*k*C`` in the column order of
        :func:`fastseg.feature_offsets` with a scalar ``intercept``.
    k : int
        Odd window size the model was fitted with.
    mode : {"reflect", "constant", "edge"}, default="reflect"
        Border handling, as in :func:`fastseg.window_features`.
    mask : array-like of shape (H, W) or (N, H, W), optional
        Pixels to score (bool, or integers with non-zero = selected).  Pixels
        outside it are set to ``fill_value``; blocks of 16 (four channels) or 64
        pixels of a row with no selected pixel are not computed at all.
    fill_value : float, default=0.0
        Value of the pixels outside ``mask``.
    n_jobs : int, optional
        Threads over the images of a batch: None means 1, -1 all cores (capped
        by ``threadpoolctl.threadpool_limits``).  Results do not depend on it.
    out : ndarray of shape (N, H, W) or (H, W), dtype=float32, optional
        Where to write the scores (C-contiguous, not overlapping the inputs);
        a new array if None.

    Returns
    -------
    scores : ndarray of shape (N, H, W), or (H, W) for one image, dtype=float32
        The model's ``decision_function`` value of each pixel (positive class
        ``classes_[1]``).

    Raises
    ------
    TypeError
        If ``model`` is not a linear classifier / (coef, intercept) pair, or an
        argument has the wrong type.
    ValueError
        If the model is not fitted (``NotFittedError``) or not binary, its weight
        count is not ``k*k*C`` (wrong ``k`` or channel count), its weights are not
        finite, or the images / mask are invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg import linear_scores, window_features
    >>> rng = np.random.default_rng(0)
    >>> images = rng.random((2, 6, 5, 3), dtype=np.float32)
    >>> coef = rng.standard_normal(3 * 3 * 3)
    >>> scores = linear_scores(images, (coef, 0.5), k=3)
    >>> scores.shape, scores.dtype
    ((2, 6, 5), dtype('float32'))
    >>> X = window_features(images, k=3)
    >>> np.allclose(scores.ravel(), X @ coef + 0.5, atol=1e-5)
    True
    >>> inside = np.zeros((6, 5), dtype=bool); inside[2:4, 1:4] = True
    >>> s = linear_scores(images[0], (coef, 0.5), k=3, mask=inside, fill_value=np.nan)
    >>> int(np.isnan(s).sum())
    24
    """
    # Without a mask every pixel is scored, and a NaN or infinite input makes its own pixel's score
    # non-finite (0 * inf is NaN): the kernels report that as they pad, so no separate pass is made.
    batch, single, k, mode, m, fill_value, n_jobs, rowmap, colmap = _check_image_args(
        images, k, mode, mask, fill_value, n_jobs, finite=mask is not None
    )
    N, H, W, C = batch.shape
    scalers, classifier = check_pipeline(model)
    coef, intercept = check_linear_model(classifier, k, C)
    check_scaler_width(scalers, coef.shape[0], k, C)
    w, b = _fold_scalers(scalers, coef[:, None], np.array([intercept]))
    with np.errstate(over="ignore"):  # overflow to inf is reported just below
        weights = w[:, 0].astype(np.float32).reshape(k, k, C)  # feature order (dy, dx, c)
        bias = np.float32(b[0])
    check_finite_weights((weights, bias))
    result = check_out(out, (H, W) if single else (N, H, W), inputs=(images, mask))
    if _linear_scores(batch, weights, bias, rowmap, colmap, m, fill_value, n_jobs, result.reshape(N, H, W)):
        raise non_finite_error(batch)
    return result


def _linear_scores(batch, weights, bias, rowmap, colmap, mask, fill_value, n_jobs, out) -> int:
    """:func:`linear_scores` on checked arguments: ``batch`` (N, H, W, C) float32, ``weights``
    (k, k, C) float32 and ``bias`` float32, the pad maps of k, ``mask`` (N, H, W) uint8 or None,
    ``out`` (N, H, W) float32.  Returns the number of images with a non-finite score."""
    N, H, W, C = batch.shape
    k = weights.shape[0]
    r = k // 2
    if _linear.interleaved_ok(C, W):
        kernel = _linear.linear_scores_interleaved

        def scratch() -> np.ndarray:
            return _scratch(("padded", H, W, C, k), lambda: padded_scratch(H, W, C, k))
    else:
        kernel = _linear.linear_scores_planar
        row_len = -(-W // _linear.BLOCK) * _linear.BLOCK + 2 * r
        band = min(H, _LINEAR_BAND)

        def scratch() -> np.ndarray:
            shape = (C, band + 2 * r, row_len)
            return _scratch(("planes",) + shape, lambda: np.empty(shape, dtype=np.float32))

    def work(start: int, stop: int) -> int:
        return kernel(
            batch[start:stop], rowmap, colmap, weights, bias,
            None if mask is None else mask[start:stop], fill_value, out[start:stop], scratch(),
        )

    return sum(run_chunks(work, N, n_jobs))


def mlp_scores(
    images: ArrayLike,
    model,
    k: int,
    *,
    mode: str = "reflect",
    mask: ArrayLike | None = None,
    fill_value: float = 0.0,
    n_jobs: int | None = None,
    out: np.ndarray | None = None,
) -> NDArray[np.float32]:
    """Positive-class probability of a binary MLP pixel classifier, computed straight from the images.

    Equal (to float32 rounding) to
    ``model.predict_proba(window_features(images, k, mode=mode))[:, 1]`` reshaped
    to ``(N, H, W)``.  The feature matrix is never built: windows are gathered a
    tile of 64 pixels at a time into a small buffer, pushed through all layers
    (first layer by single-precision BLAS), and only the probabilities are kept.

    Parameters
    ----------
    images : array-like of shape (H, W, C) or (N, H, W, C)
        One image or a stack, any real dtype (computed in float32); finite.
    model : MLPClassifier, Pipeline or MLPWeights
        A fitted binary ``sklearn.neural_network.MLPClassifier`` (any number of
        hidden layers; activation relu, tanh, logistic or identity) fitted on
        ``window_features(..., k)``; a ``Pipeline`` of ``StandardScaler``
        steps ending in one (folded into the first layer, see the module notes);
        or the raw weights as :class:`MLPWeights`.
    k : int
        Odd window size the model was fitted with.
    mode : {"reflect", "constant", "edge"}, default="reflect"
        Border handling, as in :func:`fastseg.window_features`.
    mask : array-like of shape (H, W) or (N, H, W), optional
        Pixels to score (bool, or integers with non-zero = selected).  Only
        these pixels are gathered and computed; the others are set to ``fill_value``.
    fill_value : float, default=0.0
        Value of the pixels outside ``mask``.
    n_jobs : int, optional
        Threads: over the images of a batch, or over the rows of each image when
        there are fewer images than threads.  None means 1, -1 all cores (capped
        by ``threadpoolctl.threadpool_limits``).  Results do not depend on it.
    out : ndarray of shape (N, H, W) or (H, W), dtype=float32, optional
        Where to write the probabilities (C-contiguous, not overlapping the
        inputs); a new array if None.

    Returns
    -------
    proba : ndarray of shape (N, H, W), or (H, W) for one image, dtype=float32
        Probability of the positive class ``classes_[1]``.

    Raises
    ------
    TypeError
        If ``model`` is not an MLPClassifier (or Pipeline ending in one) or
        MLPWeights, or an argument has the wrong type.
    ValueError
        If the model is not fitted (``NotFittedError``) or not binary, its input
        width is not ``k*k*C`` (wrong ``k`` or channel count), its weights are
        not finite, or the images / mask are invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neural_network import MLPClassifier
    >>> from fastseg import mlp_scores, window_features
    >>> rng = np.random.default_rng(0)
    >>> images = rng.random((2, 8, 8, 2), dtype=np.float32)
    >>> X = window_features(images, k=3)
    >>> y = X[:, 8] > 0.5                       # centre pixel, channel 0
    >>> mlp = MLPClassifier((8,), solver="lbfgs", max_iter=500, random_state=0).fit(X, y)
    >>> proba = mlp_scores(images, mlp, k=3)
    >>> proba.shape
    (2, 8, 8)
    >>> np.allclose(proba.ravel(), mlp.predict_proba(X)[:, 1], rtol=1e-4, atol=1e-6)
    True
    """
    batch, single, k, mode, m, fill_value, n_jobs, rowmap, colmap = _check_image_args(
        images, k, mode, mask, fill_value, n_jobs
    )
    N, H, W, C = batch.shape
    scalers, classifier = check_pipeline(model)
    if isinstance(classifier, MLPWeights):
        coefs, intercepts, activation = check_mlp_weights(*classifier, k, C)
    else:
        coefs, intercepts, activation = check_mlp_model(classifier, k, C)
    check_scaler_width(scalers, coefs[0].shape[0], k, C)
    coefs = list(coefs)
    intercepts = list(intercepts)
    coefs[0], intercepts[0] = _fold_scalers(scalers, coefs[0], intercepts[0])
    with np.errstate(over="ignore"):  # overflow to inf is reported just below
        network = Network.mlp(coefs, intercepts, activation)
    check_finite_weights((network.weights, network.biases))
    result = check_out(out, (H, W) if single else (N, H, W), inputs=(images, mask))
    _mlp_scores(batch, network, k, rowmap, colmap, m, fill_value, n_jobs, result.reshape(N, H, W))
    return result


def _mlp_scores(batch, network: "Network", k: int, rowmap, colmap, mask, fill_value, n_jobs, out) -> None:
    """:func:`mlp_scores` on checked arguments (``network`` of k*k*C inputs, the probability as its
    output), into ``out`` (N, H, W) float32."""
    N, H, W, C = batch.shape
    widest = int(network.sizes[1:].max())
    tile_rows = _MLP_TILE

    def score(start: int, stop: int, pos_start: int, pos_stop: int) -> None:
        padded = _scratch(("padded", H, W, C, k), lambda: padded_scratch(H, W, C, k))
        tile = np.empty((tile_rows, k * k * C), dtype=np.float32)
        act = np.empty((2, tile_rows * widest), dtype=np.float32)
        index = np.empty(tile_rows, dtype=np.intp)
        _mlp.mlp_scores(
            batch[start:stop], rowmap, colmap, k, network.weights, network.biases, network.sizes,
            network.activation_code, None if mask is None else mask[start:stop], fill_value, out[start:stop],
            padded, tile, act, index, pos_start, pos_stop,
        )

    with _single_threaded_blas():
        if N >= n_jobs:  # threads over images
            run_chunks(lambda a, b: score(a, b, 0, H * W), N, n_jobs)
        else:  # fewer images than threads: threads share each image, split on tile boundaries
            for n in range(N):
                splits = _tile_splits(None if mask is None else mask[n], H * W, tile_rows, n_jobs)
                run_chunks(lambda a, b: score(n, n + 1, splits[a], splits[b]), len(splits) - 1, n_jobs)


#: Rows per GEMM in :func:`_network_row_scores`: the activations of a tile stay in L1/L2.
_ROWS_TILE = 256

#: The output unit's activation code for the row kernels: the probability (logistic) or the unit's
#: input itself (the logit of an MLP or a logistic regression, the margin of a linear SVM).
OUTPUT_CODES = {"proba": _ACTIVATION_CODES["logistic"], "decision": _ACTIVATION_CODES["identity"]}


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Network:
    """A fitted binary classifier as the scoring kernels run it: layers, activation, one output unit.

    A linear model is the network without hidden layers.  The float64 weights
    (any scaler already folded into the first layer) are kept as given, read-only;
    the kernels' float32 arrays are made once, when the network is built.

    Parameters
    ----------
    coefs : tuple of ndarray of shape (n_in, n_out)
        One matrix per layer, the last with one column.
    intercepts : tuple of ndarray of shape (n_out,)
        One bias vector per layer.
    activation : {"identity", "relu", "tanh", "logistic"}
        Activation of the hidden layers.
    kind : {"mlp", "linear"}
        How the model file names it.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.scoring import Network
    >>> net = Network.linear(np.array([1.0, -2.0]), 0.5)
    >>> net.kind, net.n_inputs, net.sizes.tolist()
    ('linear', 2, [2, 1])
    """

    coefs: tuple
    intercepts: tuple
    activation: str
    kind: str

    def __post_init__(self):
        object.__setattr__(self, "coefs", tuple(_read_only(np.asarray(w, dtype=np.float64)) for w in self.coefs))
        object.__setattr__(self, "intercepts",
                           tuple(_read_only(np.ravel(np.asarray(b, dtype=np.float64))) for b in self.intercepts))
        # what the row kernels take: every layer's matrix, then every bias, each concatenated in float32
        with np.errstate(over="ignore"):  # weights beyond float32 become inf, which callers reject
            weights = np.concatenate([np.ravel(w) for w in self.coefs]).astype(np.float32)
            biases = np.concatenate(self.intercepts).astype(np.float32)
        sizes = np.array([self.coefs[0].shape[0]] + [w.shape[1] for w in self.coefs], dtype=np.intp)
        for name, value in (("weights", weights), ("biases", biases), ("sizes", sizes)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "activation_code", _ACTIVATION_CODES[self.activation])

    @classmethod
    def linear(cls, coef: ArrayLike, intercept: float) -> "Network":
        """A linear model ``x @ coef + intercept`` (its output unit's input is the decision value)."""
        coef = np.ravel(np.asarray(coef, dtype=np.float64))
        return cls((coef[:, None],), (np.array([float(intercept)]),), "identity", "linear")

    @classmethod
    def mlp(cls, coefs, intercepts, activation: str) -> "Network":
        """An MLP laid out as scikit-learn's ``MLPClassifier`` stores it."""
        return cls(tuple(coefs), tuple(intercepts), activation, "mlp")

    @property
    def n_inputs(self) -> int:
        """Width of the first layer's input."""
        return int(self.sizes[0])

    @property
    def widest(self) -> int:
        """Width of the widest layer's output."""
        return int(self.sizes[1:].max())


def _network_row_scores(rows: np.ndarray, network: Network, output: int, n_jobs: int = 1,
                        segments: np.ndarray | None = None) -> NDArray[np.float32]:
    """The network's output for feature rows already in memory (no window gather): the probability
    or the output unit's input, as ``output`` (:data:`OUTPUT_CODES`) says.

    ``rows`` is a C-contiguous float32 (n, F) matrix of finite values; ``segments`` (the first row
    of each segment, e.g. of each image, then n) keeps every GEMM tile inside one segment, so that
    a segment's results do not depend on what else is in the batch; threads share the segments (or
    the tiles of a single one).  The results are the same for any ``n_jobs``."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    tile = _ROWS_TILE
    n = rows.shape[0]
    out = np.empty(n, dtype=np.float32)
    bounds = np.asarray([0, n] if segments is None else segments, dtype=np.intp)
    if len(bounds) == 2:  # one segment: threads take whole tiles of it
        bounds = np.append(np.arange(0, n, tile), n) if n else bounds

    def work(a: int, b: int) -> None:
        act = np.empty((2, tile * network.widest), dtype=np.float32)
        for i in range(a, b):
            lo, hi = bounds[i], bounds[i + 1]
            _mlp.mlp_rows(rows[lo:hi], network.weights, network.biases, network.sizes, network.activation_code,
                          out[lo:hi], act, tile, output)

    with _single_threaded_blas():
        run_chunks(work, len(bounds) - 1, n_jobs)
    return out


def _kernel_logistic(z: np.ndarray) -> NDArray[np.float32]:
    """The logistic of float32 values exactly as the kernels' output unit computes it (``_mlp``'s
    ``activate``: ``1 / (1 + expf(-z))`` in double, rounded to float32), through ``mlp_rows`` with a
    one-weight network: ``1 * z + 0`` is ``z``."""
    z = np.ascontiguousarray(z, dtype=np.float32).reshape(-1, 1)
    out = np.empty(z.shape[0], dtype=np.float32)
    one, zero, sizes = np.ones(1, np.float32), np.zeros(1, np.float32), np.array([1, 1], dtype=np.intp)
    _mlp.mlp_rows(z, one, zero, sizes, _ACTIVATION_CODES["identity"], out,
                  np.empty((2, _ROWS_TILE), dtype=np.float32), _ROWS_TILE, OUTPUT_CODES["proba"])
    return out


def _floats_from_keys(keys) -> NDArray[np.float32]:
    """The float32 values at ``keys`` in the order of float32 values (+0 and -0 both key 0): a key is
    the value's bits for a non-negative value, minus the magnitude's bits for a negative one."""
    keys = np.asarray(keys, dtype=np.int64)
    bits = np.where(keys >= 0, keys, 0x80000000 | -keys)
    return bits.astype(np.uint32).view(np.float32)


@lru_cache(maxsize=32)
def _logistic_cut(threshold: float) -> float | None:
    """The least float32 ``z`` with ``logistic(z) > threshold`` (the kernels' logistic, compared as
    predict compares probabilities), so that ``z >= cut`` gives the same mask from the output unit's
    input as ``probability > threshold`` from its output, without the exp of every pixel.

    ``-inf`` if every value passes, NaN if none does.  The search is a bisection over the ordered
    float32 values, so it relies on the logistic being non-decreasing there; that is checked on the
    8,193 floats around the cut (farther away the probabilities differ from the threshold by many
    float32 steps, more than any rounding).  None if the check fails: predict then compares the
    probabilities themselves.
    """
    def above(keys) -> np.ndarray:
        return np.greater(_kernel_logistic(_floats_from_keys(keys)), threshold)

    inf = 0x7F800000  # the key of +inf; -inf's is -inf
    if above([-inf])[0]:
        return float("-inf")
    if not above([inf])[0]:
        return float("nan")
    lo, hi = -inf, inf  # not above at lo, above at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if above([mid])[0]:
            hi = mid
        else:
            lo = mid
    cut = _floats_from_keys([hi])[0]
    z = _floats_from_keys(np.arange(max(-inf, hi - 4096), min(inf, hi + 4096) + 1))
    if not np.array_equal(np.greater(_kernel_logistic(z), threshold), z >= cut):
        return None
    return float(cut)
