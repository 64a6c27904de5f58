"""Input validation: the only place where fastseg coerces or rejects user input.

Every public function calls these helpers before touching a kernel, so that bad
input is turned into a ``TypeError`` (wrong type or dtype kind) or a
``ValueError`` (wrong value or shape) whose message names the parameter and
shows what was received.  Inputs are never modified: coercion makes a copy
when (and only when) the dtype or memory layout has to change.
"""
from __future__ import annotations

import numbers
import os

import numpy as np

__all__ = [
    "MODES",
    "SEGMENTER_PARAMETERS",
    "check_bool",
    "check_bytes",
    "check_connectivity",
    "check_dask_images",
    "check_dask_masks",
    "check_finite_weights",
    "check_fraction",
    "check_images",
    "check_k",
    "check_k_fits",
    "check_linear_model",
    "check_masks",
    "check_min_size",
    "check_mlp_model",
    "check_mlp_weights",
    "check_mode",
    "check_n_channels",
    "check_n_features",
    "check_n_jobs",
    "check_odd_sizes",
    "check_out",
    "check_params",
    "check_path",
    "check_pipeline",
    "check_real",
    "check_scaler_width",
    "check_multiscale_image",
    "check_scales",
    "check_workers",
    "non_finite_error",
]

#: Border modes understood by every window kernel (numpy.pad's meanings; constant = 0).
MODES = ("reflect", "constant", "edge")

_REAL_KINDS = "iuf"


def _describe(x) -> str:
    """Short description of a received value for error messages."""
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    text = repr(x)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(x).__name__} {text}"


def _as_array(x, name: str) -> np.ndarray:
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and other oddities
        raise TypeError(f"{name} must be array-like, got {_describe(x)}: {exc}") from None
    return arr


def check_images(images, name: str = "images", *, finite: bool = True):
    """Validate an image or a stack of images and return it as a 4-D float32 array.

    Parameters
    ----------
    images : array-like of shape (H, W, C) or (N, H, W, C)
        Any real (integer or floating) dtype.
    name : str
        Parameter name used in error messages.
    finite : bool
        Reject NaN and infinite values (a NaN feature silently poisons a classifier).
        False only where the caller's first kernel reads every value and reports
        them (the brain normalisation), so that no separate pass is made.

    Returns
    -------
    batch : ndarray of shape (N, H, W, C), dtype=float32, C-contiguous
        A copy only when the dtype or layout had to change.
    single : bool
        True when a single (H, W, C) image was given.
    """
    arr = _as_array(images, name)
    if arr.dtype.kind not in _REAL_KINDS:
        raise TypeError(
            f"{name} must have a real (integer or floating) dtype, got dtype {arr.dtype}"
        )
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{name} must have shape (H, W, C) or (N, H, W, C), got ndim={arr.ndim} "
            f"with shape {arr.shape}"
        )
    if arr.size == 0 or 0 in arr.shape:
        raise ValueError(f"{name} must not have zero-size axes, got shape {arr.shape}")
    single = arr.ndim == 3
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        batch = np.ascontiguousarray(arr[None] if single else arr, dtype=np.float32)
    # Integers cannot be NaN and cannot overflow float32 (max ~3.4e38), so only floats are checked.
    if finite and arr.dtype.kind == "f" and not _all_finite(batch):
        raise non_finite_error(batch, name)
    return batch, single


def non_finite_error(batch: np.ndarray, name: str = "images") -> ValueError:
    """The ValueError for images holding NaN or infinite values (``batch``: the checked float32 array)."""
    n_bad = int(np.size(batch) - np.count_nonzero(np.isfinite(batch)))
    return ValueError(f"{name} must contain only finite values, got {n_bad} NaN or infinite value(s)")


def _all_finite(a: np.ndarray) -> bool:
    """Whether every value of a float array is finite, without a temporary of its size.

    A sum is finite only if every term is (NaN and infinities propagate); a sum of
    finite values that overflows is looked at exactly."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(a)):
            return True
    return bool(np.isfinite(a).all())


def check_k(k, name: str = "k") -> int:
    """Validate a window size: an odd integer >= 1 (bool is rejected)."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name} must be an odd integer >= 1, got {_describe(k)}")
    k = int(k)
    if k < 1 or k % 2 == 0:
        raise ValueError(f"{name} must be an odd integer >= 1, got {k}")
    return k


