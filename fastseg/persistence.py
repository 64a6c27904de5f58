"""Saving and loading fitted segmenters as plain arrays plus a JSON spec.

A saved model is one ``.npz`` file (numpy's zip of ``.npy`` arrays) holding:

- ``spec``: a JSON document (fastseg and format versions, the segmenter's
  parameters, channels, threshold, score kind, and the model kind),
- the folded weights the fused kernels use: ``coef`` / ``intercept`` for a
  linear model; ``coef_0``, ``intercept_0``, ``coef_1``, ... for an MLP.

Loading reads it with ``allow_pickle=False``: no code is executed, whatever the
file holds.  Segmenters with other classifiers (trees, kernels, ...) cannot be
stored as plain arrays and are refused with a clear error.  A loaded segmenter
predicts exactly as the saved one did (the same float32 weights go to the same
kernels), but it carries no scikit-learn classifier: it cannot be refitted
without calling ``fit`` again.

:func:`dumps` and :func:`loads` are the same format as ``bytes`` in memory: how
``fastseg.dask`` ships a fitted segmenter to cluster workers (a few kilobytes
of weights and JSON instead of a pickle of the scikit-learn estimator).
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._validation import check_bytes, check_path
from ._version import __version__

if TYPE_CHECKING:
    from .segmenter import PixelSegmenter

__all__ = ["save", "load", "dumps", "loads", "FORMAT_VERSION", "atomic_write"]

#: Version of the file layout; a file with another major version is refused.
FORMAT_VERSION = "2.0"

_PARAMS = (
    "k", "C", "hidden_layer_sizes", "alpha", "max_iter", "max_pixels", "tumour_fraction",
    "class_weight", "threshold", "box_sizes", "std_sizes", "asymmetry", "gradient_size", "position", "min_size", "min_relative_size", "fill_holes", "connectivity", "mode", "normalize",
    "n_jobs", "random_state", "verbose",
)


def atomic_write(path, write) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    An interrupted or failed write leaves no partial file (the temporary one is
    removed); the result gets the usual permissions (``0o666`` less the umask).
    """
    path = Path(path)
    if str(path.parent) and not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")
    name = path.name
    suffix = ".nii.gz" if name.endswith(".nii.gz") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store parameter value {value!r} in a model file")


def _bundle(segmenter) -> dict:
    """The arrays of a model file (the JSON spec included) for a fitted, storable segmenter."""
    from .segmenter import PixelSegmenter  # here: reading a model needs no scikit-learn

    if not isinstance(segmenter, PixelSegmenter):
        raise TypeError(f"segmenter must be a PixelSegmenter, got {type(segmenter).__name__}")
    if not hasattr(segmenter, "score_kind_"):
        raise ValueError("segmenter is not fitted: call fit before saving it")
    if segmenter.scorer_ is None:
        name = type(segmenter.classifier_[-1]).__name__ if hasattr(segmenter, "classifier_") else "classifier"
        raise TypeError(
            f"only linear and MLP classifiers can be saved as plain arrays; {name} cannot "
            "(pickle it yourself if you trust the file, or use classifier='mlp'/'linear-svm')"
        )
    kind, arrays = segmenter.scorer_
    params = {name: _jsonable(getattr(segmenter, name)) for name in _PARAMS}
    params["classifier"] = segmenter.classifier if isinstance(segmenter.classifier, str) else None
    spec = {
        "fastseg_version": __version__,
        "format_version": FORMAT_VERSION,
        "model_kind": kind,
        "params": params,
        "n_channels": int(segmenter.n_channels_),
        "score_kind": segmenter.score_kind_,
        "threshold": float(segmenter.threshold_),
        "n_training_pixels": int(segmenter.n_training_pixels_),
        "features": list(segmenter.feature_names_),
    }
    data = {}
    if kind == "linear":
        data["coef"] = np.asarray(arrays["coef"], dtype=np.float64)
        data["intercept"] = np.asarray(arrays["intercept"], dtype=np.float64)
    else:
        spec["activation"] = arrays["activation"]
        spec["n_layers"] = len(arrays["coefs"])
        for i, (w, b) in enumerate(zip(arrays["coefs"], arrays["intercepts"])):
            data[f"coef_{i}"] = np.asarray(w, dtype=np.float64)
            data[f"intercept_{i}"] = np.asarray(b, dtype=np.float64)
    data["spec"] = np.array(json.dumps(spec))
    return data


