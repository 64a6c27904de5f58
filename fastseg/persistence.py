"""Saving and loading fitted segmenters as plain arrays plus a JSON spec.

A saved model is one ``.npz`` file (numpy's zip of ``.npy`` arrays) holding:

- ``spec``: a JSON document (fastseg and format versions, the segmenter's
  parameters, channels, threshold, score kind, and the model kind),
- the folded weights the fused kernels use: ``coef`` / ``intercept`` for a
  linear model; ``coef_0``, ``intercept_0``, ``coef_1``, ... for an MLP.

A :class:`~fastseg.regions.RegionSegmenter` (the three BraTS regions) is saved as one file too:
a ``regions`` JSON entry (versions, label convention, stages) and each stage's model as above,
its members prefixed ``whole.``, ``core.`` and ``enhancing.``.

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
import secrets
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._validation import SEGMENTER_PARAMETERS, check_bytes, check_params, check_path
from ._version import __version__

if TYPE_CHECKING:
    from .segmenter import PixelSegmenter

__all__ = ["save", "load", "dumps", "loads", "FORMAT_VERSION", "atomic_write"]

#: Version of the file layout; a file with another major version is refused.  2.1 names the box
#: means ``mean_sizes`` (2.0: ``box_sizes``); both are read.  2.2 adds region files.
FORMAT_VERSION = "2.2"

#: The member prefixes of a region file's stages, outermost region first.
_STAGES = ("whole", "core", "enhancing")

#: The segmenter's parameters a file stores (all but the classifier, stored by name, and the
#: deprecated alias).
_STORED = tuple(name for name in SEGMENTER_PARAMETERS if name != "classifier")


def atomic_write(path, write) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place, durably.

    An interrupted or failed write leaves no partial file (the temporary one is
    removed).  The temporary file is created with mode ``0o666``, which the
    operating system reduces by the umask (so the process-wide umask is never
    changed, not even for a moment), and the file and then its folder are
    flushed to disk (``fsync``) before and after the rename, so that a crash
    leaves either the old file or the whole new one.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    name = path.name
    suffix = ".nii.gz" if name.endswith(".nii.gz") else path.suffix
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"cannot create a temporary file beside {str(path)!r}")
    try:
        write(str(tmp))
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(folder)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _fsync(path) -> None:
    """Flush a file or a folder to disk (a folder's entries: where the platform can open one)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) * os.path.isdir(path))
    except OSError:  # a folder that cannot be opened (Windows): its rename is as durable as it gets
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    from .regions import REGIONS, RegionSegmenter
    from .segmenter import PixelSegmenter  # here: reading a model needs no scikit-learn

    if isinstance(segmenter, RegionSegmenter):
        if not hasattr(segmenter, "model_"):
            raise ValueError("segmenter is not fitted: call fit before saving it")
        data = {}
        for prefix, name in zip(_STAGES, REGIONS):
            stage = segmenter.stages_[name]
            for key, value in _model_bundle(stage.model_, stage._checked_params()).items():
                data[f"{prefix}.{key}"] = value
        data["regions"] = np.array(json.dumps({
            "fastseg_version": __version__, "format_version": FORMAT_VERSION,
            "convention": segmenter.convention, "stages": dict(zip(_STAGES, REGIONS)),
        }))
        return data
    if not isinstance(segmenter, PixelSegmenter):
        raise TypeError(f"segmenter must be a PixelSegmenter or a RegionSegmenter, got {type(segmenter).__name__}")
    if not hasattr(segmenter, "model_"):
        raise ValueError("segmenter is not fitted: call fit before saving it")
    params = segmenter._checked_params()
    return _model_bundle(segmenter.model_, params)


def _model_bundle(model, params: dict) -> dict:
    """The arrays of a model file for a :class:`~fastseg.model.PixelModel` and the checked parameters
    of the segmenter that fitted it (``classifier`` is stored by name only)."""
    network = model.network
    if network is None:
        name = type(model.estimator[-1] if hasattr(model.estimator, "steps") else model.estimator).__name__
        raise TypeError(
            f"only linear and MLP classifiers can be saved as plain arrays; {name} cannot "
            "(pickle it yourself if you trust the file, or use classifier='mlp'/'linear-svm')"
        )
    # what the model predicts with comes from the model itself, whatever set_params did after fit
    from .model import _part_params

    params = {**params, **_part_params(model)}
    stored = {name: _jsonable(params[name]) for name in _STORED}
    stored["classifier"] = params["classifier"] if isinstance(params["classifier"], str) else None
    spec = {
        "fastseg_version": __version__,
        "format_version": FORMAT_VERSION,
        "model_kind": network.kind,
        "params": stored,
        "n_channels": model.n_channels,
        "score_kind": model.score_kind,
        "threshold": model.threshold,
        "n_training_pixels": model.n_training_pixels,
        "features": model.feature_names,
    }
    data = {}
    if network.kind == "linear":
        data["coef"] = network.coefs[0][:, 0]
        data["intercept"] = network.intercepts[0].reshape(())
    else:
        spec["activation"] = network.activation
        spec["n_layers"] = len(network.coefs)
        for i, (w, b) in enumerate(zip(network.coefs, network.intercepts)):
            data[f"coef_{i}"] = w
            data[f"intercept_{i}"] = b
    data["spec"] = np.array(json.dumps(spec))
    return data


def save(segmenter: PixelSegmenter, path) -> Path:
    """Save a fitted :class:`~fastseg.PixelSegmenter` with a linear or MLP classifier (or a
    :class:`~fastseg.regions.RegionSegmenter` of such stages).

    The file is written to a temporary file beside ``path`` and renamed into
    place, so an interrupted save never leaves a half-written model.

    Parameters
    ----------
    segmenter : PixelSegmenter or :class:`~fastseg.regions.RegionSegmenter`
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
        If ``segmenter`` is not a PixelSegmenter or RegionSegmenter, or its
        classifier cannot be stored as plain arrays.
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
    PixelSegmenter or RegionSegmenter
        Fitted for prediction: its ``model_`` (:class:`fastseg.model.PixelModel`)
        is the saved one, its parameters the saved segmenter's; ``classifier_``
        is None.  A region file gives a :class:`~fastseg.regions.RegionSegmenter`
        whose stages are such segmenters.

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
    return _estimator(_restore_any(_read_npz(path, where), where))


def _load_model(path):
    """The :class:`~fastseg.model.PixelModel` (or :class:`~fastseg.regions.RegionModel`) of a model
    file, with :func:`load`'s checks and without scikit-learn (whose import alone takes about a
    second): for the ``fastseg`` command."""
    path = Path(check_path(path))
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    where = repr(str(path))
    return _restore_any(_read_npz(path, where), where)[0]


def _restore_any(files: dict, where: str) -> tuple:
    """(model, params) of a segmenter's file, or for a region file (RegionModel, {"convention": ...,
    "stages": [params of each stage]})."""
    if "regions" not in files:
        return _restore(files, where)
    from .io import LABEL_CONVENTIONS
    from .regions import RegionModel

    spec = _json_entry(files["regions"], "regions entry", where)

    convention = spec.get("convention")
    if convention not in LABEL_CONVENTIONS:
        _fail(where, f"its label convention {convention!r} is not one of {sorted(LABEL_CONVENTIONS)}")
    stray = [k for k in files if k != "regions" and k.split(".", 1)[0] not in _STAGES]
    if stray:
        _fail(where, f"it holds members of no stage {sorted(stray)}")
    models, params = [], []
    for prefix in _STAGES:
        members = {k[len(prefix) + 1:]: v for k, v in files.items() if k.startswith(prefix + ".")}
        model, stage_params = _restore(members, f"{where} ({prefix} stage)")
        models.append(model)
        params.append(stage_params)
    try:
        regions = RegionModel(*models)
    except (TypeError, ValueError) as exc:
        _fail(where, f"its stages do not fit together ({exc})")
    return regions, {"convention": convention, "stages": params}


def _estimator(restored: tuple):
    """The fitted segmenter of :func:`_restore_any`'s (model, params)."""
    from .regions import REGIONS, RegionModel, RegionSegmenter
    from .segmenter import PixelSegmenter

    model, params = restored
    if not isinstance(model, RegionModel):
        return _segmenter(model, params)
    stages = [_segmenter(m, p) for m, p in zip(model.stages, params["stages"])]
    # the template: the whole-tumour stage's parameters; the other stages', what differs from them
    template, (_, core, enhancing) = params["stages"][0], params["stages"]
    seg = RegionSegmenter(PixelSegmenter(**template), convention=params["convention"],
                          core={k: v for k, v in core.items() if v != template[k]},
                          enhancing={k: v for k, v in enhancing.items() if v != template[k]})
    seg.stages_ = dict(zip(REGIONS, stages))
    seg.model_ = model
    return seg