#: Most feature columns a window may have (k * k * C): beyond this no sane use exists,
#: and the arrays describing it would exhaust memory before numpy said so.
MAX_FEATURES = 10**8


def check_n_channels(n_channels, name: str = "n_channels") -> int:
    """Validate a channel count: an integer >= 1 (bool is rejected)."""
    if isinstance(n_channels, (bool, np.bool_)) or not isinstance(n_channels, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {_describe(n_channels)}")
    if n_channels < 1:
        raise ValueError(f"{name} must be a positive integer, got {n_channels}")
    return int(n_channels)


def check_n_features(k: int, n_channels: int, name: str = "k") -> None:
    """Reject windows with more than :data:`MAX_FEATURES` columns, before anything is allocated."""
    if k * k * n_channels > MAX_FEATURES:
        raise ValueError(f"{name}={k} is too large: k * k * n_channels = {k * k * n_channels} feature columns, "
                         f"more than {MAX_FEATURES}")


def check_bool(value, name: str) -> bool:
    """Validate a flag: True or False (numpy bools included; 0/1 and strings are rejected)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def check_path(path, name: str = "path"):
    """Validate a filesystem path argument: a str or os.PathLike (not None, not bytes)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike path, got {_describe(path)}")
    return path


def check_bytes(data, name: str = "data") -> bytes:
    """Validate a bytes-like argument (bytes, bytearray, memoryview) and return it as ``bytes``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes, got {_describe(data)}")
    return bytes(data)


def check_mode(mode, name: str = "mode") -> str:
    """Validate a border mode, one of :data:`MODES`."""
    if not isinstance(mode, str):
        raise TypeError(f"{name} must be one of {MODES}, got {_describe(mode)}")
    if mode not in MODES:
        raise ValueError(f"{name} must be one of {MODES}, got {mode!r}")
    return mode


def check_k_fits(k: int, mode: str, height: int, width: int, name: str = "k") -> None:
    """Check that a k x k window is allowed for an image of this size and border mode.

    ``mode="reflect"`` mirrors once without repeating the edge pixel, so the
    half-width ``k // 2`` must be smaller than both image sides.  For the other
    modes the half-width may not exceed the larger side: a wider window would
    only add padding.
    """
    r = k // 2
    if mode == "reflect" and r >= min(height, width):
        raise ValueError(
            f"{name}={k} is too large for mode='reflect' on {height}x{width} images: "
            f"k // 2 must be smaller than both sides (k <= {2 * min(height, width) - 1}); "
            "use a smaller k or mode='edge'/'constant'"
        )
    if r > max(height, width):
        raise ValueError(
            f"{name}={k} is too large for {height}x{width} images: "
            f"k // 2 may not exceed the larger side (k <= {2 * max(height, width) + 1})"
        )


def check_masks(masks, name: str = "masks", *, shape=None, ndims=(2, 3)):
    """Validate binary mask(s) and return them as a C-contiguous uint8 array of 0/1.

    Accepted: bool; any integer dtype (non-zero = foreground); floating dtypes
    only when every value is 0 or 1.

    Parameters
    ----------
    masks : array-like
    name : str
        Parameter name used in error messages.
    shape : tuple of int, optional
        Exact shape required (for a mask that must match images).
    ndims : tuple of int
        Allowed numbers of dimensions when ``shape`` is None.

    Returns
    -------
    ndarray of dtype uint8, C-contiguous, values in {0, 1}
    """
    arr = _as_array(masks, name)
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(
            f"{name} must be a boolean or integer mask, got dtype {arr.dtype}"
        )
    if shape is not None:
        if arr.shape != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got shape {arr.shape}")
    elif arr.ndim not in ndims:
        allowed = " or ".join(str(d) for d in ndims)
        raise ValueError(f"{name} must have {allowed} dimensions, got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} must not have zero-size axes, got shape {arr.shape}")
    if kind == "f":
        ok = (arr == 0) | (arr == 1)
        if not ok.all():
            bad = arr[~ok].ravel()[0].item()
            raise ValueError(
                f"{name} with a floating dtype may hold only 0 and 1, got value {bad!r}"
            )
    if kind == "b":
        return np.ascontiguousarray(arr).view(np.uint8)
    if arr.dtype == np.uint8 and arr.flags.c_contiguous and arr.max() <= 1:
        return arr  # already 0/1 bytes (what this returns): no copy
    return np.ascontiguousarray(arr != 0).view(np.uint8)


def _check_known_chunks(arr, name: str) -> None:
    if any(np.isnan(s) for s in arr.shape):
        raise ValueError(f"{name} must have known chunk sizes, got shape {arr.shape}; "
                         f"call {name}.compute_chunk_sizes() first")


def check_dask_images(images, name: str = "images", *, n_channels: int | None = None):
    """Validate a dask array of image slices, lazily: type, dtype kind, shape; values are checked per chunk.

    Parameters
    ----------
    images : dask.array.Array of shape (N, H, W, C)
        Any real dtype, known chunk sizes.
    name : str
        Parameter name used in error messages.
    n_channels : int, optional
        The channel count C must equal (a fitted segmenter's).

    Returns
    -------
    dask.array.Array
        ``images`` itself (nothing is computed or copied).
    """
    import dask.array as da  # only fastseg.dask calls this, with dask installed

    if not isinstance(images, da.Array):
        raise TypeError(
            f"{name} must be a dask array of shape (N, H, W, C), got {_describe(images)}; "
            "wrap a numpy array with dask.array.from_array(x, chunks=(64, -1, -1, -1))"
        )
    if images.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name} must have a real (integer or floating) dtype, got dtype {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"{name} must have shape (N, H, W, C), got ndim={images.ndim} with shape {images.shape}")
    _check_known_chunks(images, name)
    if 0 in images.shape:
        raise ValueError(f"{name} must not have zero-size axes, got shape {images.shape}")
    if n_channels is not None and images.shape[3] != n_channels:
        raise ValueError(f"{name} have {images.shape[3]} channels but the model was fitted on {n_channels}")
    return images


def check_dask_masks(masks, name: str = "masks", *, shape):
    """Validate masks for :func:`check_dask_images` images: a dask array (checked lazily) or array-like.

    A dask array must have a boolean, integer or floating dtype and exactly
    ``shape``; its values (floating ones must be 0 or 1) are checked per chunk
    when computed.  Anything else goes through :func:`check_masks` now and is
    wrapped in a dask array of one chunk along every axis but the first.

    Returns
    -------
    dask.array.Array of shape ``shape``
    """
    import dask.array as da

    shape = tuple(int(s) for s in shape)
    if isinstance(masks, da.Array):
        if masks.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a boolean or integer mask, got dtype {masks.dtype}")
        _check_known_chunks(masks, name)
        if masks.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got shape {masks.shape}")
        return masks
    arr = check_masks(masks, name, shape=shape).view(bool)
    return da.from_array(arr, chunks=(-1,) + shape[1:])


def check_connectivity(connectivity, name: str = "connectivity") -> int:
    """Validate a 2-D connectivity: 1 (4-neighbour) or 2 (8-neighbour)."""
    if isinstance(connectivity, (bool, np.bool_)) or not isinstance(connectivity, numbers.Integral):
        raise TypeError(f"{name} must be 1 or 2, got {_describe(connectivity)}")
    if connectivity not in (1, 2):
        raise ValueError(f"{name} must be 1 (4-neighbour) or 2 (8-neighbour), got {connectivity}")
    return int(connectivity)


def check_min_size(min_size, name: str = "min_size") -> int:
    """Validate a component size threshold: an integer >= 0."""
    if isinstance(min_size, (bool, np.bool_)) or not isinstance(min_size, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 0, got {_describe(min_size)}")
    if min_size < 0:
        raise ValueError(f"{name} must be >= 0, got {min_size}")
    return int(min_size)


def check_fraction(value, name: str) -> float:
    """Validate a fraction: a real number in [0, 1] (bool is rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {_describe(value)}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_out(out, shape, name: str = "out", *, dtype=np.float32, inputs=()):
    """Validate a caller-provided output buffer, or allocate one when ``out`` is None.

    The buffer must be an ndarray of exactly ``shape`` and ``dtype``, C-contiguous,
    writeable and not sharing memory with any of ``inputs``.
    """
    shape = tuple(int(s) for s in shape)
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {_describe(out)}")
    if out.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got dtype {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    for arr in inputs:
        if isinstance(arr, np.ndarray) and np.shares_memory(out, arr):
            raise ValueError(f"{name} must not share memory with the input arrays")
    return out


def check_n_jobs(n_jobs, name: str = "n_jobs") -> int:
    """Resolve ``n_jobs`` as scikit-learn does: None -> 1, -1 -> all cores, -2 -> all but one.

    The result is also capped by the current threadpoolctl OpenMP limit, so that
    ``with threadpool_limits(1):`` makes fastseg serial as it does scikit-learn.
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, numbers.Integral):
        raise TypeError(f"{name} must be None or a non-zero integer, got {_describe(n_jobs)}")
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError(f"{name} must be None or a non-zero integer, got 0")
    n_cpu = os.cpu_count() or 1
    n = n_jobs if n_jobs > 0 else max(1, n_cpu + 1 + n_jobs)
    if n > 1:
        n = min(n, _threadpool_cap())
    return n


def _threadpool_cap() -> int:
    """The OpenMP thread limit currently set through threadpoolctl (a large number if none)."""
    from threadpoolctl import threadpool_info

    caps = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "openmp"]
    return min(caps) if caps else 1 << 30


# --------------------------------------------------------------------------- models (scoring)

_MLP_ACTIVATIONS = ("identity", "relu", "tanh", "logistic")


def check_real(value, name: str) -> float:
    """Validate a real scalar (bool rejected) and return it as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    return float(value)


def _check_weights(arr, name: str, *, ndim) -> np.ndarray:
    """Coerce model weights to a finite float64 array of the given dimension(s)."""
    if hasattr(arr, "toarray"):  # sparsified scikit-learn coefficients
        arr = arr.toarray()
    arr = _as_array(arr, name)
    if arr.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name} must have a real dtype, got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimension(s), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must contain only finite values (NaN or inf found)")
    return arr


def _check_fitted(estimator, name: str) -> None:
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except TypeError as exc:  # not an estimator at all
        raise TypeError(f"{name} must be a fitted scikit-learn estimator, got {_describe(estimator)}") from exc


def _check_n_inputs(n_inputs: int, k: int, n_channels: int, name: str) -> None:
    n_features = k * k * n_channels
    if n_inputs != n_features:
        raise ValueError(
            f"{name} takes {n_inputs} input features, but k={k} windows over C={n_channels} "
            f"channels give k*k*C = {n_features}: check k and the images' channel count"
        )


def check_pipeline(model, name: str = "model"):
    """Split a model into its feature scalers and its final classifier.

    Parameters
    ----------
    model : estimator or sklearn.pipeline.Pipeline
        A ``Pipeline`` may hold fitted ``StandardScaler`` steps (or ``"passthrough"``)
        followed by the classifier; anything else is returned as the classifier.

    Returns
    -------
    scalers : list of (mean, scale)
        One pair per scaler, in pipeline order; float64 arrays, ``None`` where the
        scaler does not centre (``with_mean=False``) or scale (``with_std=False``).
    classifier : object
        The last step.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if not isinstance(model, Pipeline):
        return [], model
    scalers = []
    *head, (_, classifier) = model.steps
    for step_name, step in head:
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        if not isinstance(step, StandardScaler):
            raise TypeError(
                f"{name}: pipeline step {step_name!r} is {type(step).__name__}; only StandardScaler "
                "(or 'passthrough') steps may precede the classifier"
            )
        _check_fitted(step, f"{name} step {step_name!r}")
        mean = _check_weights(step.mean_, f"{name} step {step_name!r} mean_", ndim=(1,)) if step.with_mean else None
        scale = _check_weights(step.scale_, f"{name} step {step_name!r} scale_", ndim=(1,)) if step.with_std else None
        if scale is not None and np.any(scale == 0):
            raise ValueError(f"{name} step {step_name!r} has zero entries in scale_")
        scalers.append((mean, scale))
    if isinstance(classifier, str) or classifier is None:
        raise TypeError(f"{name}: the last pipeline step must be a classifier, got {classifier!r}")
    return scalers, classifier


def check_scaler_width(scalers, n_features: int, k: int, n_channels: int, name: str = "model") -> None:
    """Check that every scaler of :func:`check_pipeline` was fitted on ``k*k*C`` features."""
    for mean, scale in scalers:
        for arr in (mean, scale):
            if arr is not None:
                _check_n_inputs(arr.shape[0], k, n_channels, f"{name} (StandardScaler)")


def check_linear_model(model, k: int, n_channels: int, name: str = "model"):
    """Validate a binary linear classifier or a ``(coef, intercept)`` pair.

    Parameters
    ----------
    model : fitted linear classifier or tuple (coef, intercept)
        Any scikit-learn ``LinearClassifierMixin`` (LinearSVC, SGDClassifier,
        LogisticRegression, RidgeClassifier, ...) fitted on two classes, or
        ``coef`` of length ``k*k*C`` (feature column order) with a scalar intercept.
    k, n_channels : int
        Window size and channel count the weights must match.

    Returns
    -------
    coef : ndarray of shape (k*k*C,), dtype=float64
    intercept : float
    """
    if isinstance(model, (tuple, list)):
        if len(model) != 2:
            raise ValueError(f"{name} as a sequence must be a (coef, intercept) pair, got length {len(model)}")
        coef = _check_weights(model[0], f"{name} coef", ndim=(1, 2))
        if coef.ndim == 2 and coef.shape[0] != 1:
            raise ValueError(f"{name} coef must have shape (k*k*C,) or (1, k*k*C), got shape {coef.shape}")
        intercept = _check_weights(model[1], f"{name} intercept", ndim=(0, 1))
        if intercept.size != 1:
            raise ValueError(f"{name} intercept must be a scalar, got shape {intercept.shape}")
        coef = coef.ravel()
        _check_n_inputs(coef.shape[0], k, n_channels, f"{name} coef")
        return coef, float(intercept.ravel()[0])

    from sklearn.linear_model._base import LinearClassifierMixin

    if not isinstance(model, LinearClassifierMixin):
        raise TypeError(
            f"{name} must be a fitted linear classifier (LinearSVC, SGDClassifier, LogisticRegression, "
            f"RidgeClassifier, ...), a Pipeline ending in one, or a (coef, intercept) pair; got {_describe(model)}"
        )
    _check_fitted(model, name)
    coef = _check_weights(model.coef_, f"{name}.coef_", ndim=(1, 2))
    n_classes = len(getattr(model, "classes_", ())) or 2
    if n_classes != 2 or (coef.ndim == 2 and coef.shape[0] != 1):
        raise ValueError(
            f"{name} must be a binary classifier (two classes, one row of coef_), got {n_classes} classes "
            f"and coef_ of shape {coef.shape}"
        )
    intercept = _check_weights(np.ravel(model.intercept_), f"{name}.intercept_", ndim=(1,))
    coef = coef.ravel()
    _check_n_inputs(coef.shape[0], k, n_channels, name)
    return coef, float(intercept[0]) if intercept.size else 0.0


def check_mlp_weights(coefs, intercepts, activation, k: int, n_channels: int, name: str = "model"):
    """Validate raw binary-MLP weights: layers chaining from ``k*k*C`` inputs to one logistic output.

    Parameters
    ----------
    coefs : sequence of array-like of shape (n_in, n_out)
        As ``MLPClassifier.coefs_``; the last layer has one output unit.
    intercepts : sequence of array-like of shape (n_out,)
        As ``MLPClassifier.intercepts_``.
    activation : {"identity", "relu", "tanh", "logistic"}
        The hidden layers' activation (the output unit is logistic).
    k, n_channels : int
        Window size and channel count the first layer must match.

    Returns
    -------
    coefs : list of ndarray, dtype=float64
    intercepts : list of ndarray, dtype=float64
    activation : str
    """
    if not isinstance(activation, str):
        raise TypeError(f"{name} activation must be one of {_MLP_ACTIVATIONS}, got {_describe(activation)}")
    if activation not in _MLP_ACTIVATIONS:
        raise ValueError(f"{name} activation must be one of {_MLP_ACTIVATIONS}, got {activation!r}")
    if isinstance(coefs, np.ndarray) or isinstance(intercepts, np.ndarray) \
            or not isinstance(coefs, (list, tuple)) or not isinstance(intercepts, (list, tuple)):
        raise TypeError(f"{name} coefs and intercepts must be sequences of arrays, one per layer, "
                        f"got coefs {_describe(coefs)} and intercepts {_describe(intercepts)}")
    coefs = [_check_weights(w, f"{name} coefs[{i}]", ndim=(2,)) for i, w in enumerate(coefs)]
    intercepts = [_check_weights(b, f"{name} intercepts[{i}]", ndim=(1,)) for i, b in enumerate(intercepts)]
    if not coefs or len(coefs) != len(intercepts):
        raise ValueError(
            f"{name} needs one intercept vector per layer and at least one layer, got {len(coefs)} "
            f"weight matrices and {len(intercepts)} intercept vectors"
        )
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        if (i and w.shape[0] != coefs[i - 1].shape[1]) or b.shape[0] != w.shape[1]:
            raise ValueError(f"{name}: layer {i} weights {w.shape} and intercepts {b.shape} do not chain")
    if coefs[-1].shape[1] != 1:
        raise ValueError(
            f"{name} must be a binary MLP with one output unit, got {coefs[-1].shape[1]} outputs"
        )
    _check_n_inputs(coefs[0].shape[0], k, n_channels, name)
    return coefs, intercepts, activation


def check_mlp_model(model, k: int, n_channels: int, name: str = "model"):
    """Validate a fitted binary ``sklearn.neural_network.MLPClassifier``.

    Returns
    -------
    coefs : list of ndarray of shape (n_in, n_out), dtype=float64
        The layers' weights, the last with one output unit.
    intercepts : list of ndarray of shape (n_out,), dtype=float64
    activation : str
        The hidden layers' activation, one of identity, relu, tanh, logistic.
    """
    from sklearn.neural_network import MLPClassifier

    if not isinstance(model, MLPClassifier):
        raise TypeError(
            f"{name} must be a fitted MLPClassifier, a Pipeline ending in one, or MLPWeights; "
            f"got {_describe(model)}"
        )
    _check_fitted(model, name)
    if getattr(model, "out_activation_", None) != "logistic" or model.n_outputs_ != 1 or len(model.classes_) != 2:
        raise ValueError(
            f"{name} must be a binary MLPClassifier (two classes, one logistic output), got "
            f"{len(model.classes_)} classes and out_activation_={getattr(model, 'out_activation_', None)!r}"
        )
    return check_mlp_weights(model.coefs_, model.intercepts_, model.activation, k, n_channels, name)


def check_finite_weights(arrays, name: str = "model") -> None:
    """Reject folded/cast model weights that overflowed float32 (inf) or became NaN."""
    for arr in arrays:
        if not np.isfinite(arr).all():
            raise ValueError(
                f"{name} weights are not finite in float32 after folding the scaler "
                "(a scale_ too close to zero?)"
            )


# --------------------------------------------------------------------------- hyper-parameters
#
# PixelSegmenter's parameters as a table of constraints (as scikit-learn's ``_parameter_constraints``):
# ``fit`` checks every value through it, and loading a model file checks the file's values again.
# Each constraint is a callable ``(value, name) -> checked value`` raising the usual errors.


class Interval:
    """A real or integral number in an interval; ``closed`` says which ends belong to it."""

    def __init__(self, kind: str, low=None, high=None, closed: str = "both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def describe(self) -> str:
        noun = "an integer" if self.kind == "int" else "a number"
        if self.low is not None and self.high is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"{noun} in {left}{self.low}, {self.high}{right}"
        if self.low == 0 and self.closed in ("neither", "right"):
            return "a positive integer" if self.kind == "int" else "a positive number"
        if self.low is not None:
            return f"{noun} {'>=' if self.closed in ('both', 'left') else '>'} {self.low}"
        return noun

    def __call__(self, value, name: str):
        integral = isinstance(value, numbers.Integral)
        if isinstance(value, (bool, np.bool_)) or not (integral if self.kind == "int" else isinstance(value, numbers.Real)):
            raise TypeError(f"{name} must be {self.describe()}, got {_describe(value)}")
        value = int(value) if self.kind == "int" else float(value)
        lo_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        hi_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        if not (np.isfinite(value) and lo_ok and hi_ok):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")
        return value


class Options:
    """One of a few values (strings, or None)."""

    def __init__(self, *values):
        self.values = values

    def __call__(self, value, name: str):
        if not any(value is v or (isinstance(v, str) and isinstance(value, str) and value == v) for v in self.values):
            raise ValueError(f"{name} must be one of {self.values}, got {value!r}")
        return value


class Sizes:
    """A sequence of integers, each checked by ``item`` (a tuple is returned)."""

    def __init__(self, item, what: str):
        self.item, self.what = item, what

    def __call__(self, value, name: str):
        if not isinstance(value, (list, tuple, np.ndarray)):
            raise TypeError(f"{name} must be a sequence of {self.what}, got {value!r}")
        return tuple(self.item(v, name) for v in value)


#: A sequence of odd box sizes (mean_sizes, std_sizes, ...), as a tuple of int.
check_odd_sizes = Sizes(check_k, "odd integers")


def check_gradient_size(value, name: str = "gradient_size") -> int:
    """0 (no gradient family) or an odd integer >= 3."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be 0 (no gradient) or an odd integer >= 3, got {value!r}")
    if value != 0 and (value < 3 or value % 2 == 0):
        raise ValueError(f"{name} must be 0 (no gradient) or an odd integer >= 3, got {value!r}")
    return int(value)


def _threshold(value, name: str):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not (isinstance(value, numbers.Real) and np.isfinite(value)):
        raise ValueError(f"{name} must be a finite number or None, got {value!r}")
    return float(value)


def _n_jobs(value, name: str):
    check_n_jobs(value, name)
    return value


def _estimator_or(*names):
    def check(value, name: str):
        if isinstance(value, str):
            if value not in names:
                raise ValueError(f"{name} must be one of {names} or an estimator, got {value!r}")
        elif not hasattr(value, "fit"):
            raise TypeError(f"{name} must be one of {names} or an estimator, got {type(value).__name__}")
        return value
    return check


def _anything(value, name: str):
    return value


#: Every parameter of ``PixelSegmenter``, in its signature's order, with its constraint.
SEGMENTER_PARAMETERS = {
    "k": check_k,
    "classifier": _estimator_or("mlp", "linear-svm", "logistic"),
    "C": Interval("real", 0, None, closed="neither"),
    "hidden_layer_sizes": Sizes(check_n_channels, "positive integers"),
    "alpha": Interval("real", 0, None),
    "max_iter": Interval("int", 1, None),
    "max_pixels": Interval("int", 2, None),
    "tumour_fraction": Interval("real", 0, 1, closed="neither"),
    "class_weight": _anything,  # checked by the classifier that takes it
    "threshold": _threshold,
    "mean_sizes": check_odd_sizes,
    "std_sizes": check_odd_sizes,
    "asymmetry": check_bool,
    "gradient_size": check_gradient_size,
    "position": check_bool,
    "min_size": check_min_size,
    "min_relative_size": check_fraction,
    "fill_holes": check_bool,
    "connectivity": check_connectivity,
    "mode": check_mode,
    "normalize": Options("brain", "none"),
    "n_jobs": _n_jobs,
    "random_state": _anything,  # scikit-learn's check_random_state takes it
    "verbose": Interval("int", 0, None),
}


def check_params(params: dict, constraints: dict = SEGMENTER_PARAMETERS) -> dict:
    """The values of ``params`` checked against ``constraints`` (a ``TypeError`` or ``ValueError``
    naming the first bad parameter); parameters absent from ``params`` are not checked."""
    return {name: check(params[name], name) for name, check in constraints.items() if name in params}


# --------------------------------------------------------------------------- multiscale filter banks

#: Bounds that keep a filter bank's own allocations small: the Gaussian kernel of sigma_max
#: (2 int(4 sigma + 0.5) + 1 taps) and the list of scales.
MAX_SIGMA = 1.0e5
MAX_NUM_SIGMA = 1000


def check_multiscale_image(image, channel_axis, name: str = "image"):
    """Validate an image for ``multiscale_features``: 2-D or 3-D, with or without a channel axis.

    Returns the array (never copied here) with its channels moved last (a view), and whether it
    is 3-D.  Floating values must be finite and fit float32.
    """
    arr = _as_array(image, name)
    if arr.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name} must have a real (integer or floating) dtype, got dtype {arr.dtype}")
    if channel_axis is not None:
        if isinstance(channel_axis, (bool, np.bool_)) or not isinstance(channel_axis, numbers.Integral):
            raise TypeError(f"channel_axis must be None or an integer, got {_describe(channel_axis)}")
        if not -arr.ndim <= int(channel_axis) < arr.ndim:
            raise ValueError(f"channel_axis must be None or an axis of {name} (ndim={arr.ndim}), "
                             f"got {channel_axis}")
        arr = np.moveaxis(arr, int(channel_axis), -1)
    else:
        arr = arr[..., None]
    spatial = arr.ndim - 1
    if spatial not in (2, 3):
        where = "" if channel_axis is None else " plus the channel axis"
        raise ValueError(f"{name} must have 2 or 3 spatial dimensions{where}, got shape {np.shape(image)}")
    if arr.size == 0:
        raise ValueError(f"{name} must not have zero-size axes, got shape {np.shape(image)}")
    if arr.dtype.kind == "f":
        if not _all_finite(arr):
            raise non_finite_error(arr, name)
        big = np.finfo(np.float32).max
        if arr.dtype.itemsize > 4 and (arr.max() > big or arr.min() < -big):
            raise ValueError(f"{name} must contain only finite values, got values beyond float32's range")
    return arr, spatial == 3


def check_scales(sigma_min, sigma_max, num_sigma):
    """Validate the scales of a filter bank: 0 < sigma_min <= sigma_max <= MAX_SIGMA, num_sigma None
    or an integer in [1, MAX_NUM_SIGMA]."""
    lo = Interval("real", 0, MAX_SIGMA, closed="right")(sigma_min, "sigma_min")
    hi = Interval("real", 0, MAX_SIGMA, closed="right")(sigma_max, "sigma_max")
    if hi < lo:
        raise ValueError(f"sigma_max must be >= sigma_min={lo!r}, got {hi!r}")
    if num_sigma is not None:
        num_sigma = Interval("int", 1, MAX_NUM_SIGMA)(num_sigma, "num_sigma")
    elif np.log2(hi) - np.log2(lo) + 1 > MAX_NUM_SIGMA:
        raise ValueError(f"sigma_min={lo!r} and sigma_max={hi!r} make more than {MAX_NUM_SIGMA} scales "
                         "(one per octave); give num_sigma")
    return lo, hi, num_sigma


def check_workers(workers, name: str = "workers") -> int:
    """Threads for a filter bank, as scikit-image's ``workers``: None (every core) or an integer >= 1."""
    if workers is None:
        return os.cpu_count() or 1
    return Interval("int", 1, None)(workers, name)