def save(segmenter: PixelSegmenter, path) -> Path:
    """Save a fitted :class:`~fastseg.PixelSegmenter` with a linear or MLP classifier.

    The file is written to a temporary file beside ``path`` and renamed into
    place, so an interrupted save never leaves a half-written model.

    Parameters
    ----------
    segmenter : PixelSegmenter
        Fitted, with a linear (``"linear-svm"``, ``"logistic"``, any binary
        ``coef_``/``intercept_`` model) or MLP classifier.
    path : str or os.PathLike
        Destination; ``.npz`` is the conventional suffix.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``segmenter`` is not a PixelSegmenter, or its classifier cannot be
        stored as plain arrays.
    ValueError
        If it is not fitted.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from fastseg import PixelSegmenter, save, load
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 20, 20, 4)).astype(np.float32)
    >>> y = np.zeros((2, 20, 20), bool); y[:, 5:12, 5:12] = True; x[y] += 2
    >>> seg = PixelSegmenter(k=3, classifier="linear-svm", min_size=5, random_state=0)
    >>> seg = seg.fit(x, y, brain=np.ones_like(y))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> _ = save(seg, path)
    >>> loaded = load(path)
    >>> bool((loaded.predict(x, brain=np.ones_like(y)) == seg.predict(x, brain=np.ones_like(y))).all())
    True
    """
    data = _bundle(segmenter)
    check_path(path)

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **data)

    return atomic_write(path, write)


def _fail(where: str, why: str):
    raise ValueError(f"cannot load a fastseg model from {where}: {why}")


def load(path) -> PixelSegmenter:
    """Load a segmenter saved by :func:`save`; executes no code from the file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    PixelSegmenter
        Fitted (for prediction): ``scorer_``, ``threshold_``, ``score_kind_`` and
        ``n_channels_`` are restored; ``classifier_`` is None.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a fastseg model, is truncated or tampered with, comes
        from an incompatible format version, or its arrays do not match its spec.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from fastseg import PixelSegmenter, save, load
    >>> rng = np.random.default_rng(1)
    >>> x = rng.standard_normal((2, 20, 20, 4)).astype(np.float32)
    >>> y = np.zeros((2, 20, 20), bool); y[:, 4:14, 6:12] = True; x[y] += 2
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> _ = save(PixelSegmenter(k=3, min_size=5, random_state=0).fit(x, y, brain=np.ones_like(y)), path)
    >>> model = load(path)
    >>> model.k, model.score_kind_, model.predict(x, brain=np.ones_like(y)).shape
    (3, 'proba', (2, 20, 20))
    """
    path = Path(check_path(path))
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    where = repr(str(path))
    return _restore(_read_npz(path, where), where)


def _load_predictor(path):
    """:func:`load` without scikit-learn: the model's predict path (``predict``, ``score_maps``, ...)
    as a ``_predictor._LoadedPredictor``, with the same checks of the file; for the ``fastseg`` command."""
    path = Path(check_path(path))
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    where = repr(str(path))
    return _restore(_read_npz(path, where), where, light=True)