#: The most bytes one array of a model file may hold: a model is tens of kilobytes, and an array header
#: claiming more (a damaged or forged file) is refused before anything is allocated.
_MAX_ARRAY_BYTES = 256 * 2**20


def _read_npz(source, where) -> dict:
    """The arrays of an ``.npz`` (a path or a binary file object), read without unpickling anything.

    Every member's ``.npy`` header is read first: an object dtype, or a shape whose data would take
    more than :data:`_MAX_ARRAY_BYTES` or more than the member holds, is refused before its data are
    read, so a forged header cannot make fastseg allocate what it claims."""
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as fh:
                return _read_members(fh)
        return _read_members(source)
    except _Refused as exc:
        _fail(where, str(exc))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, zlib.error) as exc:
        _fail(where, f"not a readable .npz model file ({type(exc).__name__}: {exc})")


class _Refused(Exception):
    """A model file member refused from its header (reported by :func:`_read_npz`)."""


def _read_members(fh) -> dict:
    files = {}
    with zipfile.ZipFile(fh) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise _Refused(f"it holds {info.filename!r}, which is not a .npy array")
            name = info.filename[:-4]
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                if dtype.hasobject:
                    raise _Refused(f"its array {name!r} holds Python objects")
                nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if nbytes > _MAX_ARRAY_BYTES or nbytes > info.file_size:
                    raise _Refused(f"its array {name!r} claims shape {shape} ({nbytes} bytes), more than "
                                   f"{'a model holds' if nbytes > _MAX_ARRAY_BYTES else 'the file stores'}")
                data = member.read(nbytes)
                if len(data) != nbytes:
                    raise _Refused(f"its array {name!r} is shorter than its header says")
                array = np.frombuffer(data, dtype=dtype)
                files[name] = array.reshape(shape, order="F" if fortran else "C")
    return files