def _read_npz(source, where) -> dict:
    """The arrays of an ``.npz`` (a path or a binary file object), read without unpickling anything."""
    try:
        with np.load(source, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        _fail(where, f"not a readable .npz model file ({type(exc).__name__}: {exc})")


def _restore(files: dict, path: str, light: bool = False) -> PixelSegmenter:
    """A fitted segmenter from a model file's arrays; ``path`` describes the source in error messages.
    ``light``: a ``_LoadedPredictor`` (no scikit-learn) instead of a PixelSegmenter."""
    if "spec" not in files:
        _fail(path, "it has no 'spec' entry")
    try:
        spec = json.loads(str(files["spec"]))
    except (json.JSONDecodeError, TypeError) as exc:
        _fail(path, f"its spec is not valid JSON ({exc})")
    if not isinstance(spec, dict):
        _fail(path, "its spec is not a JSON object")
    fmt = str(spec.get("format_version", ""))
    if fmt.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        _fail(path, f"format version {fmt!r} (written by fastseg {spec.get('fastseg_version')!r}) "
                    f"is not compatible with this fastseg {__version__} (format {FORMAT_VERSION})")
    try:
        params = dict(spec["params"])
        kind = spec["model_kind"]
        n_channels = int(spec["n_channels"])
        score_kind = spec["score_kind"]
        threshold = float(spec["threshold"])
    except (KeyError, TypeError, ValueError) as exc:
        _fail(path, f"its spec misses or mangles a field ({exc!r})")
    classifier = params.pop("classifier", None)
    for name in ("hidden_layer_sizes", "box_sizes", "std_sizes"):
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    unknown = set(params) - set(_PARAMS)
    if unknown:
        _fail(path, f"its spec has unknown parameters {sorted(unknown)}")
    classifier = classifier or ("mlp" if kind == "mlp" else "linear-svm")
    if light and set(params) != set(_PARAMS):
        _fail(path, f"its spec misses parameters {sorted(set(_PARAMS) - set(params))}")
    try:
        if light:
            from ._predictor import _LoadedPredictor

            seg = _LoadedPredictor(dict(params, classifier=classifier))
        else:
            from .segmenter import PixelSegmenter

            seg = PixelSegmenter(classifier=classifier, **params)
        seg._check_params()
    except (TypeError, ValueError) as exc:
        _fail(path, f"its parameters are invalid ({exc})")
    names = seg._feature_names(n_channels)
    if spec.get("features") != names:
        _fail(path, "its feature list does not match its parameters")
    n_features = len(names)
    if score_kind not in ("proba", "decision") or not np.isfinite(threshold) or n_channels < 1:
        _fail(path, "its spec has an invalid score kind, threshold or channel count")
    if kind == "linear":
        coef, intercept = files.get("coef"), files.get("intercept")
        if coef is None or intercept is None or coef.shape != (n_features,) or intercept.shape != ():
            _fail(path, f"a linear model needs coef of shape ({n_features},) and a scalar intercept")
        arrays = {"coef": coef.astype(np.float64), "intercept": float(intercept)}
        weights = [coef, intercept]
    elif kind == "mlp":
        n_layers = spec.get("n_layers")
        activation = spec.get("activation")
        if not isinstance(n_layers, int) or n_layers < 1 or activation not in ("identity", "relu", "tanh", "logistic"):
            _fail(path, "an MLP needs a layer count and an activation in its spec")
        coefs, intercepts, width = [], [], n_features
        for i in range(n_layers):
            w, b = files.get(f"coef_{i}"), files.get(f"intercept_{i}")
            if w is None or b is None or w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                _fail(path, f"layer {i} of the MLP is missing or has inconsistent shapes")
            coefs.append(w.astype(np.float64))
            intercepts.append(b.astype(np.float64))
            width = w.shape[1]
        if width != 1:
            _fail(path, "the MLP's last layer must have one output")
        arrays = {"coefs": coefs, "intercepts": intercepts, "activation": activation}
        weights = coefs + intercepts
    else:
        _fail(path, f"unknown model kind {kind!r}")
    if not all(np.isfinite(w).all() for w in weights):
        _fail(path, "its weights are not all finite")
    seg.scorer_ = (kind, arrays)
    seg.classifier_ = None
    seg.classes_ = np.array([False, True])
    seg.n_channels_ = n_channels
    seg.score_kind_ = score_kind
    seg.threshold_ = threshold
    seg.n_training_pixels_ = int(spec.get("n_training_pixels", 0))
    seg.feature_names_ = names
    return seg


def dumps(segmenter: PixelSegmenter) -> bytes:
    """The model file :func:`save` would write, as ``bytes`` in memory.

    Parameters
    ----------
    segmenter : PixelSegmenter
        Fitted, with a linear or MLP classifier (as for :func:`save`).

    Returns
    -------
    bytes
        An ``.npz`` archive: the JSON spec and the folded weights, a few
        kilobytes for a linear model.

    Raises
    ------
    TypeError
        If ``segmenter`` is not a PixelSegmenter, or its classifier cannot be
        stored as plain arrays.
    ValueError
        If it is not fitted.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg import PixelSegmenter
    >>> from fastseg.persistence import dumps, loads
    >>> rng = np.random.default_rng(2)
    >>> x = rng.standard_normal((2, 20, 20, 4)).astype(np.float32)
    >>> y = np.zeros((2, 20, 20), bool); y[:, 5:12, 5:12] = True; x[y] += 2
    >>> seg = PixelSegmenter(k=3, classifier="linear-svm", min_size=5, random_state=0)
    >>> seg = seg.fit(x, y, brain=np.ones_like(y))
    >>> blob = dumps(seg)
    >>> len(blob) < 12_000              # 60 weights and a JSON spec that names the 60 feature columns
    True
    >>> bool((loads(blob).predict(x, np.ones_like(y)) == seg.predict(x, np.ones_like(y))).all())
    True
    """
    data = _bundle(segmenter)
    buffer = io.BytesIO()
    np.savez(buffer, **data)
    return buffer.getvalue()


def loads(data: bytes) -> PixelSegmenter:
    """A segmenter from the bytes :func:`dumps` made (or a model file's contents); executes no code.

    Parameters
    ----------
    data : bytes, bytearray or memoryview

    Returns
    -------
    PixelSegmenter
        Fitted for prediction, as :func:`load` returns it.

    Raises
    ------
    TypeError
        If ``data`` is not bytes-like.
    ValueError
        If the bytes are not a fastseg model, are truncated or tampered with,
        come from an incompatible format version, or their arrays do not match
        their spec.

    Examples
    --------
    >>> from fastseg.persistence import loads
    >>> loads(b"not a model")
    Traceback (most recent call last):
    ...
    ValueError: cannot load a fastseg model from bytes (11 bytes): not a readable .npz model file ...
    """
    data = check_bytes(data, "data")
    where = f"bytes ({len(data)} bytes)"
    return _restore(_read_npz(io.BytesIO(data), where), where)