def _json_entry(value, what: str, where: str) -> dict:
    """A model file's JSON member (``spec``, ``regions``) as a dict, its format version checked."""
    try:
        spec = json.loads(str(value))
    except (json.JSONDecodeError, TypeError) as exc:
        _fail(where, f"its {what} is not valid JSON ({exc})")
    if not isinstance(spec, dict):
        _fail(where, f"its {what} is not a JSON object")
    fmt = str(spec.get("format_version", ""))
    if fmt.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        _fail(where, f"format version {fmt!r} (written by fastseg {spec.get('fastseg_version')!r}) "
                     f"is not compatible with this fastseg {__version__} (format {FORMAT_VERSION})")
    return spec


def _restore(files: dict, path: str) -> tuple:
    """(model, params) from a model file's arrays: the :class:`~fastseg.model.PixelModel` and the
    segmenter's parameters, every one checked; ``path`` describes the source in error messages."""
    from .model import PixelModel, _parts
    from .scoring import Network

    if "spec" not in files:
        _fail(path, "it has no 'spec' entry")
    spec = _json_entry(files["spec"], "spec", path)
    try:
        params = dict(spec["params"])
        kind = spec["model_kind"]
        n_channels = int(spec["n_channels"])
        score_kind = spec["score_kind"]
        threshold = float(spec["threshold"])
    except (KeyError, TypeError, ValueError) as exc:
        _fail(path, f"its spec misses or mangles a field ({exc!r})")
    if "box_sizes" in params and "mean_sizes" not in params:  # format 2.0
        params["mean_sizes"] = params.pop("box_sizes")
    classifier = params.pop("classifier", None)
    unknown = set(params) - set(_STORED)
    if unknown:
        _fail(path, f"its spec has unknown parameters {sorted(unknown)}")
    if set(params) != set(_STORED):
        _fail(path, f"its spec misses parameters {sorted(set(_STORED) - set(params))}")
    params["classifier"] = classifier or ("mlp" if kind == "mlp" else "linear-svm")
    for name in ("hidden_layer_sizes", "mean_sizes", "std_sizes"):
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    try:
        params = check_params(params, SEGMENTER_PARAMETERS)
        features, postprocessing = _parts(params, n_channels)
    except (TypeError, ValueError) as exc:
        _fail(path, f"its parameters are invalid ({exc})")
    names = list(features.names)
    if spec.get("features") != names:
        _fail(path, "its feature list does not match its parameters")
    n_features = len(names)
    if score_kind not in ("proba", "decision") or not np.isfinite(threshold) or n_channels < 1:
        _fail(path, "its spec has an invalid score kind, threshold or channel count")
    if kind == "linear":
        coef, intercept = files.get("coef"), files.get("intercept")
        if coef is None or intercept is None or coef.shape != (n_features,) or intercept.shape != ():
            _fail(path, f"a linear model needs coef of shape ({n_features},) and a scalar intercept")
        weights = [coef, intercept]
        make = lambda: Network.linear(coef.astype(np.float64), float(intercept))  # noqa: E731
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
        weights = coefs + intercepts
        make = lambda: Network.mlp(coefs, intercepts, activation)  # noqa: E731
    else:
        _fail(path, f"unknown model kind {kind!r}")
    if not all(np.isfinite(w).all() for w in weights):
        _fail(path, "its weights are not all finite")
    try:
        with np.errstate(over="ignore"):
            model = PixelModel(features, make(), threshold, score_kind, postprocessing, params["normalize"],
                               n_training_pixels=int(spec.get("n_training_pixels", 0)))
    except (TypeError, ValueError) as exc:
        _fail(path, f"its model is invalid ({exc})")
    return model, params


def _segmenter(model, params: dict):
    """A fitted PixelSegmenter holding ``model``, its parameters ``params`` (for :func:`load`)."""
    from .segmenter import PixelSegmenter

    seg = PixelSegmenter(**params)
    seg.model_ = model
    seg.classifier_ = None
    seg.classes_ = np.array([False, True])
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
    return _estimator(_restore_any(_read_npz(io.BytesIO(data), where), where))


def _model_from_bytes(data: bytes):
    """The :class:`~fastseg.model.PixelModel` (or :class:`~fastseg.regions.RegionModel`) of a model
    file's bytes (no scikit-learn): how ``fastseg.dask``'s workers and the command line's worker
    processes rebuild a model."""
    where = f"bytes ({len(data)} bytes)"
    return _restore_any(_read_npz(io.BytesIO(data), where), where)[0]
